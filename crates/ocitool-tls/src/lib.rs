//! The one place that chooses ocitool's TLS cryptography: [`provider`] is the rustls
//! `CryptoProvider` of both the registry client (`ocitool-registry`, through ureq) and the
//! server (`ocitool-serve`, through tokio-rustls). Neither installs a process-wide default;
//! both hand this provider to their configuration, so the choice is made here once and a
//! test or tool that links either library gets the same one.
//!
//! The provider is *ring*'s, not aws-lc-rs's (the reasons, and why this is a crate
//! of its own, are in ARCHITECTURE.md, "TLS"): it builds with a C compiler alone in a fraction of the time and
//! adds less to the binary. rustls 0.23.48 marks `rustls::crypto::ring::default_provider`
//! deprecated because *ring* offers no post-quantum key exchange (X25519MLKEM768); the
//! provider itself is maintained (rustls 0.24 moves it to the `rustls-ring` crate, as its
//! README says). What that costs here: TLS sessions negotiate X25519 or the NIST curves, as
//! with most registries today, so recorded traffic is not protected against a future quantum
//! computer. Blobs and manifests are public-by-digest in most cases and verified by digest
//! in every case; what such a recording could reveal later is a password or token sent to
//! a registry. Switching is this one function (and the `rustls` features in the workspace
//! `Cargo.toml`).

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

/// The crypto provider every TLS configuration of ocitool uses (see the crate docs).
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            // Deprecated for its missing post-quantum key exchange only (see above).
            #[allow(deprecated)]
            let p = rustls::crypto::ring::default_provider();
            Arc::new(p)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_provider_with_tls13_and_classic_groups() {
        let p = provider();
        assert!(Arc::ptr_eq(&p, &provider()), "one provider per process");
        let groups: Vec<String> = p
            .kx_groups
            .iter()
            .map(|g| format!("{:?}", g.name()))
            .collect();
        assert!(groups.iter().any(|g| g == "X25519"), "{groups:?}");
        assert!(
            p.cipher_suites
                .iter()
                .any(|s| s.version() == &rustls::version::TLS13),
        );
        // Usable by a client and a server configuration.
        rustls::ClientConfig::builder_with_provider(p.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        rustls::ServerConfig::builder_with_provider(p)
            .with_safe_default_protocol_versions()
            .unwrap();
    }
}
