use std::path::PathBuf;
use std::time::Duration;

use ocitool_digest::Digest;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of registry operations. Every variant names the registry and, where there is one,
/// the repository, reference or digest, and says what to do. No variant holds a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] ocitool_spec::reference::ReferenceError),
    #[error(transparent)]
    Layout(#[from] ocitool_layout::Error),
    /// The connection failed (after retries).
    #[error("{registry}: {what}: {why}")]
    Transport {
        registry: String,
        what: String,
        why: String,
    },
    #[error(
        "{registry}: repository {repository} does not exist{}",
        if *push { " (registries such as ECR and Harbor need a repository created before the first push: create it, then run again)" } else { "" }
    )]
    NameUnknown {
        registry: String,
        repository: String,
        push: bool,
    },
    #[error(
        "{registry}: {action} access to {repository} denied{}; {hint}",
        if message.is_empty() { String::new() } else { format!(" ({message})") }
    )]
    Denied {
        registry: String,
        repository: String,
        action: &'static str,
        message: String,
        /// What to do: log in, or (pushing with credentials) check the rights and that the
        /// repository exists.
        hint: String,
    },
    #[error("{registry}: authentication failed{}: {why}", if repository.is_empty() { String::new() } else { format!(" for {repository}") })]
    Unauthorized {
        registry: String,
        repository: String,
        why: String,
    },
    #[error(
        "{registry}: rate-limited (HTTP 429) on {what}{}; try again later{}",
        wait.map(|w| format!(", the registry asks to wait {}", human_duration(w))).unwrap_or_default(),
        if *docker_hub { " (Docker Hub counts anonymous pulls per address: `ocitool login docker.io` raises the limit)" } else { "" }
    )]
    RateLimited {
        registry: String,
        what: String,
        wait: Option<Duration>,
        docker_hub: bool,
    },
    #[error("{registry}/{repository}: manifest {reference} not found")]
    ManifestUnknown {
        registry: String,
        repository: String,
        reference: String,
    },
    #[error("{registry}/{repository}: blob {digest} not found")]
    BlobUnknown {
        registry: String,
        repository: String,
        digest: Digest,
    },
    #[error(
        "{registry}/{repository}: the registry refused {digest} (media type {media_type}): {message}; it may not accept this media type"
    )]
    Rejected {
        registry: String,
        repository: String,
        digest: Digest,
        media_type: String,
        message: String,
    },
    #[error(
        "{registry}{}: {what} answered HTTP {status}{}",
        repo_suffix(repository),
        detail(code, message)
    )]
    Status {
        registry: String,
        repository: String,
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{registry}/{repository}: {what}: the registry says {actual}, expected {expected}")]
    DigestMismatch {
        registry: String,
        repository: String,
        what: String,
        expected: Digest,
        actual: String,
    },
    #[error("{registry}{}: {what}: {why}", repo_suffix(repository))]
    Protocol {
        registry: String,
        repository: String,
        what: String,
        why: String,
    },
    #[error(
        "{registry}/{repository}: {reference} is {size} bytes, over the limit of {limit} bytes for manifests (raise it with --max-json-size)"
    )]
    TooLarge {
        registry: String,
        repository: String,
        reference: String,
        size: u64,
        limit: u64,
    },
    #[error("{}: {why}", path.display())]
    CredentialFile { path: PathBuf, why: String },
    #[error("credential helper docker-credential-{helper} ({registry}): {why}")]
    Helper {
        helper: String,
        registry: String,
        why: String,
    },
    #[error("{}: {why}", path.display())]
    Tls { path: PathBuf, why: String },
    #[error("not logged in to {registry}{}", if files.is_empty() { String::new() } else { format!(" (no credentials in {})", files.join(", ")) })]
    NotLoggedIn {
        registry: String,
        files: Vec<String>,
    },
    #[error(
        "{name}: index {digest} lists {total} manifests but the layout holds only {} of them; a registry refuses an incomplete index (missing: {}); push the platforms that are there with --platform",
        total - missing.len(),
        missing.join(", ")
    )]
    IncompleteIndex {
        name: String,
        digest: Digest,
        total: usize,
        missing: Vec<String>,
    },
    #[error("{0}")]
    Invalid(String),
}

fn repo_suffix(repository: &str) -> String {
    if repository.is_empty() {
        String::new()
    } else {
        format!("/{repository}")
    }
}

fn detail(code: &str, message: &str) -> String {
    match (code.is_empty(), message.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(" ({code})"),
        (true, false) => format!(": {message}"),
        (false, false) => format!(" ({code}): {message}"),
    }
}

pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s > 0 {
        format!("{s} s")
    } else {
        format!("{} ms", d.as_millis())
    }
}

impl Error {
    /// Whether the error is the registry's answer that something does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::ManifestUnknown { .. } | Error::BlobUnknown { .. } | Error::NameUnknown { .. }
        ) || matches!(self, Error::Status { status: 404, .. })
    }
}
