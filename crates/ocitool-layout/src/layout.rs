//! Opening and creating layouts, and reading their blobs.

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use ocitool_digest::{Algorithm, Digest, VerifyError, VerifyingReader};
use ocitool_spec::views::Checked;

use crate::errors::{Error, Result};
use crate::fsutil::{self, kind_name, kind_of_mode, open_nofollow};
use crate::index::IndexDoc;
use crate::lock::{LockGuard, LockName, StatePaths, WaitMode};

/// The content of the `oci-layout` file ocitool writes.
pub const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Largest `oci-layout` file read.
const OCI_LAYOUT_LIMIT: u64 = 64 << 10;

/// Largest `index.json` read by default (about 200,000 descriptors).
pub const DEFAULT_INDEX_LIMIT: u64 = 64 << 20;

/// How a layout is opened.
#[derive(Clone, Debug)]
pub struct Options {
    /// Wait for locks held by other processes, or fail at once.
    pub wait: WaitMode,
    /// Largest manifest, index or config read into memory.
    pub json_limit: u64,
    /// Largest `index.json` read into memory.
    pub index_limit: u64,
    /// fsync blobs, `index.json` and directories before a command reports success, so a power
    /// loss cannot corrupt the layout. Off (`--no-fsync`) only a kill is survived.
    pub durable: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wait: WaitMode::Wait,
            json_limit: ocitool_spec::DEFAULT_JSON_LIMIT,
            index_limit: DEFAULT_INDEX_LIMIT,
            durable: true,
        }
    }
}

/// An OCI image layout on disk.
#[derive(Debug)]
pub struct Layout {
    root: PathBuf,
    pub(crate) state: StatePaths,
    pub(crate) options: Options,
    /// `blobs/<alg>/` of each algorithm (in `Algorithm::ALL` order), opened without following
    /// symlinks when first needed; every blob is opened, stat'ed, renamed into place and
    /// removed relative to it.
    blob_dirs: [OnceLock<OwnedFd>; 2],
}

impl Layout {
    /// Opens an existing layout, checking `oci-layout`.
    pub fn open(root: impl AsRef<Path>, options: Options) -> Result<Layout> {
        let layout = Layout::open_dir(root.as_ref(), options)?;
        layout.check_oci_layout_file()?;
        layout.refuse_unsafe_paths()?;
        Ok(layout)
    }

    /// Opens a layout for `verify`: a directory with an `oci-layout` file is enough; what is
    /// wrong with that file is returned as a problem to report rather than an error.
    pub fn open_lenient(
        root: impl AsRef<Path>,
        options: Options,
    ) -> Result<(Layout, Option<Error>)> {
        let layout = Layout::open_dir(root.as_ref(), options)?;
        match layout.check_oci_layout_file() {
            Ok(()) => Ok((layout, None)),
            Err(e @ Error::NotALayout { .. }) => Err(e),
            Err(e) => Ok((layout, Some(e))),
        }
    }

    fn open_dir(root: &Path, options: Options) -> Result<Layout> {
        let root = root.to_path_buf();
        match fs::metadata(&root) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return Err(Error::NotALayout {
                    path: root,
                    why: "not a directory".into(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotALayout {
                    path: root,
                    why: "no such directory".into(),
                });
            }
            Err(e) => return Err(Error::io("stat", &root)(e)),
        }
        Ok(Layout::at(root, options))
    }

    fn at(root: PathBuf, options: Options) -> Layout {
        Layout {
            state: StatePaths::new(&root),
            root,
            options,
            blob_dirs: Default::default(),
        }
    }

    /// Paths inside the layout that ocitool must never follow or open but finds there: a
    /// symlink or a non-directory at `blobs/`, `blobs/<alg>/`, `.ocitool/` or
    /// `.ocitool/tmp/`, and a lock file that is not a regular file. Commands refuse such a
    /// layout ([`Layout::open`]); `verify` reports each one.
    pub fn unsafe_paths(&self) -> Vec<Error> {
        let mut out: Vec<Error> = Vec::new();
        let mut push = |e: Error| {
            let dup = matches!((&e, out.last()), (Error::UnsafePath { path: a, .. }, Some(Error::UnsafePath { path: b, .. })) if a == b);
            if !dup {
                out.push(e);
            }
        };
        for alg in Algorithm::ALL {
            if let Err(e) = self.blob_dir_fd(alg, false) {
                push(e);
            }
        }
        if let Err(e) = self.state.open_tmp() {
            push(e);
        }
        if let Err(e) = fsutil::open_dir_nofollow(&self.root, &[".ocitool", "partial"], false) {
            push(e);
        }
        for name in [LockName::Gc, LockName::Index] {
            if let Err(e) = self.state.check_lock_file(name) {
                push(e);
            }
        }
        out
    }

    /// [`Layout::unsafe_paths`] as an error: the first such path.
    fn refuse_unsafe_paths(&self) -> Result<()> {
        match self.unsafe_paths().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Creates a layout, or checks an existing one (idempotent). Returns whether anything
    /// was created. An existing directory that is neither empty nor a layout is refused.
    pub fn init(root: impl AsRef<Path>, options: Options) -> Result<(Layout, bool)> {
        let root = root.as_ref().to_path_buf();
        let layout = Layout::at(root.clone(), options);
        let oci_layout = root.join("oci-layout");
        if oci_layout.exists() {
            layout.check_oci_layout_file()?;
            let mut created = false;
            if !root.join("index.json").exists() {
                layout.state.ensure()?;
                // Like every writer of `.ocitool/tmp`, under the shared gc lock.
                let _gc = layout
                    .state
                    .acquire(LockName::Gc, false, layout.options.wait)?;
                fsutil::replace_file(
                    &layout.state.tmp,
                    &root.join("index.json"),
                    &IndexDoc::empty().to_bytes(),
                    layout.options.durable,
                )?;
                created = true;
            }
            if layout.blob_dir_fd(Algorithm::Sha256, false)?.is_none() {
                layout.blob_dir_fd(Algorithm::Sha256, true)?;
                created = true;
            }
            return Ok((layout, created));
        }
        match fs::read_dir(&root) {
            Ok(entries) => {
                // An empty directory, or one left by an interrupted init, is completed.
                for entry in entries {
                    let entry = entry.map_err(Error::io("read directory", &root))?;
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if !(name == "blobs" || name == "index.json" || name.starts_with(".ocitool")) {
                        return Err(Error::NotALayout {
                            path: root,
                            why: format!(
                                "the directory is not empty (it holds {name:?}) and has no oci-layout file"
                            ),
                        });
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(&root).map_err(Error::io("create directory", &root))?;
            }
            Err(e) => return Err(Error::io("read directory", &root)(e)),
        }
        layout.blob_dir_fd(Algorithm::Sha256, true)?;
        layout.state.ensure()?;
        let _gc = layout
            .state
            .acquire(LockName::Gc, false, layout.options.wait)?;
        let index = root.join("index.json");
        if !index.exists() {
            fsutil::replace_file(
                &layout.state.tmp,
                &index,
                &IndexDoc::empty().to_bytes(),
                layout.options.durable,
            )?;
        }
        // oci-layout last: until it exists the directory is not a layout, so a crash in
        // between leaves something `init` completes and nothing else accepts.
        fsutil::replace_file(
            &layout.state.tmp,
            &oci_layout,
            OCI_LAYOUT_CONTENT,
            layout.options.durable,
        )?;
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsutil::fsync_dir(parent)?;
        }
        Ok((layout, true))
    }

    /// Opens `root` if it is a layout, or creates it (for commands that write into a
    /// destination "created if missing").
    pub fn open_or_init(root: impl AsRef<Path>, options: Options) -> Result<Layout> {
        Ok(Layout::init(root, options)?.0)
    }

    fn check_oci_layout_file(&self) -> Result<()> {
        let path = self.root.join("oci-layout");
        let bytes = read_small_file(&path, OCI_LAYOUT_LIMIT).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::NotALayout {
                    path: self.root.clone(),
                    why: "no oci-layout file".into(),
                }
            }
            other => other,
        })?;
        #[derive(serde::Deserialize)]
        struct OciLayoutFile {
            #[serde(rename = "imageLayoutVersion")]
            version: String,
        }
        let parsed: OciLayoutFile =
            ocitool_spec::views::parse(&bytes, "oci-layout file").map_err(|source| {
                Error::Json {
                    path: path.clone(),
                    source,
                }
            })?;
        if parsed.version != "1.0.0" {
            return Err(Error::LayoutVersion {
                path,
                version: parsed.version,
            });
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    pub fn blob_dir(&self, algorithm: Algorithm) -> PathBuf {
        self.root.join("blobs").join(algorithm.name())
    }

    /// `blobs/<alg>/<encoded>`; safe because a `Digest` is validated hex.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir(digest.algorithm()).join(digest.encoded())
    }

    /// The blob path relative to the layout root, for messages and reports.
    pub fn blob_rel(digest: &Digest) -> String {
        format!("blobs/{}/{}", digest.algorithm(), digest.encoded())
    }

    /// Reads and parses `index.json`.
    pub fn read_index(&self) -> Result<IndexDoc> {
        let path = self.index_path();
        let bytes = read_small_file(&path, self.options.index_limit)?;
        IndexDoc::parse(bytes, &path)
    }

    /// `blobs/<alg>/`, opened without following symlinks (and cached); created with
    /// `create`, else `None` when absent.
    pub(crate) fn blob_dir_fd(
        &self,
        algorithm: Algorithm,
        create: bool,
    ) -> Result<Option<&OwnedFd>> {
        let slot = &self.blob_dirs[Algorithm::ALL
            .iter()
            .position(|a| *a == algorithm)
            .expect("every algorithm has a slot")];
        if let Some(fd) = slot.get() {
            return Ok(Some(fd));
        }
        match fsutil::open_dir_nofollow(&self.root, &["blobs", algorithm.name()], create)? {
            Some(fd) => {
                let _ = slot.set(fd);
                Ok(slot.get())
            }
            None => Ok(None),
        }
    }

    /// The size of a blob, `None` when it is absent; an error when something other than a
    /// regular file sits at its path.
    pub fn stat_blob(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.blob_path(digest);
        let Some(dir) = self.blob_dir_fd(digest.algorithm(), false)? else {
            return Ok(None);
        };
        match rustix::fs::statat(dir, digest.encoded(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
                Ok(Some(st.st_size as u64))
            }
            Ok(st) => Err(Error::NotRegularFile {
                digest: digest.clone(),
                path,
                kind: kind_of_mode(st.st_mode),
            }),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::io("stat", path)(e.into())),
        }
    }

    /// Opens a blob for reading (never through a symlink, in its name or in `blobs/<alg>/`,
    /// and never blocking on a fifo). Returns the file and its size.
    pub fn open_blob(&self, digest: &Digest) -> Result<(fs::File, u64)> {
        let path = self.blob_path(digest);
        let missing = || Error::MissingBlob {
            digest: digest.clone(),
            path: self.blob_path(digest),
        };
        let Some(dir) = self.blob_dir_fd(digest.algorithm(), false)? else {
            return Err(missing());
        };
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(dir, digest.encoded(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Err(missing()),
            Err(Errno::LOOP) => {
                return Err(Error::NotRegularFile {
                    digest: digest.clone(),
                    path,
                    kind: "symlink",
                });
            }
            Err(e) => return Err(Error::io("open", path)(e.into())),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::io("stat", &path)(e.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(Error::NotRegularFile {
                digest: digest.clone(),
                path,
                kind: kind_of_mode(st.st_mode),
            });
        }
        Ok((fs::File::from(fd), st.st_size as u64))
    }

    /// Moves a complete temporary file into place as the blob `digest` (`rename`, relative to
    /// `blobs/<alg>/` opened without following symlinks; created if missing).
    pub(crate) fn rename_into_place(&self, digest: &Digest, from: &Path) -> Result<()> {
        let dir = self
            .blob_dir_fd(digest.algorithm(), true)?
            .expect("created if missing");
        rustix::fs::renameat(rustix::fs::CWD, from, dir, digest.encoded())
            .map_err(|e| Error::io("rename into place", self.blob_path(digest))(e.into()))
    }

    /// Removes the blob `digest` (relative to `blobs/<alg>/`, never through a symlink);
    /// absent is fine.
    pub(crate) fn remove_blob(&self, digest: &Digest) -> Result<()> {
        let Some(dir) = self.blob_dir_fd(digest.algorithm(), false)? else {
            return Ok(());
        };
        match rustix::fs::unlinkat(dir, digest.encoded(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(Error::io("remove", self.blob_path(digest))(e.into())),
        }
    }

    /// fsyncs `blobs/<alg>/` (after renames into it).
    pub(crate) fn sync_blob_dir(&self, algorithm: Algorithm) -> Result<()> {
        if let Some(dir) = self.blob_dir_fd(algorithm, false)? {
            rustix::fs::fsync(dir)
                .map_err(|e| Error::io("fsync directory", self.blob_dir(algorithm))(e.into()))?;
        }
        Ok(())
    }

    /// Opens a blob whose digest and size are checked when the reader reaches its end.
    /// A size that differs from the file's is reported at once.
    pub fn open_verified(&self, expected: &Checked) -> Result<VerifyingReader<fs::File>> {
        let (f, size) = self.open_blob(&expected.digest)?;
        if size != expected.size {
            return Err(Error::Verify {
                digest: expected.digest.clone(),
                path: self.blob_path(&expected.digest),
                source: VerifyError::SizeMismatch {
                    expected: expected.size,
                    actual: size,
                },
            });
        }
        Ok(VerifyingReader::new(
            f,
            expected.digest.clone(),
            expected.size,
        ))
    }

    /// Reads a JSON document blob whole, verified, within the JSON size limit.
    pub fn read_json_blob(&self, expected: &Checked) -> Result<Vec<u8>> {
        if expected.size > self.options.json_limit {
            return Err(Error::JsonTooLarge {
                path: self.blob_path(&expected.digest),
                size: expected.size,
                limit: self.options.json_limit,
            });
        }
        let mut r = self.open_verified(expected)?;
        let mut buf = Vec::with_capacity(expected.size as usize);
        r.read_to_end(&mut buf)
            .map_err(|e| self.read_error(&expected.digest, e))?;
        Ok(buf)
    }

    /// Reads a blob whose descriptor is unknown (a digest typed by a user): whole, hashed,
    /// within the JSON limit.
    pub fn read_json_blob_by_digest(&self, digest: &Digest) -> Result<Vec<u8>> {
        let size = self.stat_blob(digest)?.ok_or_else(|| Error::MissingBlob {
            digest: digest.clone(),
            path: self.blob_path(digest),
        })?;
        self.read_json_blob(&Checked {
            digest: digest.clone(),
            size,
        })
    }

    /// Turns an I/O error from a verifying read into the right error.
    pub fn read_error(&self, digest: &Digest, e: std::io::Error) -> Error {
        let path = self.blob_path(digest);
        match VerifyError::from_io(&e) {
            Some(v) => Error::Verify {
                digest: digest.clone(),
                path,
                source: v.clone(),
            },
            None => Error::io("read", path)(e),
        }
    }

    /// A shared `gc` lock for a command that only reads, if the layout has ever been written
    /// by ocitool (so a concurrent `gc` cannot delete blobs under a reader). Readers never
    /// create files.
    pub fn read_lock(&self) -> Result<Option<LockGuard>> {
        self.state
            .acquire_shared_if_present(LockName::Gc, self.options.wait)
    }

    /// Lists the blob files of one algorithm directory: `(file name, parsed digest or the
    /// reason the name is not one)`. A missing directory is empty.
    pub fn list_blob_dir(&self, algorithm: Algorithm) -> Result<Vec<BlobEntry>> {
        let dir_path = self.blob_dir(algorithm);
        let Some(dir) = self.blob_dir_fd(algorithm, false)? else {
            return Ok(Vec::new());
        };
        let read_err = |e: Errno| Error::io("read directory", &dir_path)(e.into());
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::read_from(dir).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            let (file_type, size) =
                match rustix::fs::statat(dir, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => (kind_of_mode(st.st_mode), st.st_size as u64),
                    Err(Errno::NOENT) => continue, // removed meanwhile
                    Err(e) => return Err(Error::io("stat", dir_path.join(&name))(e.into())),
                };
            let digest = Digest::parse(&format!("{}:{}", algorithm, name)).ok();
            out.push(BlobEntry {
                path: dir_path.join(&name),
                name,
                digest,
                file_type,
                size,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// A file found under `blobs/<alg>/`.
#[derive(Clone, Debug)]
pub struct BlobEntry {
    pub name: String,
    /// The digest the file name spells, if it is a valid one.
    pub digest: Option<Digest>,
    /// "regular file", "directory", "symlink", ...
    pub file_type: &'static str,
    /// Its size (of the entry itself: a symlink's is its target's length).
    pub size: u64,
    pub path: PathBuf,
}

/// Reads a small file whole, refusing one over `limit` bytes and anything not a regular file.
pub(crate) fn read_small_file(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let (f, md) = open_nofollow(path).map_err(Error::io("open", path))?;
    if !md.file_type().is_file() {
        return Err(Error::Invalid(format!(
            "{} is a {}, not a regular file",
            path.display(),
            kind_name(&md.file_type())
        )));
    }
    if md.len() > limit {
        return Err(Error::JsonTooLarge {
            path: path.to_path_buf(),
            size: md.len(),
            limit,
        });
    }
    let mut buf = Vec::with_capacity(md.len() as usize);
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(Error::io("read", path))?;
    if buf.len() as u64 > limit {
        return Err(Error::JsonTooLarge {
            path: path.to_path_buf(),
            size: buf.len() as u64,
            limit,
        });
    }
    Ok(buf)
}
