//! Deterministic synthesis of layers, images, layouts and archives for tests, the committed
//! fixtures in `testdata/` (`cargo xtask fixtures`) and the benchmark (`cargo xtask bench`).
//!
//! Everything here is a pure function of its arguments: the same call gives the same bytes
//! on every run and machine (a fixed PRNG, fixed tar headers, sorted JSON keys, a pinned
//! gzip backend and level).

pub mod archives;
pub mod big;
pub mod fixtures;
pub mod image;
pub mod layout;
pub mod many;
#[cfg(feature = "registry")]
pub mod registry;
pub mod rng;
pub mod tarball;

pub use image::{Blob, Image};
pub use layout::LayoutWriter;
pub use ocitool_compress::Compression;
pub use rng::Rng;
