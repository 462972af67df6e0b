use std::io;
use std::path::PathBuf;

use ocitool_digest::{Digest, DigestError, VerifyError};
use ocitool_spec::SpecError;
use ocitool_spec::platform::Platform;
use ocitool_spec::refname::RefNameError;
use ocitool_spec::views::DescriptorError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of layout operations. Every variant names the file, digest or ref involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not an OCI image layout: {why}", path.display())]
    NotALayout { path: PathBuf, why: String },
    #[error("{}: unsupported imageLayoutVersion {version:?} (ocitool reads 1.0.0)", path.display())]
    LayoutVersion { path: PathBuf, version: String },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: SpecError,
    },
    #[error("{} is {size} bytes, over the limit of {limit} bytes for JSON metadata (raise it with --max-json-size)", path.display())]
    JsonTooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{location}: {source}")]
    Descriptor {
        location: String,
        #[source]
        source: DescriptorError,
    },
    #[error("{context}: {source}")]
    Digest {
        context: String,
        #[source]
        source: DigestError,
    },
    #[error("blob {digest} is missing ({})", path.display())]
    MissingBlob { digest: Digest, path: PathBuf },
    #[error("blob {digest} at {} is a {kind}, not a regular file", path.display())]
    NotRegularFile {
        digest: Digest,
        path: PathBuf,
        kind: &'static str,
    },
    #[error("blob {digest} ({}): {source}", path.display())]
    Verify {
        digest: Digest,
        path: PathBuf,
        #[source]
        source: VerifyError,
    },
    #[error("blob {digest}: {source}")]
    BlobJson {
        digest: Digest,
        #[source]
        source: SpecError,
    },
    #[error("unknown ref {name:?} in {}{hint}", layout.display())]
    UnknownRef {
        name: String,
        layout: PathBuf,
        hint: String,
    },
    #[error("ref {name:?} is ambiguous in {}: it names {}", layout.display(), candidates.join(", "))]
    AmbiguousRef {
        name: String,
        layout: PathBuf,
        candidates: Vec<String>,
    },
    #[error(transparent)]
    InvalidRef(#[from] RefNameError),
    #[error("{} is locked by another ocitool process (run without --no-wait to wait for it)", path.display())]
    Locked { path: PathBuf },
    #[error("{image} has no manifest for platform {wanted}; it has: {}", available.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    NoSuchPlatform {
        /// What to call the index in messages: `index sha256:…`, `ref "app:1" (index sha256:…)`.
        image: String,
        digest: Digest,
        wanted: Platform,
        available: Vec<Platform>,
    },
    #[error("{image} is an image for {}, not {}", have.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "), wanted.iter().map(ToString::to_string).collect::<Vec<_>>().join(" or "))]
    WrongPlatform {
        /// What to call the image: `ref "app:1" (sha256:…)`.
        image: String,
        have: Vec<Platform>,
        wanted: Vec<Platform>,
    },
    #[error("{digest} is a multi-platform index ({}); choose one with --platform", available.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    PlatformNeeded {
        digest: Digest,
        available: Vec<Platform>,
    },
    #[error("{digest}: {what}")]
    Unsupported { digest: Digest, what: String },
    #[error(
        "refusing to collect garbage: the layout has damaged documents that may reference blobs ({first}); run `ocitool verify` (or pass --force)"
    )]
    GcUnsafe { first: String },
    #[error("tag {name:?} is protected ({why}): it points at {current}; {} needs --force", match new { Some(n) => format!("moving it to {n}"), None => "removing it".to_string() })]
    Protected {
        name: String,
        why: String,
        current: String,
        new: Option<String>,
    },
    #[error("{} is a {kind} where a layout has a {expected}: ocitool never follows symlinks or opens special files in a layout's blob and state directories (remove it; `ocitool verify` lists every such path)", path.display())]
    UnsafePath {
        path: PathBuf,
        kind: &'static str,
        expected: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            op,
            path,
            source: without_tempfile_path(source),
        }
    }

    /// Whether the error means the layout was busy (for the `--no-wait` exit code).
    pub fn is_locked(&self) -> bool {
        matches!(self, Error::Locked { .. })
    }
}

/// tempfile reports its files' errors as `<error> at path "<temporary path>"`; ocitool's
/// message already names the file, so that suffix is dropped (the error kind is kept).
fn without_tempfile_path(e: io::Error) -> io::Error {
    if e.get_ref().is_none() {
        return e;
    }
    let text = e.to_string();
    match text.rfind(" at path \"") {
        Some(i) if text.ends_with('"') => io::Error::new(e.kind(), text[..i].to_string()),
        _ => e,
    }
}
