//! What OCI and Docker documents mean to ocitool: media types, lenient read views, platforms,
//! ref names, the docker-archive `manifest.json` model, and canonical JSON for documents
//! ocitool creates.
//!
//! **Invariant: nothing in ocitool writes a parsed foreign document back as a blob.** The views
//! here deserialize only; they do not implement `Serialize`.

pub mod canonical;
pub mod docker;
mod errors;
pub mod media;
pub mod platform;
pub mod reference;
pub mod refname;
pub mod tags;
pub mod views;

pub use errors::SpecError;
pub use platform::Platform;
pub use views::{ConfigView, Descriptor, Document, IndexView, ManifestView};

/// Largest manifest, index or config ocitool reads into memory, unless raised.
pub const DEFAULT_JSON_LIMIT: u64 = 16 << 20;

#[cfg(test)]
mod tests;
