//! A deterministic tar writer for archives ocitool produces: ustar headers, fixed owner
//! (0:0, no names), fixed mtime, fixed modes, entries in the order given. Blobs are streamed
//! from the layout (straight to the disk for a durable file, see [`FileSink`]; by the kernel,
//! `copy_file_range`, for a file written through the page cache), and their sizes checked;
//! their digests are checked by the caller in parallel (see [`crate::export`]), so that
//! hashing spreads over the cores while this thread copies.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};

use ocitool_digest::VerifyError;
use ocitool_layout::direct::DirectWriter;
use ocitool_layout::{Layout, Progress};
use ocitool_spec::views::Checked;

use crate::errors::{Error, Result};

/// Where an archive is written. A file written through the page cache lets the kernel copy
/// blobs into it.
pub trait Sink: Write {
    /// The file behind the sink, with everything buffered flushed to it, when the kernel may
    /// append to it directly (at its current offset); `None` for a pipe or memory.
    fn file(&mut self) -> io::Result<Option<&File>> {
        Ok(None)
    }
}

impl Sink for Vec<u8> {}
impl Sink for BufWriter<io::StdoutLock<'_>> {}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn file(&mut self) -> io::Result<Option<&File>> {
        (**self).file()
    }
}

/// An archive written to a file.
///
/// Durable (the default): written straight to the disk in aligned chunks by a helper thread
/// ([`DirectWriter`]), then fsynced, which is then quick. Through the page cache, a durable
/// archive costs twice: the kernel copies every byte into freshly allocated cache pages, and
/// the fsync writes them back, at 0.35-0.4 GB/s on the benchmark machine against 1.3 GB/s
/// direct.
///
/// Not durable (`--no-fsync`): blobs are copied into the page cache by the kernel
/// (`copy_file_range`), nothing goes through user space, and nothing waits for the disk.
pub struct FileSink {
    w: FileSinkInner,
}

enum FileSinkInner {
    Cached(BufWriter<File>),
    Direct(DirectWriter),
}

impl FileSink {
    pub fn new(file: File, durable: bool) -> io::Result<FileSink> {
        Ok(FileSink {
            w: if durable {
                FileSinkInner::Direct(DirectWriter::new(file)?)
            } else {
                FileSinkInner::Cached(BufWriter::with_capacity(1 << 20, file))
            },
        })
    }

    /// Writes what is buffered and, if durable, fsyncs the file; returns it.
    pub fn finish(self) -> io::Result<File> {
        match self.w {
            FileSinkInner::Cached(w) => w.into_inner().map_err(|e| e.into_error()),
            FileSinkInner::Direct(w) => {
                let file = w.finish()?;
                file.sync_all()?;
                Ok(file)
            }
        }
    }
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.w {
            FileSinkInner::Cached(w) => w.write(buf),
            FileSinkInner::Direct(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.w {
            FileSinkInner::Cached(w) => w.write_all(buf),
            FileSinkInner::Direct(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.w {
            FileSinkInner::Cached(w) => w.flush(),
            FileSinkInner::Direct(w) => w.flush(),
        }
    }
}

impl Sink for FileSink {
    fn file(&mut self) -> io::Result<Option<&File>> {
        match &mut self.w {
            FileSinkInner::Cached(w) => {
                w.flush()?;
                Ok(Some(w.get_ref()))
            }
            FileSinkInner::Direct(_) => Ok(None),
        }
    }
}

/// Bytes asked of one `copy_file_range` (progress is reported after each).
const KERNEL_CHUNK: u64 = 64 << 20;

/// mtime of every entry: the Unix epoch (reproducible, like `SOURCE_DATE_EPOCH=0`).
pub const MTIME: u64 = 0;

pub struct TarWriter<W: Write> {
    inner: W,
    written: u64,
}

impl<W: Write> TarWriter<W> {
    pub fn new(inner: W) -> Self {
        TarWriter { inner, written: 0 }
    }

    fn header(path: &str, size: u64, kind: tar::EntryType, mode: u32) -> Result<tar::Header> {
        let mut h = tar::Header::new_ustar();
        h.set_path(path)
            .map_err(Error::io(format!("tar entry {path}")))?;
        h.set_size(size);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        // ustar: empty user and group names.
        h.set_username("").map_err(Error::io("tar header"))?;
        h.set_groupname("").map_err(Error::io("tar header"))?;
        h.set_cksum();
        Ok(h)
    }

    fn raw(&mut self, b: &[u8]) -> Result<()> {
        self.inner.write_all(b).map_err(Error::Output)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        let rem = (512 - (size % 512)) % 512;
        self.raw(&[0u8; 512][..rem as usize])
    }

    pub fn dir(&mut self, path: &str) -> Result<()> {
        let h = Self::header(path, 0, tar::EntryType::Directory, 0o755)?;
        self.raw(h.as_bytes())
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let h = Self::header(path, data.len() as u64, tar::EntryType::Regular, 0o644)?;
        self.raw(h.as_bytes())?;
        self.raw(data)?;
        self.pad(data.len() as u64)
    }

    /// Writes the two zero blocks that end a tar and returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.raw(&[0u8; 1024])?;
        self.inner.flush().map_err(Error::Output)?;
        Ok(self.inner)
    }

    pub fn written(&self) -> u64 {
        self.written
    }
}

impl<W: Sink> TarWriter<W> {
    /// Streams a blob of the layout into the archive and checks its size. Its digest is not
    /// checked here: the caller hashes the blob in parallel and fails the archive on a
    /// mismatch (as [`crate::export::export`] does).
    pub fn blob(
        &mut self,
        layout: &Layout,
        path: &str,
        blob: &Checked,
        progress: &dyn Progress,
    ) -> Result<()> {
        let digest = &blob.digest;
        let short = |actual: u64| -> Error {
            ocitool_layout::Error::Verify {
                digest: digest.clone(),
                path: layout.blob_path(digest),
                source: VerifyError::SizeMismatch {
                    expected: blob.size,
                    actual,
                },
            }
            .into()
        };
        let (mut src, size) = layout.open_blob(digest)?;
        if size != blob.size {
            return Err(short(size));
        }
        let h = Self::header(path, blob.size, tar::EntryType::Regular, 0o644)?;
        self.raw(h.as_bytes())?;
        let mut copied = 0u64;
        // The kernel copies page-cache pages into the archive, with no trip through user
        // space; a file system or kernel that cannot falls back to reading and writing.
        if let Some(out) = self.inner.file().map_err(Error::Output)? {
            while copied < blob.size {
                let want = (blob.size - copied).min(KERNEL_CHUNK) as usize;
                match rustix::fs::copy_file_range(&src, None, out, None, want) {
                    Ok(0) => break,
                    Ok(n) => {
                        copied += n as u64;
                        self.written += n as u64;
                        progress.advance(n as u64);
                    }
                    Err(_) if copied == 0 => break,
                    Err(e) => return Err(Error::Output(e.into())),
                }
            }
        }
        let mut buf = vec![0u8; ocitool_layout::txn::BUF_SIZE];
        while copied < blob.size {
            let want = (blob.size - copied).min(buf.len() as u64) as usize;
            let n = match src.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(layout.read_error(digest, e).into()),
            };
            self.raw(&buf[..n])?;
            copied += n as u64;
            progress.advance(n as u64);
        }
        if copied != blob.size {
            return Err(short(copied));
        }
        self.pad(blob.size)
    }
}
