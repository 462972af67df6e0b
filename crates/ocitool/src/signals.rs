//! SIGINT and SIGTERM: the partial files this process registered are removed, one `error:`
//! line says why the command stopped, and the process exits with 128 + the signal (130, 143),
//! as a shell reports a command the signal killed.
//!
//! Only files this process created and registered are removed, so a signal never deletes what
//! a concurrent process owns. A layout's own staging directories (`.ocitool/tmp/txn-*`) are
//! left as a `kill -9` leaves them: a commit may be renaming their files at that very moment,
//! and `gc` removes them once no writer holds the layout.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use signal_hook::consts::{SIGINT, SIGTERM};

/// Partial files to remove if a signal stops the process. The handler holds the lock until the
/// process is gone, so whatever the main thread does under it (renaming a finished file into
/// place, exiting) happens either wholly before the cleanup or not at all.
static PARTIALS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn partials() -> MutexGuard<'static, Vec<PathBuf>> {
    PARTIALS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The handle of the waiting thread's signal set, to hand the signals over to a command that
/// handles them itself.
static HANDLE: std::sync::OnceLock<signal_hook::iterator::Handle> = std::sync::OnceLock::new();

/// Starts the thread that waits for SIGINT and SIGTERM. Without it (it cannot start), the
/// signals keep their default action.
pub fn install() {
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let _ = HANDLE.set(signals.handle());
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                interrupted(sig);
            }
        });
}

/// Stops waiting for SIGINT and SIGTERM here, for a command that stops cleanly on them by
/// itself (`serve`); it writes no partial file.
pub fn hand_over() {
    if let Some(h) = HANDLE.get() {
        h.close();
    }
}

fn interrupted(sig: i32) -> ! {
    let list = partials();
    for p in list.iter() {
        let _ = std::fs::remove_file(p);
    }
    let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
    let _ = writeln!(std::io::stderr(), "error: interrupted ({name})");
    // Never returns: the lock stays held while the process ends.
    std::process::exit(128 + sig)
}

/// Removes the registered partial files at once, if no one holds the list (a panic, which
/// ends the process without unwinding to the files' owners).
pub fn remove_partials_now() {
    if let Ok(list) = PARTIALS.try_lock() {
        for p in list.iter() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A partial file removed if a signal stops the process before [`Registered::settle`].
pub struct Registered(PathBuf);

/// Runs `create`, which makes a partial file and returns it with its path, and registers the
/// path, with the cleanup held off in between: a signal never finds a file made but not yet
/// registered.
pub fn create_registered<T, E>(
    create: impl FnOnce() -> Result<(T, PathBuf), E>,
) -> Result<(T, Registered), E> {
    let mut list = partials();
    let (made, path) = create()?;
    list.push(path.clone());
    Ok((made, Registered(path)))
}

impl Registered {
    /// Runs `f` (the rename that gives the partial file its final name) with the cleanup held
    /// off, then forgets the file.
    pub fn settle<T>(self, f: impl FnOnce() -> T) -> T {
        let mut list = partials();
        let r = f();
        list.retain(|p| *p != self.0);
        r
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        partials().retain(|p| *p != self.0);
    }
}

/// Ends the process with `code`, unless a signal's cleanup is under way (then that one ends it).
pub fn exit(code: i32) -> ! {
    let _held = partials();
    std::process::exit(code)
}
