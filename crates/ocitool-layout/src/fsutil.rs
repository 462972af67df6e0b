//! The few file-system primitives every write goes through: opening blobs without following
//! symlinks, fsync of directories, and atomic replacement of small files.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

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
    tmp.persist(dest).map_err(|e| Error::Io {
        op: "rename into place",
        path: dest.to_path_buf(),
        source: e.error,
    })?;
    if durable && let Some(parent) = dest.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}
