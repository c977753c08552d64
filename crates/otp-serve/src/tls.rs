//! TLS from PEM files, on the rustls (ring) the workspace's HTTP client already uses: no second
//! TLS stack. HTTP/1.1 only, TLS 1.2 and 1.3 with rustls' safe defaults.

use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ConfigError;

/// A certificate chain and its private key, checked to belong together. `Debug` shows the
/// leaf's size only, never the key.
#[derive(Clone)]
pub struct TlsIdentity {
    config: Arc<rustls::ServerConfig>,
    leaf_bytes: usize,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").field("leaf_bytes", &self.leaf_bytes).finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// From PEM text: the chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1).
    /// Errors name `tls_cert` or `tls_key` as the file's keys do.
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Self, ConfigError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain)
            .collect::<Result<_, _>>()
            .map_err(|e| ConfigError::new("tls_cert", format!("not a PEM certificate chain ({e})")))?;
        let leaf_bytes = chain
            .first()
            .map(|leaf| leaf.len())
            .ok_or_else(|| ConfigError::new("tls_cert", "no CERTIFICATE block in the file"))?;
        // The key's parse error may quote nothing of the key, but say only what kind of failure.
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|_| ConfigError::new("tls_key", "no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::new("tls_cert", format!("TLS could not be set up ({e})")))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| ConfigError::new("tls_key", format!("the key does not fit the certificate ({e})")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { config: Arc::new(config), leaf_bytes })
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}
