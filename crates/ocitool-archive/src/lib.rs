//! Archives in and out of layouts: docker-save archives of every dialect and OCI archives.
//!
//! - [`ingest`]: one hardened pass over a tar stream (plain, gzip or zstd), staging every
//!   member into the layout's transaction and hashing it on the way.
//! - [`import`](import::import): resolves the images of a docker-save or OCI archive and commits
//!   them with their tags; [`read`](import::read) resolves them without a layout, writing
//!   nothing (`ls ARCHIVE`, `inspect ARCHIVE`).

mod errors;
pub mod export;
pub mod guard;
pub mod import;
pub mod ingest;
pub mod paths;
pub mod side;
pub mod tarwrite;

pub use errors::{Error, Result};
