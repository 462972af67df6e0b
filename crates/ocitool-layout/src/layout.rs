//! Opening and creating layouts, and reading their blobs.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use ocitool_digest::{Algorithm, Digest, VerifyError, VerifyingReader};
use ocitool_spec::views::Checked;

use crate::errors::{Error, Result};
use crate::fsutil::{self, kind_name, open_nofollow};
use crate::index::IndexDoc;
use crate::lock::{self, LockGuard, StatePaths, WaitMode};

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
}

impl Layout {
    /// Opens an existing layout, checking `oci-layout`.
    pub fn open(root: impl AsRef<Path>, options: Options) -> Result<Layout> {
        let layout = Layout::open_dir(root.as_ref(), options)?;
        layout.check_oci_layout_file()?;
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
        Ok(Layout {
            state: StatePaths::new(&root),
            root,
            options,
        })
    }

    /// Creates a layout, or checks an existing one (idempotent). Returns whether anything
    /// was created. An existing directory that is neither empty nor a layout is refused.
    pub fn init(root: impl AsRef<Path>, options: Options) -> Result<(Layout, bool)> {
        let root = root.as_ref().to_path_buf();
        let layout = Layout {
            state: StatePaths::new(&root),
            root: root.clone(),
            options,
        };
        let oci_layout = root.join("oci-layout");
        if oci_layout.exists() {
            layout.check_oci_layout_file()?;
            let mut created = false;
            if !root.join("index.json").exists() {
                layout.state.ensure()?;
                // Like every writer of `.ocitool/tmp`, under the shared gc lock.
                let _gc = lock::acquire(&layout.state.gc_lock, false, layout.options.wait)?;
                fsutil::replace_file(
                    &layout.state.tmp,
                    &root.join("index.json"),
                    &IndexDoc::empty().to_bytes(),
                    layout.options.durable,
                )?;
                created = true;
            }
            if !root.join("blobs").exists() {
                fs::create_dir_all(layout.blob_dir(Algorithm::Sha256))
                    .map_err(Error::io("create", root.join("blobs")))?;
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
        fs::create_dir_all(layout.blob_dir(Algorithm::Sha256))
            .map_err(Error::io("create", root.join("blobs")))?;
        layout.state.ensure()?;
        let _gc = lock::acquire(&layout.state.gc_lock, false, layout.options.wait)?;
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

    /// Reads `index.json` for an edit ([`IndexDoc::parse_for_edit`]).
    pub(crate) fn read_index_for_edit(&self) -> Result<IndexDoc> {
        let path = self.index_path();
        let bytes = read_small_file(&path, self.options.index_limit)?;
        IndexDoc::parse_for_edit(bytes, &path)
    }

    /// The size of a blob, `None` when it is absent; an error when something other than a
    /// regular file sits at its path.
    pub fn stat_blob(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.blob_path(digest);
        match fs::symlink_metadata(&path) {
            Ok(md) if md.file_type().is_file() => Ok(Some(md.len())),
            Ok(md) => Err(Error::NotRegularFile {
                digest: digest.clone(),
                path,
                kind: kind_name(&md.file_type()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("stat", path)(e)),
        }
    }

    /// Opens a blob for reading (never through a symlink). Returns the file and its size.
    pub fn open_blob(&self, digest: &Digest) -> Result<(fs::File, u64)> {
        let path = self.blob_path(digest);
        match open_nofollow(&path) {
            Ok((f, md)) if md.file_type().is_file() => Ok((f, md.len())),
            Ok((_, md)) => Err(Error::NotRegularFile {
                digest: digest.clone(),
                path,
                kind: kind_name(&md.file_type()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::MissingBlob {
                digest: digest.clone(),
                path,
            }),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(Error::NotRegularFile {
                digest: digest.clone(),
                path,
                kind: "symlink",
            }),
            Err(e) => Err(Error::io("open", path)(e)),
        }
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
        lock::acquire_shared_if_present(&self.state.gc_lock, self.options.wait)
    }

    /// Lists the blob files of one algorithm directory: `(file name, parsed digest or the
    /// reason the name is not one)`. A missing directory is empty.
    pub fn list_blob_dir(&self, algorithm: Algorithm) -> Result<Vec<BlobEntry>> {
        let dir = self.blob_dir(algorithm);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read directory", dir)(e)),
        };
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(Error::io("read directory", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ft = entry.file_type().map_err(Error::io("stat", entry.path()))?;
            let digest = Digest::parse(&format!("{}:{}", algorithm, name)).ok();
            out.push(BlobEntry {
                name,
                digest,
                file_type: kind_name(&ft),
                path: entry.path(),
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
