//! The cluster crate's one error type: what went wrong setting up the links between
//! nodes. The membership and the links themselves never fail a node: a peer that cannot
//! be reached is retried, and a store that does not answer fences the node.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read `{path}`: {source}")]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("`{path}` holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("the links' TLS cannot be set up: {0}")]
    Tls(#[from] rustls::Error),
    #[error("the cluster's CA cannot verify peers: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("`{name}` cannot name a node in a certificate: {reason}")]
    ServerName { name: String, reason: String },
    #[error(
        "`{0}` is not a node name: use letters, digits, `.`, `_` and `-`, at most 63 \
         (and not `ca`, the CA's files)"
    )]
    NodeName(String),
    #[error("cannot make a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen for the other nodes on `{address}`: {source}")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },
}
