//! `-o FILE` of `export`, `pack` and `inventory`: where an archive goes, and how.
//!
//! The rule (README, "Output files"):
//! - `-` is standard output.
//! - A symlink is followed to its final target; the symlink itself is never replaced.
//! - A regular file or a missing path is replaced atomically: the bytes go to a temporary
//!   `.ocitool-partial-*` file in the target's directory, are fsynced (not with `--no-fsync`),
//!   and the file is renamed over the target only when everything succeeded.
//! - A character or block device or a FIFO is written in place, as a stream (no temporary
//!   file, no rename): `-o /dev/null` or `-o pipe` never replaces the special file.
//! - A directory or a socket is refused.
//!
//! A partial file holds an advisory lock (flock) while it is written. A later run writing into
//! the same directory removes the `.ocitool-partial-*` regular files whose lock it can take at
//! once: their writer is dead (killed before it could clean up).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use ocitool_archive::tarwrite::{FileSink, Sink};

use crate::output::BrokenPipe;
use crate::signals;

/// The prefix of every partial output file.
pub const PARTIAL_PREFIX: &str = ".ocitool-partial-";

/// Hops of symlinks followed before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Where the bytes of `-o PATH` go.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    Stdout,
    /// A regular file or a missing path (the final target of any symlink), replaced by rename.
    Replace(PathBuf),
    /// A device or FIFO, opened by the path given (the kernel follows its links).
    InPlace {
        path: PathBuf,
        block_device: bool,
    },
}

/// Decides what `-o path` means (see the module documentation).
pub fn target(path: &Path) -> anyhow::Result<Target> {
    if path.as_os_str() == "-" {
        return Ok(Target::Stdout);
    }
    match fs::metadata(path) {
        Ok(md) => {
            let ft = md.file_type();
            if ft.is_dir() {
                anyhow::bail!(
                    "{} is a directory: -o takes the name of the file to write",
                    path.display()
                );
            }
            if ft.is_socket() {
                anyhow::bail!("{} is a socket: ocitool cannot write to it", path.display());
            }
            if ft.is_file() {
                return Ok(Target::Replace(final_target(path)?));
            }
            Ok(Target::InPlace {
                path: path.to_path_buf(),
                block_device: ft.is_block_device(),
            })
        }
        // Missing, or a symlink whose target is missing: that target is created.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Target::Replace(final_target(path)?)),
        Err(e) => Err(e).with_context(|| format!("stat {}", path.display())),
    }
}

/// Follows `path` through every symlink to the path they finally name (which may not exist).
fn final_target(path: &Path) -> anyhow::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(md) if md.file_type().is_symlink() => {
                let to = fs::read_link(&p).with_context(|| format!("read link {}", p.display()))?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    anyhow::bail!("{}: too many levels of symbolic links", path.display())
}

/// Writes what `f` produces to `-o path` by the rule above; `durable` fsyncs a replaced file
/// before its rename (and a block device at the end). Once a file is written, the command's
/// work is done ([`crate::Ctx::committed`]).
pub fn write_output<T>(
    ctx: &mut crate::Ctx,
    path: &Path,
    durable: bool,
    f: impl FnOnce(&mut dyn Sink) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let to_file = path.as_os_str() != "-";
    let r = write_to(ctx, path, durable, f)?;
    if to_file {
        ctx.committed();
    }
    Ok(r)
}

fn write_to<T>(
    ctx: &mut crate::Ctx,
    path: &Path,
    durable: bool,
    f: impl FnOnce(&mut dyn Sink) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    match target(path)? {
        Target::Stdout => {
            let stdout = io::stdout();
            let mut w = BufWriter::with_capacity(1 << 20, stdout.lock());
            let r = f(&mut w).map_err(|e| name_output_error(e, None))?;
            w.flush().map_err(|e| output_io_error(e, None))?;
            Ok(r)
        }
        Target::InPlace { path, block_device } => {
            let file = fs::OpenOptions::new()
                .write(true)
                .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
                .open(&path)
                .with_context(|| format!("open {}", path.display()))?;
            // Between the stat and the open, the path may have become a regular file or a
            // directory: never write into one in place.
            let ft = file
                .metadata()
                .with_context(|| format!("stat {}", path.display()))?
                .file_type();
            if ft.is_file() || ft.is_dir() {
                anyhow::bail!("{} changed while it was opened; try again", path.display());
            }
            let mut w = Stream(BufWriter::with_capacity(1 << 20, file));
            let r = f(&mut w).map_err(|e| name_output_error(e, Some(&path)))?;
            let file =
                w.0.into_inner()
                    .map_err(|e| output_io_error(e.into_error(), Some(&path)))?;
            if durable && block_device {
                file.sync_all()
                    .with_context(|| format!("fsync {}", path.display()))?;
            }
            Ok(r)
        }
        Target::Replace(target) => replace(ctx, path, &target, durable, f),
    }
}

/// Writes a regular file through a locked partial file renamed over `target` at the end.
fn replace<T>(
    ctx: &mut crate::Ctx,
    shown: &Path,
    target: &Path,
    durable: bool,
    f: impl FnOnce(&mut dyn Sink) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let removed = remove_stale_partials(dir);
    if removed > 0 {
        ctx.note(format!(
            "removed {removed} partial file(s) {} left by an interrupted ocitool",
            dir.join(format!("{PARTIAL_PREFIX}*")).display()
        ));
    }
    let ((file, tmp), registered) = signals::create_registered(|| {
        let (file, tmp) = locked_partial(dir)?;
        let path = tmp.to_path_buf();
        anyhow::Ok(((file, tmp), path))
    })?;
    let mut sink = FileSink::new(file, durable)
        .with_context(|| format!("start writing {}", shown.display()))?;
    let r = f(&mut sink).map_err(|e| name_output_error(e, Some(shown)))?;
    let file = sink
        .finish()
        .with_context(|| format!("write {}", shown.display()))?;
    registered
        .settle(|| tmp.persist(target))
        .map_err(|e| e.error)
        .with_context(|| format!("rename into {}", target.display()))?;
    // Held until here: a concurrent run never takes the file for a dead writer's.
    drop(file);
    Ok(r)
}

/// A new partial file in `dir`, locked. A concurrent run may remove a partial file between its
/// creation and its lock (it looks like a dead writer's); the unlinked file is then dropped and
/// another one made.
fn locked_partial(dir: &Path) -> anyhow::Result<(File, tempfile::TempPath)> {
    loop {
        let (file, tmp) = tempfile::Builder::new()
            .prefix(PARTIAL_PREFIX)
            // An archive is meant to be shared: 0666 less the umask, as `tar` or `cp` would
            // create it.
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(dir)
            .with_context(|| format!("create a temporary file in {}", dir.display()))?
            .into_parts();
        file.lock()
            .with_context(|| format!("lock {}", tmp.display()))?;
        let linked = file
            .metadata()
            .with_context(|| format!("stat {}", tmp.display()))?
            .nlink()
            > 0;
        if linked {
            return Ok((file, tmp));
        }
        // Already unlinked: forget the name (it may belong to someone else by now).
        let _ = tmp.keep();
    }
}

/// Removes the `.ocitool-partial-*` regular files of `dir` whose writer is gone (their lock
/// can be taken at once); returns how many. Symlinks and anything but regular files are
/// left alone, and nothing is followed. Errors only mean a file is left.
pub fn remove_stale_partials(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        if !name
            .as_encoded_bytes()
            .starts_with(PARTIAL_PREFIX.as_bytes())
        {
            continue;
        }
        if remove_if_stale(&e.path()).unwrap_or(false) {
            removed += 1;
        }
    }
    removed
}

fn remove_if_stale(p: &Path) -> io::Result<bool> {
    use rustix::fs::{Mode, OFlags};
    let md = fs::symlink_metadata(p)?;
    if !md.file_type().is_file() {
        return Ok(false);
    }
    let fd = rustix::fs::open(
        p,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let file = File::from(fd);
    let same = |m: &fs::Metadata| m.dev() == md.dev() && m.ino() == md.ino();
    if !same(&file.metadata()?) || file.try_lock().is_err() {
        return Ok(false);
    }
    // Removed while the lock is held: a writer that created the file and now waits for its
    // lock finds it unlinked and makes another (see `locked_partial`).
    if !fs::symlink_metadata(p).is_ok_and(|m| same(&m)) {
        return Ok(false);
    }
    fs::remove_file(p)?;
    Ok(true)
}

/// A device or FIFO written in place: plain writes (the kernel's file-to-file copy is for
/// regular files).
struct Stream(BufWriter<File>);

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Sink for Stream {}

/// A failed write to the output gets the output's name (`None`: standard output, where a
/// closed pipe is success, as for `ls | head`); any other error is left as it is.
fn name_output_error(e: anyhow::Error, path: Option<&Path>) -> anyhow::Error {
    match e.downcast::<ocitool_archive::Error>() {
        Ok(ocitool_archive::Error::Output(io)) => output_io_error(io, path),
        Ok(other) => anyhow::Error::new(other),
        Err(e) => e,
    }
}

fn output_io_error(e: io::Error, path: Option<&Path>) -> anyhow::Error {
    match path {
        None if e.kind() == io::ErrorKind::BrokenPipe => anyhow::Error::new(BrokenPipe),
        None => anyhow::Error::new(e).context("write standard output"),
        Some(p) => anyhow::Error::new(e).context(format!("write {}", p.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_names_the_file() {
        let e = anyhow::Error::new(ocitool_archive::Error::Output(
            io::Error::from_raw_os_error(28),
        ));
        let e = name_output_error(e, Some(Path::new("out/app.tar")));
        let line = crate::one_line(&e);
        assert!(line.starts_with("write out/app.tar: "), "{line}");
        assert!(line.contains("No space left on device"), "{line}");
    }

    #[test]
    fn a_closed_standard_output_is_a_broken_pipe_and_other_errors_stay() {
        let e = anyhow::Error::new(ocitool_archive::Error::Output(io::Error::from(
            io::ErrorKind::BrokenPipe,
        )));
        assert!(name_output_error(e, None).is::<BrokenPipe>());
        let e = anyhow::Error::new(ocitool_archive::Error::Archive("bad".into()));
        let e = name_output_error(e, Some(Path::new("x.tar")));
        assert_eq!(crate::one_line(&e), "bad");
    }

    #[test]
    fn symlinks_are_followed_to_their_final_target() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("sub/real.tar");
        fs::create_dir(d.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("sub/real.tar", d.path().join("a")).unwrap();
        std::os::unix::fs::symlink(d.path().join("a"), d.path().join("b")).unwrap();
        // Dangling: the target is created.
        assert_eq!(
            target(&d.path().join("b")).unwrap(),
            Target::Replace(d.path().join("sub/real.tar"))
        );
        fs::write(&real, b"old").unwrap();
        assert_eq!(
            target(&d.path().join("b")).unwrap(),
            Target::Replace(d.path().join("sub/real.tar"))
        );
        std::os::unix::fs::symlink("loop", d.path().join("loop")).unwrap();
        assert!(target(&d.path().join("loop")).is_err());
        assert!(target(d.path()).is_err());
        assert_eq!(
            target(Path::new("/dev/null")).unwrap(),
            Target::InPlace {
                path: "/dev/null".into(),
                block_device: false
            }
        );
    }
}
