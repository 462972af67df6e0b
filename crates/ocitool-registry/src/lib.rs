//! A client of the OCI distribution API, and the flows that move images between registries
//! and layouts.
//!
//! - [`Client`] / [`client::Registry`]: HTTP (ureq, rustls with `ocitool-tls`'s provider), TLS trust
//!   per registry (system roots, certs.d, client certificates), retries with backoff and
//!   `Retry-After`, the bearer-token flow and Basic auth.
//! - [`creds`]: credentials where skopeo, podman and docker keep them, and `login`/`logout`.
//! - [`pull()`](pull::pull): images into a layout, every byte verified before it gets its name,
//!   half-downloaded blobs resumed across runs, only through `ocitool_layout::Transaction`.
//! - [`push()`](push::push): refs of a layout to registries, children first, exact bytes.
//! - [`api`]: the calls themselves: manifests, blobs, uploads, tag lists (with pagination),
//!   referrers.
//!
//! It knows nothing of clap or terminals: errors are [`Error`] values naming registry,
//! repository and digest; progress goes through `ocitool_layout::Progress`. No secret ever
//! appears in an error, a log or `Debug` output.

pub mod api;
mod auth;
pub mod client;
pub mod creds;
mod errors;
pub mod pull;
pub mod push;
mod tls;

pub use client::{Client, Options};
pub use errors::{Error, Result};
