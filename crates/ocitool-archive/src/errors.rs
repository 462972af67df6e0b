use ocitool_digest::Digest;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of archive import and export. Each names the archive entry, image or ref involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Layout(#[from] ocitool_layout::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A write to the archive's destination failed (a full disk, a closed pipe): the caller,
    /// which knows the destination's name, reports it.
    #[error("write the archive: {0}")]
    Output(#[source] std::io::Error),
    #[error("archive entry {entry:?}: {why}")]
    Entry { entry: String, why: String },
    #[error("{0}")]
    Archive(String),
    #[error("image {image}: {why}")]
    Image { image: String, why: String },
    #[error("invalid RepoTag {tag:?} in manifest.json: {why}")]
    RepoTag { tag: String, why: String },
    #[error("{} blob(s) are neither in the archive nor in the layout: {}", missing.len(), missing.iter().map(|(d, what)| format!("{d} ({what})")).collect::<Vec<_>>().join(", "))]
    Missing { missing: Vec<(Digest, String)> },
}

impl Error {
    pub(crate) fn entry(entry: &str, why: impl Into<String>) -> Error {
        Error::Entry {
            entry: truncate(entry),
            why: why.into(),
        }
    }

    /// The I/O error of a failed write to the archive's destination, if that is what stopped it.
    pub fn output_error(&self) -> Option<&std::io::Error> {
        match self {
            Error::Output(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

pub(crate) fn truncate(s: &str) -> String {
    if s.len() <= 200 {
        return s.to_string();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
