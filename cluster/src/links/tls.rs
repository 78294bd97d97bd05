//! Mutual TLS for the links: every node presents a certificate the cluster's CA signed,
//! and accepts only peers that do. The ring provider is named explicitly (the tree
//! builds rustls with two providers, and the process-wide default would be ambiguous).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::error::ClusterError;

/// Both sides of this node's links.
#[derive(Clone)]
pub struct LinkTls {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
}

impl LinkTls {
    /// Reads the CA, this node's certificate chain and its key (PEM files).
    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<LinkTls, ClusterError> {
        let roots = Arc::new(root_store(ca)?);
        let chain = certificates(cert)?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|source| ClusterError::Pem {
            path: key.to_path_buf(),
            source,
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        Ok(LinkTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }
}

/// The name a peer's certificate must carry: the node's name, or the host of a seed.
pub fn server_name(name: &str) -> Result<ServerName<'static>, ClusterError> {
    ServerName::try_from(name.to_string()).map_err(|error| ClusterError::ServerName {
        name: name.into(),
        reason: error.to_string(),
    })
}

fn root_store(ca: &Path) -> Result<RootCertStore, ClusterError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(ca)? {
        roots.add(certificate)?;
    }
    Ok(roots)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClusterError> {
    let read = |source| ClusterError::Pem {
        path: path.to_path_buf(),
        source,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if certificates.is_empty() {
        return Err(ClusterError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certificates)
}
