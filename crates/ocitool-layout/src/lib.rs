//! OCI image layouts on disk.
//!
//! - [`Layout`]: open and create layouts, read blobs (never through symlinks), verified.
//! - [`Transaction`]: the only way bytes enter a layout (staged, hashed, checked, fsynced,
//!   renamed, then `index.json` edited under lock).
//! - [`IndexDoc`]: `index.json` edits that keep unknown fields and write deterministic bytes.
//! - [`Graph`]: the content graph, nested indexes and referrers included, read from a
//!   [`BlobSource`] (a layout, or an archive read into memory).
//! - [`verify()`](verify::verify) and [`gc()`](gc::gc).
//!
//! **All atomic-write and locking code lives in this crate** (`fsutil`, `lock`, `txn`).

pub mod convert;
pub mod copy;
pub mod direct;
mod errors;
mod fsutil;
pub mod gc;
pub mod graph;
pub mod index;
pub mod inventory;
mod layout;
pub mod lock;
pub mod partial;
mod progress;
pub mod resolve;
mod source;
pub mod txn;
pub mod verify;

pub use errors::{Error, Result};
pub use graph::{Graph, Problem, WalkOptions};
pub use index::{EntryKey, IndexDoc};
pub use layout::{BlobEntry, Layout, OCI_LAYOUT_CONTENT, Options};
pub use lock::WaitMode;
pub use progress::{NoProgress, Progress};
pub use source::BlobSource;
pub use txn::Transaction;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
