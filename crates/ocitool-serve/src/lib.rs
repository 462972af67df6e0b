//! `ocitool serve`: image layouts served read-only over the OCI distribution API, so that
//! podman, skopeo, containerd (Kubernetes nodes through a mirror entry) and docker pull
//! straight from a disk.
//!
//! - [`http`]: request heads, byte ranges, content negotiation (pure, fuzzed);
//! - [`route`]: request paths and the grammar of names, tags and digests (pure, fuzzed);
//! - [`names`]: which repositories and tags a layout's refs are served under;
//! - [`catalog`]: what the layouts hold, read again when an `index.json` changes;
//! - [`registry`]: the handlers (one request head in, one response out);
//! - [`auth`]: htpasswd (bcrypt) Basic authentication; [`tls`]: rustls;
//! - [`server`]: the HTTP/1.1 server on tokio; blob bodies through a few large copy buffers, or by `sendfile` past them.
//!
//! Only this crate knows tokio, rustls or HTTP; nothing else in the workspace depends on it
//! but the binary.

pub mod auth;
pub mod catalog;
mod errors;
pub mod http;
pub mod names;
pub mod registry;
pub mod route;
pub mod server;
pub mod tls;

pub use errors::{Error, Result};
pub use server::{Access, Config, Events, Limits, RepositorySummary, Server};
