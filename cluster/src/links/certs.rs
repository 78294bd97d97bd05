//! `troupe cluster certs`: a CA and one certificate per node, for a test or small
//! cluster. Every node certificate names its node (the name peers dial it by) and is
//! good for both ends of a link. Files are created, never overwritten; keys are 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::error::ClusterError;

/// A CA and the certificates it signed, PEM.
pub struct ClusterCerts {
    pub ca_cert: String,
    pub ca_key: String,
    pub nodes: Vec<NodeCert>,
}

pub struct NodeCert {
    pub name: String,
    pub cert: String,
    pub key: String,
}

/// A fresh CA and a certificate for each of `nodes`, each also naming `extra_names`
/// (addresses or host names the nodes are dialled by besides their names).
pub fn make_certs(nodes: &[String], extra_names: &[String]) -> Result<ClusterCerts, ClusterError> {
    if let Some(name) = nodes.iter().find(|name| !is_node_name(name)) {
        return Err(ClusterError::NodeName(name.clone()));
    }
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(DnType::CommonName, "Troupe cluster CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
    let nodes = nodes
        .iter()
        .map(|name| node_cert(name, extra_names, &ca))
        .collect::<Result<_, _>>()?;
    Ok(ClusterCerts {
        ca_cert: ca.pem(),
        ca_key: ca.key().serialize_pem(),
        nodes,
    })
}

fn node_cert(
    name: &str,
    extra_names: &[String],
    ca: &CertifiedIssuer<'_, KeyPair>,
) -> Result<NodeCert, ClusterError> {
    let names: Vec<String> = std::iter::once(name.to_string())
        .chain(extra_names.iter().cloned())
        .collect();
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, ca)?;
    Ok(NodeCert {
        name: name.into(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

impl ClusterCerts {
    /// Writes `ca.pem`, `ca.key` and `NAME.pem`, `NAME.key` per node into `dir`
    /// (created if missing): the paths written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, ClusterError> {
        std::fs::create_dir_all(dir).map_err(|source| ClusterError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files = vec![
            (dir.join("ca.pem"), &self.ca_cert, 0o644),
            (dir.join("ca.key"), &self.ca_key, 0o600),
        ];
        for node in &self.nodes {
            files.push((dir.join(format!("{}.pem", node.name)), &node.cert, 0o644));
            files.push((dir.join(format!("{}.key", node.name)), &node.key, 0o600));
        }
        for (path, text, mode) in &files {
            create_new(path, text, *mode)?;
        }
        Ok(files.into_iter().map(|(path, _, _)| path).collect())
    }
}

fn create_new(path: &Path, text: &str, mode: u32) -> Result<(), ClusterError> {
    let write = |source| ClusterError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(write)?;
    file.write_all(text.as_bytes()).map_err(write)
}

/// A node's name, also a file name here (`troupe_config::is_node_name`), and not `ca`
/// (the CA's own files).
fn is_node_name(name: &str) -> bool {
    troupe_config::is_node_name(name) && name != "ca"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::LinkTls;

    #[test]
    fn names_that_are_not_node_names_are_refused_before_anything_is_written() {
        for name in ["../etc/passwd", "", "ca", "..", "a b", "a/b"] {
            let error = make_certs(&["good".into(), name.into()], &[])
                .err()
                .unwrap_or_else(|| panic!("{name:?} accepted"));
            assert!(
                matches!(&error, ClusterError::NodeName(refused) if refused == name),
                "{error}"
            );
        }
    }

    #[test]
    fn written_certificates_set_up_both_ends_of_a_link_and_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let certs = make_certs(&["a".into(), "b".into()], &["127.0.0.1".into()]).unwrap();
        let written = certs.write(dir.path()).unwrap();
        assert_eq!(written.len(), 6);
        let mode = |name: &str| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!((mode("a.key"), mode("ca.key")), (0o600, 0o600));
        LinkTls::from_files(
            &dir.path().join("ca.pem"),
            &dir.path().join("a.pem"),
            &dir.path().join("a.key"),
        )
        .expect("a node's files make its TLS");
        let again = make_certs(&["a".into()], &[]).unwrap();
        let error = again.write(dir.path()).unwrap_err();
        assert!(
            matches!(&error, ClusterError::Write { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
            "{error}"
        );
    }

    #[test]
    fn a_missing_or_empty_certificate_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let error = LinkTls::from_files(&empty, &empty, &empty).err().unwrap();
        assert!(
            matches!(&error, ClusterError::NoCertificate { path } if path == &empty),
            "{error}"
        );
        let missing = dir.path().join("missing.pem");
        let error = LinkTls::from_files(&missing, &missing, &missing)
            .err()
            .unwrap();
        assert!(error.to_string().contains("missing.pem"), "{error}");
    }
}
