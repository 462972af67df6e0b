//! The few file-system primitives every write goes through: opening blobs without following
//! symlinks, fsync of directories, and atomic replacement of small files.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::errors::{Error, Result};

/// Mode of files ocitool creates (blobs, `index.json`, `oci-layout`), before the umask.
pub(crate) const FILE_MODE: u32 = 0o644;

/// What kind of thing sits at a path, for error messages.
pub(crate) fn kind_name(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "directory"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else {
        "regular file"
    }
}

/// The kind of a file from its `st_mode`, for error messages.
pub(crate) fn kind_of_mode(mode: u32) -> &'static str {
    match FileType::from_raw_mode(mode) {
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::BlockDevice | FileType::CharacterDevice => "device",
        FileType::RegularFile => "regular file",
        FileType::Unknown => "file of unknown type",
    }
}

/// What sits at `name` in `dir`, without following a symlink.
fn kind_at(dir: &OwnedFd, name: &str) -> &'static str {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_or("file of unknown type", |st| kind_of_mode(st.st_mode))
}

/// Opens the directory `root/rel[0]/rel[1]/...` without following a symlink in any of the
/// `rel` components (the root itself is the user's path and may be one): each component is
/// opened with `openat(O_NOFOLLOW | O_DIRECTORY)` from the one before. A symlink, a file or a
/// special file where a directory should be is [`Error::UnsafePath`], never followed. A missing
/// component is created with `create`, else the result is `None`.
pub(crate) fn open_dir_nofollow(
    root: &Path,
    rel: &[&str],
    create: bool,
) -> Result<Option<OwnedFd>> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut fd = rustix::fs::openat(rustix::fs::CWD, root, dir_flags, Mode::empty())
        .map_err(|e| Error::io("open directory", root)(e.into()))?;
    let mut path = root.to_path_buf();
    for comp in rel {
        path.push(comp);
        let mut created = false;
        fd = loop {
            match rustix::fs::openat(&fd, *comp, dir_flags | OFlags::NOFOLLOW, Mode::empty()) {
                Ok(next) => break next,
                Err(Errno::NOENT) if create && !created => {
                    match rustix::fs::mkdirat(&fd, *comp, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => created = true,
                        Err(e) => return Err(Error::io("create directory", &path)(e.into())),
                    }
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    return Err(Error::UnsafePath {
                        kind: kind_at(&fd, comp),
                        path,
                        expected: "directory",
                    });
                }
                Err(e) => return Err(Error::io("open directory", &path)(e.into())),
            }
        };
    }
    Ok(Some(fd))
}

/// Opens the regular file `name` in `dir` for reading (and writing, with `write`; created
/// if missing, with `create`), never following a symlink and never blocking on a fifo.
/// Anything but a regular file is [`Error::UnsafePath`]. `None` when it is missing.
pub(crate) fn open_file_at(
    dir: &OwnedFd,
    dir_path: &Path,
    name: &str,
    write: bool,
    create: bool,
) -> Result<Option<File>> {
    let path = dir_path.join(name);
    let mut flags = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    flags |= if write { OFlags::RDWR } else { OFlags::RDONLY };
    if create {
        flags |= OFlags::CREATE;
    }
    let fd = match rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(FILE_MODE)) {
        Ok(fd) => fd,
        Err(Errno::NOENT) if !create => return Ok(None),
        Err(Errno::LOOP) => {
            return Err(Error::UnsafePath {
                path,
                kind: "symlink",
                expected: "regular file",
            });
        }
        Err(e) => return Err(Error::io("open", &path)(e.into())),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::io("stat", &path)(e.into()))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::UnsafePath {
            path,
            kind: kind_of_mode(st.st_mode),
            expected: "regular file",
        });
    }
    Ok(Some(File::from(fd)))
}

/// Opens a file for reading without following a final symlink and without blocking on a
/// fifo; the caller checks that it is a regular file.
pub(crate) fn open_nofollow(path: &Path) -> std::io::Result<(File, fs::Metadata)> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let md = f.metadata()?;
    Ok((f, md))
}

/// Makes a rename or a new entry in `dir` durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(Error::io("open directory", dir))?;
    f.sync_all().map_err(Error::io("fsync directory", dir))
}

/// Replaces `dest` with `bytes` atomically: a temporary file in `tmp_dir` (same file system),
/// written, fsynced, renamed over `dest`, then the parent directory fsynced. A reader sees
/// the old content or the new, never a mix; a crash leaves one of the two. Without
/// `durable` the fsyncs are skipped (a kill is still survived, a power loss may not be).
pub(crate) fn replace_file(tmp_dir: &Path, dest: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    replace_file_with(tmp_dir, dest, durable, |w| w.write_all(bytes))
}

/// [`replace_file`] with the content written by `write` through a buffer.
pub(crate) fn replace_file_with(
    tmp_dir: &Path,
    dest: &Path,
    durable: bool,
    write: impl FnOnce(&mut BufWriter<&mut File>) -> std::io::Result<()>,
) -> Result<()> {
    prepare_file_with(tmp_dir, dest, durable, write)?.put_in_place()
}

/// The new content of a file, written (and fsynced when durable) to a temporary file beside
/// it, not yet in place: everything that can fail for lack of space has happened. Dropping it
/// removes the temporary file.
pub(crate) struct PreparedFile {
    tmp: tempfile::NamedTempFile,
    dest: std::path::PathBuf,
    durable: bool,
}

#[cfg(test)]
thread_local! {
    /// Makes the next `prepare_file_with` of this thread fail as a full disk would.
    pub(crate) static FAIL_NEXT_PREPARE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Writes the new content of `dest` into a temporary file in `tmp_dir` (same file system).
pub(crate) fn prepare_file_with(
    tmp_dir: &Path,
    dest: &Path,
    durable: bool,
    write: impl FnOnce(&mut BufWriter<&mut File>) -> std::io::Result<()>,
) -> Result<PreparedFile> {
    #[cfg(test)]
    if FAIL_NEXT_PREPARE.with(|f| f.replace(false)) {
        return Err(Error::io("write a new", dest)(
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        ));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(FILE_MODE))
        .tempfile_in(tmp_dir)
        .map_err(Error::io("create temporary file in", tmp_dir))?;
    // Errors name `dest`, the file the user knows about, not the temporary one.
    let mut w = BufWriter::with_capacity(crate::txn::BUF_SIZE, tmp.as_file_mut());
    write(&mut w)
        .and_then(|()| w.flush())
        .map_err(Error::io("write a new", dest))?;
    drop(w);
    if durable {
        tmp.as_file()
            .sync_all()
            .map_err(Error::io("fsync a new", dest))?;
    }
    Ok(PreparedFile {
        tmp,
        dest: dest.to_path_buf(),
        durable,
    })
}

impl PreparedFile {
    /// Renames the new content over the file, then (durable) fsyncs its directory.
    pub(crate) fn put_in_place(self) -> Result<()> {
        let PreparedFile { tmp, dest, durable } = self;
        tmp.persist(&dest).map_err(|e| Error::Io {
            op: "rename into place",
            path: dest.clone(),
            source: e.error,
        })?;
        if durable && let Some(parent) = dest.parent() {
            fsync_dir(parent)?;
        }
        Ok(())
    }
}
