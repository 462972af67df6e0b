use std::path::PathBuf;

/// Why the server cannot start (requests never fail the server: each gets its own answer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Layout(#[from] ocitool_layout::Error),
    #[error(
        "repository {repository} is named in both {first} and {second}; serve them separately or rename one (ocitool tag)"
    )]
    Collision {
        repository: String,
        first: String,
        second: String,
    },
    #[error("{path}: {why}")]
    Htpasswd { path: PathBuf, why: String },
    #[error("{path}: {why}")]
    Tls { path: PathBuf, why: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the server: {0}")]
    Runtime(std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
