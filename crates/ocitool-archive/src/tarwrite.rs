//! A deterministic tar writer for archives ocitool produces: ustar headers, fixed owner
//! (0:0, no names), fixed mtime, fixed modes, entries in the order given. Blobs are streamed
//! from the layout and verified on the way (digest and size, and optionally the diff_id of a
//! layer, computed on a second thread), so an archive never carries bytes other than the
//! layout's, and memory stays bounded.

use std::io::{self, Read, Write};
use std::sync::mpsc;

use ocitool_compress::{Compression, DecodeOptions, PushDecoder};
use ocitool_digest::{Algorithm, Digest, HashingWriter};
use ocitool_layout::{Layout, Progress};
use ocitool_spec::views::Checked;

use crate::errors::{Error, Result};

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
        self.inner
            .write_all(b)
            .map_err(Error::io("write the archive"))?;
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

    /// Streams a blob of the layout into the archive, checking its digest and size, and, for a
    /// layer with `diff_id`, that its decompressed content hashes to it.
    pub fn blob(
        &mut self,
        layout: &Layout,
        path: &str,
        blob: &Checked,
        layer: Option<(Compression, &Digest)>,
        progress: &dyn Progress,
    ) -> Result<()> {
        let mut src = layout.open_verified(blob)?;
        let h = Self::header(path, blob.size, tar::EntryType::Regular, 0o644)?;
        self.raw(h.as_bytes())?;
        let digest = &blob.digest;
        // The diff_id check runs on a second thread, fed the same buffers.
        let checker = layer
            .filter(|(c, d)| {
                !(*c == Compression::None && d.algorithm() == digest.algorithm() && *d == digest)
            })
            .map(|(c, want)| DiffChecker::spawn(c, want.clone()));
        let mut buf = vec![0u8; ocitool_layout::txn::BUF_SIZE];
        let mut copied = 0u64;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(layout.read_error(digest, e).into()),
            };
            self.raw(&buf[..n])?;
            copied += n as u64;
            progress.advance(n as u64);
            if let Some(c) = &checker {
                c.feed(buf[..n].to_vec());
            }
        }
        debug_assert_eq!(copied, blob.size);
        self.pad(blob.size)?;
        if let Some(c) = checker {
            c.finish().map_err(|why| Error::Image {
                image: format!("layer {digest}"),
                why,
            })?;
        }
        Ok(())
    }

    /// Writes the two zero blocks that end a tar and returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.raw(&[0u8; 1024])?;
        self.inner.flush().map_err(Error::io("write the archive"))?;
        Ok(self.inner)
    }

    pub fn written(&self) -> u64 {
        self.written
    }
}

/// Decompresses and hashes a layer on its own thread.
struct DiffChecker {
    tx: mpsc::SyncSender<Vec<u8>>,
    handle: std::thread::JoinHandle<std::result::Result<(), String>>,
}

impl DiffChecker {
    fn spawn(c: Compression, want: Digest) -> DiffChecker {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4);
        let handle = std::thread::spawn(move || {
            let mut d = PushDecoder::new(
                c,
                HashingWriter::new(io::sink(), Algorithm::Sha256),
                DecodeOptions::default(),
            )
            .map_err(|e| e.to_string())?;
            let mut failed = None;
            for chunk in rx {
                if failed.is_none()
                    && let Err(e) = d.write_all(&chunk)
                {
                    failed = Some(format!("does not decompress as {c}: {e}"));
                }
            }
            if let Some(f) = failed {
                return Err(f);
            }
            let (got, _, _) = d
                .finish()
                .map_err(|e| format!("does not decompress as {c}: {e}"))?
                .finish();
            if got != want {
                return Err(format!("decompresses to {got}, but its diff_id is {want}"));
            }
            Ok(())
        });
        DiffChecker { tx, handle }
    }

    fn feed(&self, chunk: Vec<u8>) {
        // A send fails only if the thread ended early, which finish() reports.
        let _ = self.tx.send(chunk);
    }

    fn finish(self) -> std::result::Result<(), String> {
        drop(self.tx);
        self.handle
            .join()
            .unwrap_or_else(|_| Err("the diff_id checker panicked".into()))
    }
}
