//! Which node a link's peer proved it is. ractor_cluster takes the name a peer claims in
//! its handshake on trust: the cookie proves membership of the cluster, not which
//! member. With mutual TLS each side also holds the other's certificate, which the
//! cluster's CA issued to one node by name; a session whose peer claims a name its
//! certificate does not carry (one member posing as another) is closed before it is
//! used. Plain links (`cluster.insecure`, loopback only) have no certificates to check.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use ractor::ActorId;
use rustls::pki_types::{CertificateDer, ServerName};

/// The certificate each connection's peer presented, by the peer's address, until its
/// session authenticates; and the sessions refused.
#[derive(Clone, Default)]
pub(super) struct Proofs(Arc<Mutex<Book>>);

#[derive(Default)]
struct Book {
    certificates: HashMap<String, CertificateDer<'static>>,
    refused: HashSet<ActorId>,
}

impl Proofs {
    fn with<R>(&self, f: impl FnOnce(&mut Book) -> R) -> R {
        // Every change is a single insert or remove: a poisoned book is still whole.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Keeps the certificate the peer at `peer` presented in its TLS handshake.
    pub(super) fn record(&self, peer: SocketAddr, certificate: &CertificateDer<'_>) {
        let certificate = certificate.clone().into_owned();
        self.with(|book| book.certificates.insert(peer.to_string(), certificate));
    }

    /// Whether the peer at `peer` (ractor_cluster's text of its address) proved it is
    /// node `claimed`; `Err` says why not. The session of `session` is remembered as
    /// refused.
    pub(super) fn check(&self, peer: &str, claimed: &str, session: ActorId) -> Result<(), String> {
        let certificate = self.with(|book| book.certificates.remove(peer));
        let proved = match certificate {
            Some(certificate) => names(&certificate, claimed),
            None => Err("it presented no certificate".into()),
        };
        if proved.is_err() {
            self.with(|book| book.refused.insert(session));
        }
        proved
    }

    pub(super) fn is_refused(&self, session: ActorId) -> bool {
        self.with(|book| book.refused.contains(&session))
    }

    /// Forgets a connection that ended.
    pub(super) fn forget(&self, peer: &str, session: ActorId) {
        self.with(|book| {
            book.certificates.remove(peer);
            book.refused.remove(&session);
        });
    }
}

/// `Ok` when `certificate` names node `claimed` (a subject alternative name).
fn names(certificate: &CertificateDer<'_>, claimed: &str) -> Result<(), String> {
    let name = ServerName::try_from(claimed)
        .map_err(|_| format!("`{claimed}` is not a name a certificate can carry"))?;
    let certificate = webpki::EndEntityCert::try_from(certificate)
        .map_err(|error| format!("its certificate cannot be read: {error}"))?;
    certificate
        .verify_is_valid_for_subject_name(&name)
        .map_err(|_| format!("its certificate does not name `{claimed}`"))
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;

    use super::*;
    use crate::links::certs::make_certs;

    #[test]
    fn a_peer_is_the_node_its_certificate_names_and_no_other() {
        let certs = make_certs(&["a".into(), "b".into()], &["b.internal".into()]).unwrap();
        let pem = &certs
            .nodes
            .iter()
            .find(|node| node.name == "b")
            .unwrap()
            .cert;
        let b = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let peer: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let proofs = Proofs::default();
        let session = ActorId::Local(7);

        proofs.record(peer, &b);
        assert_eq!(proofs.check(&peer.to_string(), "b", session), Ok(()));
        assert!(!proofs.is_refused(session));

        proofs.record(peer, &b);
        let posing = proofs.check(&peer.to_string(), "a", session).unwrap_err();
        assert!(posing.contains("does not name `a`"), "{posing}");
        assert!(proofs.is_refused(session));
        proofs.forget(&peer.to_string(), session);
        assert!(!proofs.is_refused(session));

        let unknown = proofs
            .check("127.0.0.1:1", "b", ActorId::Local(8))
            .unwrap_err();
        assert!(unknown.contains("no certificate"), "{unknown}");
    }
}
