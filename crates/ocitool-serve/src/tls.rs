//! The TLS side (rustls with the provider of `ocitool-tls`, shared with the registry client):
//! a certificate chain and its key, in PEM.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::errors::{Error, Result};

/// An acceptor for `cert` (the server certificate first, then its chain) and `key`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let err = |path: &Path, why: String| Error::Tls {
        path: path.to_path_buf(),
        why,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| err(cert, format!("cannot read the certificate: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(cert, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(err(cert, "holds no PEM certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| err(key, format!("cannot read a PEM private key: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(ocitool_tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            err(
                cert,
                format!("certificate and key do not make a server identity: {e}"),
            )
        })?;
    // HTTP/1.1 only; clients that offer h2 fall back to it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server's TLS uses the one provider of `ocitool-tls`, as the registry client does.
    #[test]
    fn the_shared_crypto_provider() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        let a = acceptor(&c, &k).unwrap();
        assert!(Arc::ptr_eq(
            a.config().crypto_provider(),
            &ocitool_tls::provider()
        ));
    }
}
