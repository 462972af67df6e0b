//! Resumable downloads: a blob that arrives over a network, kept across runs until it is
//! complete.
//!
//! A [`Download`] writes to `.ocitool/partial/<alg>-<hex>` (the layout's private state, same
//! file system as `blobs/`), opened without following symlinks and held under an exclusive
//! `flock` while it is written, so two processes never write one file (the second one
//! downloads into the transaction's staging directory instead, without resuming). Every byte
//! is hashed as it arrives; a resumed download first re-hashes what the file already holds,
//! so the bytes on disk are always the bytes checked. [`Download::finish`] checks digest and
//! size, fsyncs (durable layouts), and publishes the blob through
//! [`Transaction::install_verified`]; a mismatch deletes the partial file. An interrupted
//! download is kept ([`Download::suspend`], or simply dropped) for the next run.
//!
//! Partial files belong to no ref: `gc` (which runs only while no writer holds the layout)
//! removes those not written to for [`STALE_AFTER`] and those whose blob is already present
//! ([`sweep_stale`]).

use std::fs::{self, File, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ocitool_digest::{Digest, Hasher, VerifyError};
use ocitool_spec::views::Checked;

use crate::direct::DirectPipe;
use crate::errors::{Error, Result};
use rustix::fs::{AtFlags, FileType};
use rustix::io::Errno;

use crate::fsutil::{self, FILE_MODE};
use crate::layout::Layout;
use crate::txn::{BUF_SIZE, BackgroundSync, Transaction};

/// A partial download untouched for this long is removed by `gc`.
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Blobs from this size on are written straight to the disk in durable layouts (see
/// `direct`), from an aligned offset.
const DIRECT_FROM: u64 = 4 << 20;

/// Alignment of a resumed direct download's first write (what `direct` needs).
const ALIGN: u64 = 4096;

/// The directory of partial downloads.
pub fn dir(layout: &Layout) -> PathBuf {
    layout.root().join(".ocitool").join("partial")
}

fn file_name(d: &Digest) -> String {
    format!("{}-{}", d.algorithm(), d.encoded())
}

/// How the bytes of a download are hashed and written.
enum Sink {
    /// Hashed here, written through the page cache.
    Inline(Hasher),
    /// Hashed by one helper thread and written to the disk directly by another.
    Direct(DirectPipe),
    /// Finished or failed.
    Done,
}

/// A blob being downloaded into a layout (see the module docs).
pub struct Download {
    file: File,
    path: PathBuf,
    /// Kept across runs (`.ocitool/partial`), or a staging file of this transaction.
    resumable: bool,
    expected: Checked,
    /// Bytes in the file, all hashed.
    written: u64,
    /// Where this run started writing.
    resumed_at: u64,
    sink: Sink,
    durable: bool,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("path", &self.path)
            .field("digest", &self.expected.digest)
            .field("written", &self.written)
            .finish()
    }
}

impl Download {
    /// Starts or resumes the download of `expected` in `txn`'s layout. The transaction holds
    /// the layout's gc lock, so `gc` never removes the file while it is in use.
    pub fn begin(txn: &mut Transaction<'_>, expected: &Checked) -> Result<Download> {
        let layout = txn.layout();
        let durable = layout.options().durable;
        let dir = dir(layout);
        // `.ocitool/partial/` and the file in it are opened without following symlinks; a
        // fifo, a device or a symlink there is refused, never opened.
        let dir_fd = fsutil::open_dir_nofollow(layout.root(), &[".ocitool", "partial"], true)?
            .expect("created if missing");
        let name = file_name(&expected.digest);
        let path = dir.join(&name);
        let file =
            fsutil::open_file_at(&dir_fd, &dir, &name, true, true)?.expect("created if missing");
        let md = file.metadata().map_err(Error::io("stat", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                // Another process downloads this blob: download a private copy.
                return Download::staged(txn, expected);
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path)(e)),
        }
        let mut d = Download {
            file,
            path,
            resumable: true,
            expected: expected.clone(),
            written: 0,
            resumed_at: 0,
            sink: Sink::Done,
            durable,
        };
        d.resume_from(md.len())?;
        Ok(d)
    }

    /// A download into the transaction's staging directory (not resumable).
    fn staged(txn: &mut Transaction<'_>, expected: &Checked) -> Result<Download> {
        let durable = txn.layout().options().durable;
        let staging = txn.staging_path()?;
        let tmp = tempfile::Builder::new()
            .prefix("download-")
            .permissions(fs::Permissions::from_mode(FILE_MODE))
            .tempfile_in(&staging)
            .map_err(Error::io("create a temporary blob in", &staging))?;
        let (file, path) = tmp.into_parts();
        let path = path
            .keep()
            .map_err(|e| Error::io("keep", &staging)(e.error))?;
        let mut d = Download {
            file,
            path,
            resumable: false,
            expected: expected.clone(),
            written: 0,
            resumed_at: 0,
            sink: Sink::Done,
            durable,
        };
        d.resume_from(0)?;
        Ok(d)
    }

    /// Keeps the first `have` bytes of the file (fewer where a direct write needs an aligned
    /// start, none if the file is longer than the blob), hashes them, and sets up the sink.
    fn resume_from(&mut self, have: u64) -> Result<()> {
        let size = self.expected.size;
        let direct = self.durable && size >= DIRECT_FROM;
        let mut keep = if have > size { 0 } else { have };
        if direct {
            keep -= keep % ALIGN;
        }
        self.file
            .set_len(keep)
            .map_err(Error::io("truncate", &self.path))?;
        let mut hasher = Hasher::new(self.expected.digest.algorithm());
        if keep > 0 {
            self.file
                .seek(SeekFrom::Start(0))
                .map_err(Error::io("seek", &self.path))?;
            let mut buf = vec![0u8; BUF_SIZE];
            let mut r = (&self.file).take(keep);
            loop {
                let n = r.read(&mut buf).map_err(Error::io("read", &self.path))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
        }
        self.file
            .seek(SeekFrom::Start(keep))
            .map_err(Error::io("seek", &self.path))?;
        self.written = keep;
        self.resumed_at = keep;
        self.sink = if direct {
            Sink::Direct(
                DirectPipe::spawn(&self.file, Some(hasher), keep)
                    .map_err(Error::io("write", &self.path))?,
            )
        } else {
            Sink::Inline(hasher)
        };
        Ok(())
    }

    /// Bytes already held: where the download continues (a `Range: bytes=N-` request).
    pub fn offset(&self) -> u64 {
        self.written
    }

    /// Bytes this run found already downloaded.
    pub fn resumed_at(&self) -> u64 {
        self.resumed_at
    }

    pub fn digest(&self) -> &Digest {
        &self.expected.digest
    }

    /// Drops what the file holds and starts over (the server ignored a range request).
    pub fn restart(&mut self) -> Result<()> {
        self.close_sink()?;
        self.resume_from(0)
    }

    /// Appends `data`. More bytes than the blob's size is an error (the file keeps the
    /// bytes up to the size).
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let room = self.expected.size - self.written;
        if data.len() as u64 > room {
            return Err(self.verify_error(VerifyError::TooLong {
                expected: self.expected.size,
            }));
        }
        let r = match &mut self.sink {
            Sink::Inline(h) => {
                h.update(data);
                self.file.write_all(data)
            }
            Sink::Direct(p) => p.write(data),
            Sink::Done => Err(io::Error::other("write after the download ended")),
        };
        r.map_err(Error::io("write", &self.path))?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Ends the writes and returns the digest of the file's content.
    fn close_sink(&mut self) -> Result<Option<Digest>> {
        match std::mem::replace(&mut self.sink, Sink::Done) {
            Sink::Inline(h) => Ok(Some(h.finish())),
            Sink::Direct(p) => p.finish(&self.file).map_err(Error::io("write", &self.path)),
            Sink::Done => Ok(None),
        }
    }

    fn verify_error(&self, source: VerifyError) -> Error {
        Error::Verify {
            digest: self.expected.digest.clone(),
            path: self.path.clone(),
            source,
        }
    }

    /// Checks the complete download against its digest and size and publishes it as a blob
    /// of the layout (at once, as `copy` does: a rerun finds it present). On a mismatch the
    /// file is deleted and the error names the digest.
    pub fn finish(mut self, txn: &mut Transaction<'_>) -> Result<Checked> {
        let digest = self.close_sink()?;
        let actual = digest.ok_or_else(|| {
            Error::io("finish", &self.path)(io::Error::other("the download already ended"))
        })?;
        if let Some(v) = VerifyError::compare(
            &self.expected.digest,
            self.expected.size,
            &actual,
            self.written,
        ) {
            let _ = fs::remove_file(&self.path);
            return Err(self.verify_error(v));
        }
        if self.durable {
            let f = self
                .file
                .try_clone()
                .map_err(Error::io("open", &self.path))?;
            BackgroundSync::spawn(f)
                .wait()
                .map_err(Error::io("fsync", &self.path))?;
        }
        let tmp = tempfile::TempPath::try_from_path(&self.path)
            .map_err(Error::io("publish", &self.path))?;
        txn.install_verified(&self.expected.digest, tmp)?;
        Ok(self.expected.clone())
    }

    /// Stops the download and keeps what arrived for the next run (a staging file is
    /// removed). Also what dropping a `Download` does, without reporting errors.
    pub fn suspend(mut self) -> Result<u64> {
        let r = self.close_sink();
        if !self.resumable {
            let _ = fs::remove_file(&self.path);
        }
        r.map(|_| self.written)
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        let _ = self.close_sink();
        if !self.resumable && self.path.exists() {
            // Installed files were renamed away; what is left of a staging file goes.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Removes partial downloads not written to for [`STALE_AFTER`] and those whose blob the
/// layout already has; returns how many (were or would be) removed. Only for `gc`, which
/// holds the gc lock exclusively, so no live download is among them.
pub fn sweep_stale(layout: &Layout, dry_run: bool) -> Result<usize> {
    let dir = dir(layout);
    let Some(fd) = fsutil::open_dir_nofollow(layout.root(), &[".ocitool", "partial"], false)?
    else {
        return Ok(0);
    };
    let read_err = |e: Errno| Error::io("read directory", &dir)(e.into());
    let now = SystemTime::now();
    let mut removed = 0;
    for e in rustix::fs::Dir::read_from(&fd).map_err(read_err)? {
        let e = e.map_err(read_err)?;
        let name = e.file_name().to_owned();
        if name.as_bytes() == b"." || name.as_bytes() == b".." {
            continue;
        }
        let shown = dir.join(name.to_string_lossy().as_ref());
        let st = match rustix::fs::statat(&fd, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(Error::io("stat", shown)(e.into())),
        };
        let kind = FileType::from_raw_mode(st.st_mode);
        let digest = name
            .to_str()
            .ok()
            .and_then(|n| n.split_once('-'))
            .and_then(|(alg, hex)| Digest::parse(&format!("{alg}:{hex}")).ok());
        let age = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|t| t.as_secs() as i64 - st.st_mtime)
            .unwrap_or(0);
        let old = age >= STALE_AFTER.as_secs() as i64;
        let present = match &digest {
            Some(d) => layout.stat_blob(d)?.is_some(),
            None => false,
        };
        // Anything that is not a partial download of ours (a stray name, a directory) goes too.
        if !(old || present || digest.is_none() || kind != FileType::RegularFile) {
            continue;
        }
        if !dry_run {
            let r: io::Result<()> = if kind == FileType::Directory {
                fs::remove_dir_all(&shown)
            } else {
                rustix::fs::unlinkat(&fd, name.as_c_str(), AtFlags::empty()).map_err(Into::into)
            };
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("remove", shown)(e)),
            }
        }
        removed += 1;
    }
    Ok(removed)
}

/// Whether `path` is a partial download of `layout` (for tests and messages).
pub fn is_partial_path(layout: &Layout, path: &Path) -> bool {
    path.starts_with(dir(layout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;

    fn layout(d: &Path, durable: bool) -> Layout {
        let o = Options {
            durable,
            ..Options::default()
        };
        Layout::init(d.join("l"), o).unwrap().0
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn an_interrupted_download_resumes_and_publishes_the_verified_blob() {
        for (durable, size) in [(false, 100_000usize), (true, (5 << 20) + 12_345)] {
            let t = tempfile::tempdir().unwrap();
            let l = layout(t.path(), durable);
            let bytes = data(size);
            let c = Checked {
                digest: Digest::sha256(&bytes),
                size: size as u64,
            };
            {
                let mut txn = Transaction::begin(&l).unwrap();
                let mut d = Download::begin(&mut txn, &c).unwrap();
                assert_eq!(d.offset(), 0);
                d.write(&bytes[..size / 2 + 1]).unwrap();
                assert_eq!(d.suspend().unwrap(), (size / 2 + 1) as u64);
            }
            let p = dir(&l).join(file_name(&c.digest));
            assert_eq!(fs::metadata(&p).unwrap().len(), (size / 2 + 1) as u64);
            let mut txn = Transaction::begin(&l).unwrap();
            let mut d = Download::begin(&mut txn, &c).unwrap();
            let at = d.offset() as usize;
            assert!(at > 0 && at <= size / 2 + 1, "{at}");
            if durable {
                assert_eq!(at % ALIGN as usize, 0);
            }
            d.write(&bytes[at..]).unwrap();
            d.finish(&mut txn).unwrap();
            assert_eq!(fs::read(l.blob_path(&c.digest)).unwrap(), bytes);
            assert!(!p.exists());
        }
    }

    #[test]
    fn a_corrupt_partial_file_fails_the_check_and_is_removed() {
        let t = tempfile::tempdir().unwrap();
        let l = layout(t.path(), false);
        let bytes = data(50_000);
        let c = Checked {
            digest: Digest::sha256(&bytes),
            size: bytes.len() as u64,
        };
        fs::create_dir_all(dir(&l)).unwrap();
        let p = dir(&l).join(file_name(&c.digest));
        let mut bad = bytes[..20_000].to_vec();
        bad[10] ^= 1;
        fs::write(&p, &bad).unwrap();
        let mut txn = Transaction::begin(&l).unwrap();
        let mut d = Download::begin(&mut txn, &c).unwrap();
        assert_eq!(d.offset(), 20_000);
        d.write(&bytes[20_000..]).unwrap();
        let e = d.finish(&mut txn).unwrap_err();
        assert!(matches!(e, Error::Verify { .. }), "{e}");
        assert!(!p.exists());
        assert!(l.stat_blob(&c.digest).unwrap().is_none());
        // Too many bytes are refused before they are written.
        let mut d = Download::begin(&mut txn, &c).unwrap();
        d.write(&bytes).unwrap();
        assert!(matches!(d.write(b"x"), Err(Error::Verify { .. })));
    }

    #[test]
    fn a_symlink_in_place_of_a_partial_file_is_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let l = layout(t.path(), false);
        let bytes = data(10);
        let c = Checked {
            digest: Digest::sha256(&bytes),
            size: 10,
        };
        fs::create_dir_all(dir(&l)).unwrap();
        let target = t.path().join("outside");
        fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, dir(&l).join(file_name(&c.digest))).unwrap();
        let mut txn = Transaction::begin(&l).unwrap();
        assert!(Download::begin(&mut txn, &c).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }

    #[test]
    fn a_busy_partial_file_gives_a_private_download() {
        let t = tempfile::tempdir().unwrap();
        let l = layout(t.path(), false);
        let bytes = data(1000);
        let c = Checked {
            digest: Digest::sha256(&bytes),
            size: 1000,
        };
        let mut txn = Transaction::begin(&l).unwrap();
        let mut a = Download::begin(&mut txn, &c).unwrap();
        a.write(&bytes[..10]).unwrap();
        let mut b = Download::begin(&mut txn, &c).unwrap();
        assert!(!b.resumable);
        b.write(&bytes).unwrap();
        b.finish(&mut txn).unwrap();
        assert_eq!(fs::read(l.blob_path(&c.digest)).unwrap(), bytes);
        drop(a);
    }

    #[test]
    fn gc_sweeps_stale_and_superfluous_partial_files() {
        let t = tempfile::tempdir().unwrap();
        let l = layout(t.path(), false);
        let fresh = data(100);
        let old = data(200);
        let done = data(300);
        let mut txn = Transaction::begin(&l).unwrap();
        for b in [&fresh, &old, &done] {
            let c = Checked {
                digest: Digest::sha256(b),
                size: b.len() as u64,
            };
            let mut d = Download::begin(&mut txn, &c).unwrap();
            d.write(&b[..50]).unwrap();
            d.suspend().unwrap();
        }
        let c = Checked {
            digest: Digest::sha256(&done),
            size: 300,
        };
        txn.stage_bytes(&done, Some(&c)).unwrap();
        txn.commit(|_| Ok(())).unwrap();
        let old_path = dir(&l).join(file_name(&Digest::sha256(&old)));
        let f = File::options().write(true).open(&old_path).unwrap();
        f.set_modified(SystemTime::now() - STALE_AFTER - Duration::from_secs(60))
            .unwrap();
        fs::write(dir(&l).join("junk"), b"x").unwrap();
        assert_eq!(sweep_stale(&l, true).unwrap(), 3);
        assert_eq!(fs::read_dir(dir(&l)).unwrap().count(), 4);
        // gc first removes the unreferenced `done` blob, so its partial file is no longer
        // superfluous and stays with the fresh one; the old one and the junk go.
        let r = crate::gc::gc(&l, crate::gc::GcOptions::default()).unwrap();
        assert_eq!(r.stale_temp, 2, "{r:?}");
        let mut left: Vec<_> = fs::read_dir(dir(&l))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want = [
            file_name(&Digest::sha256(&fresh)),
            file_name(&Digest::sha256(&done)),
        ];
        want.sort();
        assert_eq!(left, want);
    }
}
