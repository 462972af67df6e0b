//! TLS trust per registry, as skopeo and podman set it up (containers/image
//! `pkg/tlsclientconfig`): the system roots (`rustls-native-certs`, which honours
//! `SSL_CERT_FILE`/`SSL_CERT_DIR`) plus the CAs of the registry's certs.d directory
//! (`*.crt`), and a client certificate from it (`*.cert` with the `*.key` of the same name).
//! The directory is `--cert-dir`, else the first that exists of
//! `~/.config/containers/certs.d/HOST[:PORT]`, `/etc/containers/certs.d/HOST[:PORT]` and
//! `/etc/docker/certs.d/HOST[:PORT]`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use crate::errors::{Error, Result};

/// The system's roots, loaded once per process (unreadable ones are skipped, as curl does).
fn system_roots() -> &'static [Certificate<'static>] {
    static ROOTS: OnceLock<Vec<Certificate<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        rustls_native_certs::load_native_certs()
            .certs
            .into_iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect()
    })
}

/// The certs.d directory for `registry`, if any.
pub fn cert_dir(registry: &str, explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(d) = explicit {
        return Some(d.to_path_buf());
    }
    let mut candidates = Vec::new();
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        candidates.push(PathBuf::from(h).join(".config/containers/certs.d"));
    }
    candidates.push(PathBuf::from("/etc/containers/certs.d"));
    candidates.push(PathBuf::from("/etc/docker/certs.d"));
    candidates
        .into_iter()
        .map(|d| d.join(registry))
        .find(|d| d.is_dir())
}

/// The TLS configuration for `registry`.
pub fn config(registry: &str, explicit_dir: Option<&Path>, verify: bool) -> Result<TlsConfig> {
    let mut roots: Vec<Certificate<'static>> = system_roots().to_vec();
    let mut client: Option<ClientCert> = None;
    if let Some(dir) = cert_dir(registry, explicit_dir) {
        let (cas, cert) = read_cert_dir(&dir)?;
        roots.extend(cas);
        client = cert;
    }
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(ocitool_tls::provider())
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .client_cert(client)
        .disable_verification(!verify)
        .build())
}

/// The CAs (`*.crt`) and the client certificate (`*.cert` + `*.key`) of a certs.d directory.
fn read_cert_dir(dir: &Path) -> Result<(Vec<Certificate<'static>>, Option<ClientCert>)> {
    let bad = |p: &Path, why: String| Error::Tls {
        path: p.to_path_buf(),
        why,
    };
    let rd = std::fs::read_dir(dir).map_err(|e| bad(dir, format!("cannot read it: {e}")))?;
    let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    names.sort();
    let mut cas = Vec::new();
    let mut client = None;
    for p in &names {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "crt" => {
                let pem = read_small(p)?;
                let mut n = 0;
                for item in ureq::tls::parse_pem(&pem) {
                    match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => {
                            cas.push(c);
                            n += 1;
                        }
                        Ok(_) => {}
                        Err(e) => return Err(bad(p, format!("not valid PEM: {e}"))),
                    }
                }
                if n == 0 {
                    return Err(bad(p, "holds no certificate".into()));
                }
            }
            "cert" if client.is_none() => {
                let key = p.with_extension("key");
                if !key.exists() {
                    return Err(bad(
                        p,
                        format!("a client certificate needs its key in {}", key.display()),
                    ));
                }
                let pem = read_small(p)?;
                let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|i| match i {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if chain.is_empty() {
                    return Err(bad(p, "holds no certificate".into()));
                }
                let key_pem = read_small(&key)?;
                let k = PrivateKey::from_pem(&key_pem)
                    .map_err(|_| bad(&key, "holds no private key ocitool can read".into()))?;
                client = Some(ClientCert::new_with_certs(&chain, k));
            }
            _ => {}
        }
    }
    Ok((cas, client))
}

fn read_small(p: &Path) -> Result<Vec<u8>> {
    let md = std::fs::metadata(p).map_err(|e| Error::Tls {
        path: p.to_path_buf(),
        why: format!("cannot read it: {e}"),
    })?;
    if !md.is_file() || md.len() > 1 << 20 {
        return Err(Error::Tls {
            path: p.to_path_buf(),
            why: "not a regular file of at most 1 MiB".into(),
        });
    }
    std::fs::read(p).map_err(|e| Error::Tls {
        path: p.to_path_buf(),
        why: format!("cannot read it: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's TLS uses the one provider of `ocitool-tls`, the server's too (see
    /// `ocitool-serve`'s `tls` tests): one choice of cryptography for both.
    #[test]
    fn the_shared_crypto_provider() {
        let dir = tempfile::tempdir().unwrap();
        let c = config("r.example:5000", Some(dir.path()), true).unwrap();
        let p = c
            .unversioned_rustls_crypto_provider()
            .as_ref()
            .expect("a provider is set");
        assert!(Arc::ptr_eq(p, &ocitool_tls::provider()));
    }
}
