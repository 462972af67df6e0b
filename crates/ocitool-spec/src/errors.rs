/// Errors of this crate.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    #[error("malformed {what}: {message}{}", if path.is_empty() || path == "." { String::new() } else { format!(" (at {path})") })]
    Json {
        what: &'static str,
        path: String,
        message: String,
    },
    #[error("not an image index or manifest")]
    NotADocument,
}
