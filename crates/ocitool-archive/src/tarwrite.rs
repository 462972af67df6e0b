//! A deterministic tar writer for archives ocitool produces: ustar headers, fixed owner
//! (0:0, no names), fixed mtime, fixed modes, entries in the order given. Blobs are streamed
//! from the layout and verified on the way (size, and the digest hashed on a second thread),
//! so an archive never carries bytes other than the layout's, and memory stays bounded.

use std::io::{self, Read, Write};

use ocitool_digest::{HashPipe, VerifyError};
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

    /// Streams a blob of the layout into the archive, checking its size and, on a second
    /// thread fed the same buffers, its digest: one pass over the blob.
    pub fn blob(
        &mut self,
        layout: &Layout,
        path: &str,
        blob: &Checked,
        progress: &dyn Progress,
    ) -> Result<()> {
        let digest = &blob.digest;
        let mismatch = |source: VerifyError| -> Error {
            ocitool_layout::Error::Verify {
                digest: digest.clone(),
                path: layout.blob_path(digest),
                source,
            }
            .into()
        };
        let (mut src, size) = layout.open_blob(digest)?;
        if size != blob.size {
            return Err(mismatch(VerifyError::SizeMismatch {
                expected: blob.size,
                actual: size,
            }));
        }
        let h = Self::header(path, blob.size, tar::EntryType::Regular, 0o644)?;
        self.raw(h.as_bytes())?;
        let mut hash = HashPipe::new(digest.algorithm());
        let mut buf = vec![0u8; ocitool_layout::txn::BUF_SIZE];
        let mut copied = 0u64;
        while copied < blob.size {
            let want = (blob.size - copied).min(buf.len() as u64) as usize;
            let n = match src.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(layout.read_error(digest, e).into()),
            };
            self.raw(&buf[..n])?;
            hash.update(&buf[..n]);
            copied += n as u64;
            progress.advance(n as u64);
        }
        if copied != blob.size {
            return Err(mismatch(VerifyError::SizeMismatch {
                expected: blob.size,
                actual: copied,
            }));
        }
        self.pad(blob.size)?;
        let actual = hash.finish();
        if actual != *digest {
            return Err(mismatch(VerifyError::DigestMismatch {
                expected: digest.clone(),
                actual,
            }));
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
