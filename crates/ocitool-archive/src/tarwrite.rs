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

    /// Writes the header of an entry. A path too long for a ustar header (a sha512 blob,
    /// `blobs/sha512/<128 hex>`, is 141 bytes and cannot be split at a `/` into the 155-byte
    /// prefix and 100-byte name) is carried by a pax record with its `path` just before it,
    /// as Go's `archive/tar` writes it (skopeo, podman and docker read it; so does GNU tar):
    /// the record is named `<dir>/PaxHeaders.0/<file>` and the ustar header keeps the first
    /// 100 bytes of the path. Paths that fit are written exactly as before.
    fn entry_header(
        &mut self,
        path: &str,
        size: u64,
        kind: tar::EntryType,
        mode: u32,
    ) -> Result<()> {
        if path.len() <= 100 || tar::Header::new_ustar().set_path(path).is_ok() {
            let h = Self::header(path, size, kind, mode)?;
            return self.raw(h.as_bytes());
        }
        let record = pax_record("path", path);
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
        let pax_name = if dir.is_empty() {
            format!("PaxHeaders.0/{file}")
        } else {
            format!("{dir}/PaxHeaders.0/{file}")
        };
        let x = Self::truncated_header(
            &pax_name,
            record.len() as u64,
            tar::EntryType::XHeader,
            0o644,
        )?;
        self.raw(x.as_bytes())?;
        self.raw(&record)?;
        self.pad(record.len() as u64)?;
        let h = Self::truncated_header(path, size, kind, mode)?;
        self.raw(h.as_bytes())
    }

    /// A header whose name field holds the first 100 bytes of `name` (its real name is in
    /// the pax record before it).
    fn truncated_header(
        name: &str,
        size: u64,
        kind: tar::EntryType,
        mode: u32,
    ) -> Result<tar::Header> {
        let mut end = name.len().min(100);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let mut h = Self::header("x", size, kind, mode)?;
        let field = &mut h.as_old_mut().name;
        field.fill(0);
        field[..end].copy_from_slice(&name.as_bytes()[..end]);
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
        self.entry_header(path, 0, tar::EntryType::Directory, 0o755)
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> Result<()> {
        self.entry_header(path, data.len() as u64, tar::EntryType::Regular, 0o644)?;
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
        self.entry_header(path, blob.size, tar::EntryType::Regular, 0o644)?;
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

/// One pax extended-header record, `"<length> <key>=<value>\n"`, where the length counts the
/// whole record, its own digits included.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for n in [1usize, 80, 89, 90, 91, 128, 990, 995, 1000, 9990] {
            let v = "a".repeat(n);
            let r = pax_record("path", &v);
            let (len, _) = std::str::from_utf8(&r).unwrap().split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len(), "{n}");
            let exts: Vec<_> = tar::PaxExtensions::new(&r).map(|e| e.unwrap()).collect();
            assert_eq!(exts.len(), 1);
            assert_eq!(exts[0].value_bytes(), v.as_bytes());
        }
    }

    #[test]
    fn long_paths_go_in_a_pax_record_and_read_back() {
        let long = format!("blobs/sha512/{}", "ab".repeat(64));
        let mut tw = TarWriter::new(Vec::new());
        tw.dir("blobs/sha512/").unwrap();
        tw.file(&long, b"hello").unwrap();
        tw.file("index.json", b"{}").unwrap();
        let bytes = tw.finish().unwrap();
        let mut a = tar::Archive::new(&bytes[..]);
        let got: Vec<(String, Vec<u8>)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (e.path().unwrap().display().to_string(), data)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("blobs/sha512/".to_string(), vec![]),
                (long.clone(), b"hello".to_vec()),
                ("index.json".to_string(), b"{}".to_vec()),
            ]
        );
        // Short paths are plain ustar headers, as before: no pax record for them.
        let mut tw = TarWriter::new(Vec::new());
        tw.file("index.json", b"{}").unwrap();
        assert_eq!(tw.finish().unwrap().len(), 512 + 512 + 1024);
    }
}
