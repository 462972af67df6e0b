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

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::errors::{Error, Result};

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

pub(crate) fn acquire(path: &Path, exclusive: bool, wait: WaitMode) -> Result<LockGuard> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(Error::io("open lock file", path))?;
    lock_file(file, path, exclusive, wait)
}

/// Takes a shared lock on an existing lock file, opened read-only; `None` when the file does
/// not exist (no ocitool writer has ever touched this layout) or cannot be opened (a
/// read-only layout), because a reader must never modify the layout.
pub(crate) fn acquire_shared_if_present(path: &Path, wait: WaitMode) -> Result<Option<LockGuard>> {
    match File::open(path) {
        Ok(file) => lock_file(file, path, false, wait).map(Some),
        Err(_) => Ok(None),
    }
}

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

/// Paths of the private state of a layout.
#[derive(Clone, Debug)]
pub(crate) struct StatePaths {
    pub tmp: PathBuf,
    pub gc_lock: PathBuf,
    pub index_lock: PathBuf,
}

impl StatePaths {
    pub fn new(root: &Path) -> StatePaths {
        let dir = root.join(".ocitool");
        StatePaths {
            tmp: dir.join("tmp"),
            gc_lock: dir.join("gc.lock"),
            index_lock: dir.join("index.lock"),
        }
    }

    /// Creates `.ocitool/` and `.ocitool/tmp/` (writers only).
    pub fn ensure(&self) -> Result<()> {
        std::fs::create_dir_all(&self.tmp).map_err(Error::io("create", &self.tmp))
    }
}
