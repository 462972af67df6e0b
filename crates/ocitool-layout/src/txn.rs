//! Write transactions: how every byte enters a layout.
//!
//! A [`Transaction`] holds the shared `gc` lock for its whole life. Blobs are streamed into a
//! private staging directory (`.ocitool/tmp/txn-*`, same file system), hashed on the way, and
//! checked against their expected digest and size. A large blob is fsynced by a helper
//! thread as soon as it is complete, while the next one streams in. Nothing is visible in
//! `blobs/` until [`Transaction::commit`]: it waits for those fsyncs and fsyncs the other
//! staged files, renames each into
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

use ocitool_digest::{Algorithm, Digest, VerifyError};
use ocitool_spec::views::Checked;
use rayon::prelude::*;

use crate::errors::{Error, Result};
use crate::fsutil::{self, FILE_MODE};
use crate::index::IndexDoc;
use crate::layout::Layout;
use crate::lock::{LockGuard, LockName};

/// Buffer size for streaming copies. Small enough that a chunk read, hashed and written stays
/// in the CPU's cache: measured on the 3 GiB benchmark import, 64 KiB takes 2.3 s where 1 MiB
/// takes 3.6-4.0 s (the copies into the page cache and the hash both miss the cache).
pub const BUF_SIZE: usize = 64 << 10;

/// A write transaction on a layout.
///
/// Fields drop in declaration order: the staged files and the staging directory are removed
/// before the shared gc lock is released, so a `gc` never sees a live writer's staging
/// directory as stale.
pub struct Transaction<'a> {
    layout: &'a Layout,
    staged: BTreeMap<Digest, tempfile::TempPath>,
    dir: Option<tempfile::TempDir>,
    /// Blob directories that received a rename not yet made durable.
    dirty_dirs: Vec<Algorithm>,
    /// Allow moving or removing protected tags.
    force: bool,
    /// Treat blobs already in the layout as absent, and replace them with the verified
    /// copies this transaction stages (`--repair`).
    repair: bool,
    /// fsyncs of finished large blobs, running while the next ones stream in (durable
    /// layouts only); joined by `commit`.
    syncing: Vec<(Digest, BackgroundSync)>,
    _gc: LockGuard,
}

/// An fsync running on a helper thread, so the disk writes a file back while the caller goes
/// on (hashing it, or writing the next one).
pub struct BackgroundSync(std::thread::JoinHandle<io::Result<()>>);

impl BackgroundSync {
    /// Starts `fsync` of `file`.
    pub fn spawn(file: File) -> BackgroundSync {
        BackgroundSync(std::thread::spawn(move || file.sync_all()))
    }

    /// Waits for the fsync and returns its outcome.
    pub fn wait(self) -> io::Result<()> {
        self.0
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the fsync thread panicked")))
    }
}

/// Blobs from this size on are fsynced by a helper thread as soon as they are complete.
const SYNC_AHEAD_FROM: u64 = 1 << 20;

/// At most this many such fsyncs wait at once; the oldest is joined first.
const SYNC_AHEAD_MAX: usize = 8;

/// Blobs grow past this before their hashing moves to a second thread.
const PIPE_AFTER: u64 = 4 << 20;

/// How a blob being written is hashed: in the writing thread while it is small, then on a
/// second thread so that a large blob's write and hash overlap.
enum BlobHash {
    Inline(ocitool_digest::Hasher),
    Piped(ocitool_digest::HashPipe),
    /// Hashed on one helper thread and written to the disk directly by another (durable
    /// layouts; see `direct`).
    Direct(crate::direct::DirectPipe),
    /// All bytes written and hashed ([`BlobWriter::complete`]).
    Done(io::Result<Digest>),
    /// Only while switching.
    Moving,
}

/// A blob being written into the staging directory.
pub struct BlobWriter {
    file: File,
    hash: BlobHash,
    count: u64,
    path: tempfile::TempPath,
    algorithm: Algorithm,
    /// Past `PIPE_AFTER` bytes, write directly to the disk (the layout is durable).
    direct: bool,
}

impl BlobWriter {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn hash(&mut self, data: &[u8]) {
        if let BlobHash::Inline(h) = &mut self.hash
            && self.count <= PIPE_AFTER
        {
            h.update(data);
            return;
        }
        if let BlobHash::Inline(_) = self.hash {
            let BlobHash::Inline(h) = std::mem::replace(&mut self.hash, BlobHash::Moving) else {
                unreachable!()
            };
            self.hash = BlobHash::Piped(ocitool_digest::HashPipe::spawn(h));
        }
        if let BlobHash::Piped(p) = &mut self.hash {
            p.update(data);
        }
    }

    /// Ends the blob's data now: waits for its helper threads (if any) and releases their
    /// buffers. For callers that hold several finished writers before staging them. Writing
    /// afterwards is an error.
    pub fn complete(&mut self) -> io::Result<()> {
        if let BlobHash::Done(_) = self.hash {
            return Ok(());
        }
        let done = self.take_digest();
        let kept = match &done {
            Ok(d) => Ok(d.clone()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        self.hash = BlobHash::Done(kept);
        done.map(|_| ())
    }

    /// Ends the hashing (and the direct writes) and returns the digest; leaves `Moving`.
    fn take_digest(&mut self) -> io::Result<Digest> {
        match std::mem::replace(&mut self.hash, BlobHash::Moving) {
            BlobHash::Inline(h) => Ok(h.finish()),
            BlobHash::Piped(p) => Ok(p.finish()),
            BlobHash::Direct(p) => p
                .finish(&self.file)
                .map(|d| d.expect("a blob's direct pipe hashes")),
            BlobHash::Done(d) => d,
            BlobHash::Moving => unreachable!("never left moving"),
        }
    }

    fn digest(mut self) -> (io::Result<Digest>, u64, File, tempfile::TempPath) {
        let d = self.take_digest();
        (d, self.count, self.file, self.path)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let BlobHash::Direct(p) = &mut self.hash {
            p.write(buf)?;
            self.count += buf.len() as u64;
            return Ok(buf.len());
        }
        if let BlobHash::Done(_) = self.hash {
            return Err(io::Error::other("write after the blob was completed"));
        }
        let mut buf = buf;
        if self.direct {
            // Through the page cache up to PIPE_AFTER (a multiple of the direct alignment),
            // then directly.
            let room = PIPE_AFTER - self.count;
            if room == 0 {
                let BlobHash::Inline(h) = std::mem::replace(&mut self.hash, BlobHash::Moving)
                else {
                    unreachable!("only an inline hash precedes the direct pipe")
                };
                self.hash = BlobHash::Direct(crate::direct::DirectPipe::spawn(
                    &self.file,
                    Some(h),
                    self.count,
                )?);
                return self.write(buf);
            }
            buf = &buf[..buf.len().min(usize::try_from(room).unwrap_or(usize::MAX))];
        }
        let n = self.file.write(buf)?;
        self.count += n as u64;
        self.hash(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl<'a> Transaction<'a> {
    /// Starts a transaction: creates the private state directory and `blobs/sha256/` if
    /// needed and takes the shared `gc` lock.
    pub fn begin(layout: &'a Layout) -> Result<Transaction<'a>> {
        layout.state.ensure()?;
        let gc = layout
            .state
            .acquire(LockName::Gc, false, layout.options.wait)?;
        Ok(Transaction {
            layout,
            _gc: gc,
            dir: None,
            staged: BTreeMap::new(),
            dirty_dirs: Vec::new(),
            force: false,
            repair: false,
            syncing: Vec::new(),
        })
    }

    pub fn layout(&self) -> &Layout {
        self.layout
    }

    /// Allows the edit to move or remove tags the layout's policy protects (`--force`).
    pub fn set_force(&mut self, force: bool) {
        self.force = force;
    }

    /// `--repair`: blobs already in the layout count as absent, so the command stages the
    /// verified bytes it has anyway, and `commit` puts them in place of whatever is there
    /// (a blob damaged on disk since it was written is then replaced, atomically).
    pub fn set_repair(&mut self, repair: bool) {
        self.repair = repair;
    }

    /// Whether this transaction repairs present blobs.
    pub fn repairs(&self) -> bool {
        self.repair
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
        if self.repair {
            return Ok(false);
        }
        Ok(self.layout.stat_blob(&c.digest)? == Some(c.size))
    }

    /// Whether a blob of that digest is staged in this transaction.
    pub fn is_staged(&self, d: &Digest) -> bool {
        self.staged.contains_key(d)
    }

    /// The staging directory (created on first use), for blobs made by the kernel: a reflink,
    /// a `copy_file_range` copy or a hard link, checked and then installed with
    /// [`Transaction::install_verified`].
    pub fn staging_path(&mut self) -> Result<PathBuf> {
        Ok(self.staging_dir()?.to_path_buf())
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
            file,
            hash: BlobHash::Inline(ocitool_digest::Hasher::new(algorithm)),
            count: 0,
            path,
            algorithm,
            direct: self.layout.options.durable,
        })
    }

    /// Finishes a blob: checks it against `expected` (if given) and stages it under its
    /// computed digest. A mismatch deletes the file and names both digests.
    pub fn finish_blob(
        &mut self,
        writer: BlobWriter,
        expected: Option<&Checked>,
    ) -> Result<Checked> {
        let (digest, size, mut file, path) = writer.digest();
        let digest = digest.map_err(Error::io("write", path.to_path_buf()))?;
        file.flush()
            .map_err(Error::io("write", path.to_path_buf()))?;
        if let Some(exp) = expected
            && let Some(source) = VerifyError::compare(&exp.digest, exp.size, &digest, size)
        {
            return Err(Error::Verify {
                digest: exp.digest.clone(),
                path: self.layout.blob_path(&exp.digest),
                source,
            });
        }
        // A second copy of a staged blob is simply dropped (its temp file is removed).
        if self.staged.contains_key(&digest) {
            return Ok(Checked { digest, size });
        }
        self.staged.insert(digest.clone(), path);
        if self.layout.options.durable && size >= SYNC_AHEAD_FROM {
            // The disk writes this blob back while the next one streams in; `commit` waits.
            if self.syncing.len() >= SYNC_AHEAD_MAX {
                let (d, h) = self.syncing.remove(0);
                self.join_sync(&d, h)?;
            }
            self.syncing
                .push((digest.clone(), BackgroundSync::spawn(file)));
        }
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
    ///
    /// Order: the staged files are fsynced first, outside the lock (the slow part); then, under
    /// the index lock, the edit runs on a fresh read of `index.json` and is checked (protected
    /// tags); only if it succeeds are the blobs renamed into place, their directories fsynced,
    /// and `index.json` replaced. A refused edit therefore leaves no new blob behind.
    pub fn commit<T>(mut self, edit: impl FnOnce(&mut IndexDoc) -> Result<T>) -> Result<T> {
        let staged: Vec<(Digest, tempfile::TempPath)> =
            std::mem::take(&mut self.staged).into_iter().collect();
        let layout = self.layout;
        let mut synced = std::collections::BTreeSet::new();
        for (d, h) in std::mem::take(&mut self.syncing) {
            self.join_sync(&d, h)?;
            synced.insert(d);
        }
        if layout.options.durable {
            let staged: Vec<&(Digest, tempfile::TempPath)> =
                staged.iter().filter(|(d, _)| !synced.contains(d)).collect();
            let sync = |(_, p): &&(Digest, tempfile::TempPath)| -> Result<()> {
                let f = File::open(p).map_err(Error::io("open", p.to_path_buf()))?;
                f.sync_all().map_err(Error::io("fsync", p.to_path_buf()))
            };
            // Several fsyncs overlap on a thread pool; a tag (no blob) or a single blob does not
            // pay for starting one.
            if staged.len() > 1 {
                staged.par_iter().try_for_each(sync)?;
            } else {
                staged.iter().try_for_each(sync)?;
            }
        }
        let _index_lock = layout
            .state
            .acquire(LockName::Index, true, layout.options.wait)?;
        let mut index = layout.read_index()?;
        let out = check_edit(&mut index, self.force, edit)?;
        let changed = index.changed();
        if changed {
            // Every descriptor the edit added or replaced names a blob that is staged here or
            // already in the layout; checked before anything is installed, so a refused
            // commit leaves no blob behind.
            let incoming: std::collections::BTreeSet<&Digest> =
                staged.iter().map(|(d, _)| d).collect();
            for (p, d) in index.fresh() {
                let c = d.checked().map_err(|source| Error::Descriptor {
                    location: format!("index.json manifests[{p}]"),
                    source,
                })?;
                if !incoming.contains(&c.digest) && layout.stat_blob(&c.digest)?.is_none() {
                    return Err(Error::MissingBlob {
                        path: layout.blob_path(&c.digest),
                        digest: c.digest,
                    });
                }
            }
        }
        // The new index.json is written and fsynced before any blob is put in place, so a
        // full disk fails the commit while the layout is still exactly as it was; after the
        // renames below only a kill (or an I/O error) can stop it, which leaves at most
        // complete unreferenced blobs for `gc`.
        let new_index = if changed {
            Some(fsutil::prepare_file_with(
                &layout.state.tmp,
                &layout.index_path(),
                layout.options.durable,
                |w| index.write_to(w),
            )?)
        } else {
            None
        };
        for (digest, path) in staged {
            self.install(&digest, path)?;
        }
        if layout.options.durable {
            for alg in std::mem::take(&mut self.dirty_dirs) {
                layout.sync_blob_dir(alg)?;
            }
        }
        if let Some(f) = new_index {
            f.put_in_place()?;
        }
        Ok(out)
    }

    /// Waits for the fsync of a staged blob started by `finish_blob`.
    fn join_sync(&self, d: &Digest, h: BackgroundSync) -> Result<()> {
        h.wait().map_err(|e| {
            let p = self
                .staged
                .get(d)
                .map_or_else(|| self.layout.blob_path(d), |p| p.to_path_buf());
            Error::io("fsync", p)(e)
        })
    }

    /// Renames a complete, verified (and, for durable layouts, fsynced) blob file into
    /// `blobs/<alg>/<encoded>` at once, unless an intact blob of that digest is already there.
    /// For copies that publish blob by blob so an interrupted run can resume; refs still change
    /// only at `commit`.
    pub fn install_verified(&mut self, digest: &Digest, path: tempfile::TempPath) -> Result<()> {
        self.install(digest, path)
    }

    fn install(&mut self, digest: &Digest, path: tempfile::TempPath) -> Result<()> {
        let layout = self.layout;
        let alg = digest.algorithm();
        if !self.dirty_dirs.contains(&alg) {
            self.dirty_dirs.push(alg);
        }
        if !self.repair {
            let size = fs::metadata(&path)
                .map_err(Error::io("stat", path.to_path_buf()))?
                .len();
            if layout.stat_blob(digest)? == Some(size) {
                return Ok(()); // keep the blob already there
            }
        }
        layout.rename_into_place(digest, &path)?;
        // Renamed: nothing left for the temporary path to remove.
        let _ = path.keep();
        Ok(())
    }
}

/// Runs `edit` on `index` and applies the protection check [`Transaction::commit`] applies
/// (unless `force`), writing nothing: for dry runs, which must refuse what the real command
/// would. The policy is `index`'s before the edit, as in `commit`.
pub fn check_edit<T>(
    index: &mut IndexDoc,
    force: bool,
    edit: impl FnOnce(&mut IndexDoc) -> Result<T>,
) -> Result<T> {
    let policy = index.policy()?;
    let refs_before = if policy.is_empty() {
        BTreeMap::new()
    } else {
        index.ref_digests()
    };
    let out = edit(index)?;
    if index.changed() && !force {
        check_protected(index, &refs_before, &policy)?;
    }
    Ok(out)
}

/// Refuses an edit that moves or removes a protected tag. The policy read is the one in force
/// before the edit, inside the same locked read-modify-write, so no concurrent change of the
/// policy can slip between the check and the write.
fn check_protected(
    after: &IndexDoc,
    before: &BTreeMap<String, String>,
    policy: &ocitool_spec::tags::Policy,
) -> Result<()> {
    if before.is_empty() || policy.is_empty() {
        return Ok(());
    }
    let now = after.ref_digests();
    let policy = policy.matcher();
    for (name, old) in before {
        // A name replaced by a twin (the same image name spelled another way, as `tag`
        // writes it) has moved only if the twin points elsewhere.
        let new = now.get(name).cloned().or_else(|| {
            let p = *after.positions_twins(name).first()?;
            after.key(p).map(|k| k.digest.to_string())
        });
        let new = new.as_ref();
        if new == Some(old) {
            continue;
        }
        if let Some(why) = policy.protects(name) {
            return Err(Error::Protected {
                name: name.clone(),
                why,
                current: old.clone(),
                new: new.cloned(),
            });
        }
    }
    Ok(())
}

/// Hashes a file and checks it against `expected`.
pub fn verify_file(path: &Path, expected: &Checked) -> Result<()> {
    let f = File::open(path).map_err(Error::io("open", path))?;
    let mut r = ocitool_digest::VerifyingReader::new(f, expected.digest.clone(), expected.size);
    copy_limited(&mut r, &mut io::sink(), None).map_err(|e| match VerifyError::from_io(&e) {
        Some(v) => Error::Verify {
            digest: expected.digest.clone(),
            path: path.to_path_buf(),
            source: v.clone(),
        },
        None => Error::io("read", path)(e),
    })?;
    Ok(())
}

/// Copies `reader` into `writer` with a `BUF_SIZE` buffer; with `limit`, fails as soon as more
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
