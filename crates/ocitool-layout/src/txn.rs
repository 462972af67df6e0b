//! Write transactions: how every byte enters a layout.
//!
//! A [`Transaction`] holds the shared `gc` lock for its whole life. Blobs are streamed into a
//! private staging directory (`.ocitool/tmp/txn-*`, same file system), hashed on the way, and
//! checked against their expected digest and size. Nothing is visible in `blobs/` until
//! [`Transaction::commit`]: it fsyncs the staged files, renames each into
//! `blobs/<alg>/<encoded>` (keeping a blob that is already there), fsyncs the blob
//! directories, and only then edits `index.json` under the index lock (read, modify, write to
//! a temporary file, fsync, rename, fsync the directory).
//!
//! So a failed command leaves the layout as it was (the staging directory is removed), and a
//! killed one leaves at worst unreferenced complete blobs and a stale staging directory that
//! `gc` removes. `index.json` never names a blob that is not durable.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ocitool_digest::{Algorithm, Digest, HashingWriter, VerifyError};
use ocitool_spec::views::Checked;
use rayon::prelude::*;

use crate::errors::{Error, Result};
use crate::fsutil::{self, FILE_MODE};
use crate::index::IndexDoc;
use crate::layout::Layout;
use crate::lock::{self, LockGuard};

/// Buffer size for streaming copies.
pub const BUF_SIZE: usize = 1 << 20;

/// A write transaction on a layout.
pub struct Transaction<'a> {
    layout: &'a Layout,
    _gc: LockGuard,
    dir: Option<tempfile::TempDir>,
    staged: BTreeMap<Digest, tempfile::TempPath>,
}

/// A blob being written into the staging directory.
pub struct BlobWriter {
    inner: HashingWriter<File>,
    path: tempfile::TempPath,
    algorithm: Algorithm,
}

impl BlobWriter {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.inner.count()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<'a> Transaction<'a> {
    /// Starts a transaction: creates the private state directory and `blobs/sha256/` if
    /// needed and takes the shared `gc` lock.
    pub fn begin(layout: &'a Layout) -> Result<Transaction<'a>> {
        layout.state.ensure()?;
        let gc = lock::acquire(&layout.state.gc_lock, false, layout.options.wait)?;
        Ok(Transaction {
            layout,
            _gc: gc,
            dir: None,
            staged: BTreeMap::new(),
        })
    }

    pub fn layout(&self) -> &Layout {
        self.layout
    }

    fn staging_dir(&mut self) -> Result<&Path> {
        if self.dir.is_none() {
            let tmp = &self.layout.state.tmp;
            let d = tempfile::Builder::new()
                .prefix("txn-")
                .tempdir_in(tmp)
                .map_err(Error::io("create staging directory in", tmp))?;
            self.dir = Some(d);
        }
        Ok(self.dir.as_ref().expect("just created").path())
    }

    /// Whether the layout already has a blob of that digest and size, or it is staged.
    pub fn has_blob(&self, c: &Checked) -> Result<bool> {
        if self.staged.contains_key(&c.digest) {
            return Ok(true);
        }
        Ok(self.layout.stat_blob(&c.digest)? == Some(c.size))
    }

    /// Whether a blob of that digest is staged in this transaction.
    pub fn is_staged(&self, d: &Digest) -> bool {
        self.staged.contains_key(d)
    }

    /// Drops the staged blobs `keep` rejects (their temporary files are removed). For
    /// commands that stage everything a stream holds and learn only at its end what is needed.
    pub fn retain_staged(&mut self, keep: impl Fn(&Digest) -> bool) {
        self.staged.retain(|d, _| keep(d));
    }

    /// Digests of the blobs staged so far.
    pub fn staged_digests(&self) -> impl Iterator<Item = &Digest> {
        self.staged.keys()
    }

    /// Opens a staged or committed blob for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        if let Some(p) = self.staged.get(d) {
            return File::open(p).map_err(Error::io("open", p.to_path_buf()));
        }
        Ok(self.layout.open_blob(d)?.0)
    }

    /// A new blob file in the staging directory, hashing with `algorithm` as it is written.
    pub fn blob_writer(&mut self, algorithm: Algorithm) -> Result<BlobWriter> {
        let dir = self.staging_dir()?.to_path_buf();
        let tmp = tempfile::Builder::new()
            .prefix("blob-")
            .permissions(fs::Permissions::from_mode(FILE_MODE))
            .tempfile_in(&dir)
            .map_err(Error::io("create temporary blob in", &dir))?;
        let (file, path) = tmp.into_parts();
        Ok(BlobWriter {
            inner: HashingWriter::new(file, algorithm),
            path,
            algorithm,
        })
    }

    /// Finishes a blob: checks it against `expected` (if given) and stages it under its
    /// computed digest. A mismatch deletes the file and names both digests.
    pub fn finish_blob(
        &mut self,
        writer: BlobWriter,
        expected: Option<&Checked>,
    ) -> Result<Checked> {
        let BlobWriter { inner, path, .. } = writer;
        let (digest, size, mut file) = inner.finish();
        file.flush()
            .map_err(Error::io("write", path.to_path_buf()))?;
        drop(file);
        if let Some(exp) = expected {
            let err = if size != exp.size {
                Some(VerifyError::SizeMismatch {
                    expected: exp.size,
                    actual: size,
                })
            } else if digest != exp.digest {
                Some(VerifyError::DigestMismatch {
                    expected: exp.digest.clone(),
                    actual: digest.clone(),
                })
            } else {
                None
            };
            if let Some(source) = err {
                return Err(Error::Verify {
                    digest: exp.digest.clone(),
                    path: self.layout.blob_path(&exp.digest),
                    source,
                });
            }
        }
        // A second copy of a staged blob is simply dropped (its temp file is removed).
        self.staged.entry(digest.clone()).or_insert(path);
        Ok(Checked { digest, size })
    }

    /// Streams `reader` into a staged blob, hashed with `algorithm` (or the expected digest's).
    pub fn stage_reader(
        &mut self,
        mut reader: impl Read,
        algorithm: Algorithm,
        expected: Option<&Checked>,
    ) -> Result<Checked> {
        let algorithm = expected.map_or(algorithm, |e| e.digest.algorithm());
        let mut w = self.blob_writer(algorithm)?;
        let limit = expected.map(|e| e.size);
        copy_limited(&mut reader, &mut w, limit).map_err(|e| match VerifyError::from_io(&e) {
            Some(v) => Error::Verify {
                digest: expected
                    .map(|x| x.digest.clone())
                    .unwrap_or_else(|| Digest::sha256(b"")),
                path: w.path().to_path_buf(),
                source: v.clone(),
            },
            None => Error::io("write blob", w.path().to_path_buf())(e),
        })?;
        self.finish_blob(w, expected)
    }

    /// Stages a blob held in memory (a document ocitool created or read whole).
    pub fn stage_bytes(&mut self, bytes: &[u8], expected: Option<&Checked>) -> Result<Checked> {
        if let Some(e) = expected
            && self.has_blob(e)?
        {
            let d = Digest::of(e.digest.algorithm(), bytes);
            if d == e.digest && bytes.len() as u64 == e.size {
                return Ok(e.clone());
            }
        }
        self.stage_reader(bytes, Algorithm::Sha256, expected)
    }

    /// Makes the staged blobs durable and visible, then applies `edit` to `index.json` under
    /// the index lock. `index.json` is rewritten only if the edit changed it. Every descriptor
    /// the edit adds or changes must name a blob present in the layout.
    pub fn commit<T>(mut self, edit: impl FnOnce(&mut IndexDoc) -> Result<T>) -> Result<T> {
        let staged = std::mem::take(&mut self.staged);
        self.publish(staged)?;
        let layout = self.layout;
        let _index_lock = lock::acquire(&layout.state.index_lock, true, layout.options.wait)?;
        let mut index = layout.read_index()?;
        let before = index.to_bytes();
        let before_digests: std::collections::BTreeSet<String> = index
            .entries()
            .into_iter()
            .map(|e| e.descriptor.digest)
            .collect();
        let out = edit(&mut index)?;
        let after = index.to_bytes();
        if after != before {
            for e in index.entries() {
                if before_digests.contains(&e.descriptor.digest) {
                    continue;
                }
                let c = e.descriptor.checked().map_err(|source| Error::Descriptor {
                    location: e.location(),
                    source,
                })?;
                if layout.stat_blob(&c.digest)?.is_none() {
                    return Err(Error::MissingBlob {
                        path: layout.blob_path(&c.digest),
                        digest: c.digest,
                    });
                }
            }
            fsutil::replace_file(&layout.state.tmp, &layout.index_path(), &after)?;
        }
        Ok(out)
    }

    /// fsyncs every staged file (in parallel), renames each into place unless an intact blob
    /// of that digest is already there, and fsyncs the blob directories.
    fn publish(&mut self, staged: BTreeMap<Digest, tempfile::TempPath>) -> Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        let layout = self.layout;
        let mut dirs: Vec<PathBuf> = Vec::new();
        for alg in staged.keys().map(Digest::algorithm) {
            let d = layout.blob_dir(alg);
            if !dirs.contains(&d) {
                fs::create_dir_all(&d).map_err(Error::io("create", &d))?;
                dirs.push(d);
            }
        }
        let items: Vec<(Digest, tempfile::TempPath)> = staged.into_iter().collect();
        items.par_iter().try_for_each(|(_, p)| -> Result<()> {
            let f = File::open(p).map_err(Error::io("open", p.to_path_buf()))?;
            f.sync_all().map_err(Error::io("fsync", p.to_path_buf()))
        })?;
        for (digest, path) in items {
            let dest = layout.blob_path(&digest);
            let size = fs::metadata(&path)
                .map_err(Error::io("stat", path.to_path_buf()))?
                .len();
            match layout.stat_blob(&digest) {
                Ok(Some(existing)) if existing == size => continue, // keep the blob already there
                Ok(_) => {}
                Err(Error::NotRegularFile { .. }) => {
                    // A directory or symlink squatting on a blob name is never replaced.
                    return Err(Error::NotRegularFile {
                        digest: digest.clone(),
                        path: dest,
                        kind: "non-file",
                    });
                }
                Err(e) => return Err(e),
            }
            path.persist(&dest).map_err(|e| Error::Io {
                op: "rename into place",
                path: dest.clone(),
                source: e.error,
            })?;
        }
        for d in &dirs {
            fsutil::fsync_dir(d)?;
        }
        Ok(())
    }
}

/// Copies `reader` into `writer` with a 1 MiB buffer; with `limit`, fails as soon as more
/// than `limit` bytes arrive (an endless or oversized stream cannot fill the disk).
pub fn copy_limited(
    reader: &mut impl Read,
    writer: &mut impl Write,
    limit: Option<u64>,
) -> io::Result<u64> {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        if let Some(l) = limit
            && total > l
        {
            return Err(VerifyError::TooLong { expected: l }.into_io());
        }
        writer.write_all(&buf[..n])?;
    }
}
