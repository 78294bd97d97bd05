//! HTTPS served by the node itself (`server.tls`): the certificate and key are read
//! once at start, with the ring provider named explicitly (the tree builds rustls with
//! two providers, so none is chosen for us).

use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use troupe_config::TlsSettings;

/// What is wrong with `server.tls`, naming the setting and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls.{setting}: cannot read {file}: {source}")]
    Unreadable {
        setting: &'static str,
        file: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("server.tls.cert_file: {file} holds no PEM certificate")]
    NoCertificate { file: String },
    #[error("server.tls: the TLS library offers no safe protocol version: {0}")]
    Provider(#[source] rustls::Error),
    #[error(
        "server.tls: the key in {key_file} does not fit the certificate in {cert_file}: {source}"
    )]
    Mismatch {
        cert_file: String,
        key_file: String,
        #[source]
        source: rustls::Error,
    },
}

/// The server's TLS configuration from `tls`: HTTP/2 and HTTP/1.1, TLS 1.2 and 1.3.
pub fn config(tls: &TlsSettings) -> Result<RustlsConfig, TlsError> {
    let certificates = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|found| found.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Unreadable {
            setting: "cert_file",
            file: tls.cert_file.clone(),
            source,
        })?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            file: tls.cert_file.clone(),
        });
    }
    let key =
        PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|source| TlsError::Unreadable {
            setting: "key_file",
            file: tls.key_file.clone(),
            source,
        })?;
    let mismatch = |source| TlsError::Mismatch {
        cert_file: tls.cert_file.clone(),
        key_file: tls.key_file.clone(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Provider)?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(mismatch)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}
