//! Cross-process advisory locks (flock semantics, through std's `File::lock`).
//!
//! Two lock files live under `<layout>/.ocitool/`:
//! - `gc.lock`: every writer holds it *shared* from before it adds its first blob until its
//!   `index.json` update is durable; `gc` holds it *exclusive* for mark and sweep. So `gc` can
//!   never see a blob a live writer has added but not yet referenced, and any file left in
//!   `.ocitool/tmp/` while `gc` holds the lock belongs to a dead process.
//! - `index.lock`: held exclusive around each read-modify-write of `index.json`, so two
//!   writers never lose each other's update.
//!
//! The locks are advisory: other tools (skopeo, umoci, oras) ignore them.

use std::fs::{File, TryLockError};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::errors::{Error, Result};
use crate::fsutil;

/// What to do when a lock is held by another process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WaitMode {
    /// Block until the lock is free.
    #[default]
    Wait,
    /// Fail at once with [`Error::Locked`].
    NoWait,
}

/// A held lock; released when dropped (closing the file releases the flock).
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

/// Takes a lock on `file`, waiting or not.
fn lock_file(file: File, path: &Path, exclusive: bool, wait: WaitMode) -> Result<LockGuard> {
    let locked = |path: &Path| Error::Locked {
        path: path
            .parent()
            .and_then(Path::parent)
            .unwrap_or(path)
            .to_path_buf(),
    };
    match wait {
        WaitMode::Wait => {
            let r = if exclusive {
                file.lock()
            } else {
                file.lock_shared()
            };
            r.map_err(Error::io("lock", path))?;
        }
        WaitMode::NoWait => {
            let r = if exclusive {
                file.try_lock()
            } else {
                file.try_lock_shared()
            };
            match r {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Err(locked(path)),
                Err(TryLockError::Error(e)) => return Err(Error::io("lock", path)(e)),
            }
        }
    }
    Ok(LockGuard { _file: file })
}

/// Which lock file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockName {
    Gc,
    Index,
}

impl LockName {
    fn file_name(self) -> &'static str {
        match self {
            LockName::Gc => "gc.lock",
            LockName::Index => "index.lock",
        }
    }
}

/// The private state of a layout: `.ocitool/`, its `tmp/` and the lock files. Every one of
/// them is opened without following a symlink (a layout may come from someone else: a
/// symlink at `.ocitool/tmp` must never let `gc` empty another directory, nor one at
/// `gc.lock` make ocitool create files elsewhere), and a lock file that is a fifo or a device
/// is refused without blocking.
#[derive(Clone, Debug)]
pub(crate) struct StatePaths {
    root: PathBuf,
    pub dir: PathBuf,
    pub tmp: PathBuf,
}

impl StatePaths {
    pub fn new(root: &Path) -> StatePaths {
        let dir = root.join(".ocitool");
        StatePaths {
            root: root.to_path_buf(),
            tmp: dir.join("tmp"),
            dir,
        }
    }

    pub fn lock_path(&self, name: LockName) -> PathBuf {
        self.dir.join(name.file_name())
    }

    /// Creates `.ocitool/` and `.ocitool/tmp/` if needed (writers only), refusing symlinks.
    pub fn ensure(&self) -> Result<()> {
        fsutil::open_dir_nofollow(&self.root, &[".ocitool", "tmp"], true).map(|_| ())
    }

    /// `.ocitool/tmp/` opened without following symlinks, `None` if absent.
    pub fn open_tmp(&self) -> Result<Option<OwnedFd>> {
        fsutil::open_dir_nofollow(&self.root, &[".ocitool", "tmp"], false)
    }

    /// Takes a lock for a writer (or `gc`), creating the lock file if needed.
    pub fn acquire(&self, name: LockName, exclusive: bool, wait: WaitMode) -> Result<LockGuard> {
        let dir = fsutil::open_dir_nofollow(&self.root, &[".ocitool"], true)?
            .expect("created if missing");
        let file = fsutil::open_file_at(&dir, &self.dir, name.file_name(), true, true)?
            .expect("created if missing");
        lock_file(file, &self.lock_path(name), exclusive, wait)
    }

    /// Checks that the lock file, if it exists, is a regular file (without opening anything
    /// that could block or follow).
    pub fn check_lock_file(&self, name: LockName) -> Result<()> {
        let Some(dir) = fsutil::open_dir_nofollow(&self.root, &[".ocitool"], false)? else {
            return Ok(());
        };
        match fsutil::open_file_at(&dir, &self.dir, name.file_name(), false, false) {
            Err(e @ Error::UnsafePath { .. }) => Err(e),
            _ => Ok(()),
        }
    }

    /// A shared lock for a command that only reads: taken on the lock file if it exists
    /// (opened read-only), `None` when it does not or cannot be opened (a read-only layout
    /// that no writer ever touched), because a reader must never modify the layout. A lock
    /// "file" that is a symlink, a fifo or a device is an error, never a hang.
    pub fn acquire_shared_if_present(
        &self,
        name: LockName,
        wait: WaitMode,
    ) -> Result<Option<LockGuard>> {
        let Some(dir) = fsutil::open_dir_nofollow(&self.root, &[".ocitool"], false)? else {
            return Ok(None);
        };
        match fsutil::open_file_at(&dir, &self.dir, name.file_name(), false, false) {
            Ok(Some(file)) => lock_file(file, &self.lock_path(name), false, wait).map(Some),
            Ok(None) => Ok(None),
            Err(e @ Error::UnsafePath { .. }) => Err(e),
            Err(_) => Ok(None),
        }
    }
}
