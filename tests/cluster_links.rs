//! The links between nodes, end to end: real `troupe up` processes on a real SurrealDB
//! server, certificates made by `troupe cluster certs`. Nodes with the cluster's
//! certificates and cookie link up; a node with the wrong cookie, a client with another
//! CA's certificate or none, a frame over the limit and a crowd of silent connections
//! get nowhere and leave the links as they were. A frozen peer's link is dropped when
//! its lease lapses, and made again when it comes back. The cookie may be kept sealed
//! in the secret store.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use support::*;

/// `troupe cluster certs` for `nodes` into `dir`.
fn make_certs(dir: &Path, nodes: &str) {
    let output = troupe()
        .args(["cluster", "certs", "--out"])
        .arg(dir)
        .args(["--nodes", nodes])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
}

/// A node on `surreal` whose links use `certs`/NAME.pem and `cookie`.
fn start_node(
    dir: &Path,
    surreal: &SurrealServer,
    certs: &Path,
    name: &str,
    cookie: &str,
) -> Server {
    let flags = node_flags(surreal, certs, name, &[format!("cluster.cookie={cookie}")]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start_on_store(&dir.join(name), &free_address(), &flags)
}

/// The flags of cluster node `name` on `surreal` with `certs`/NAME.pem, and `more`
/// settings (its cookie, or where to find it).
fn node_flags(surreal: &SurrealServer, certs: &Path, name: &str, more: &[String]) -> Vec<String> {
    let mut flags = surreal.store_flags_via(&surreal.address);
    let file = |suffix: &str| certs.join(format!("{name}{suffix}")).display().to_string();
    let settings = [
        "cluster.enabled=true".to_string(),
        format!("cluster.node_name={name}"),
        "cluster.listen=127.0.0.1:0".into(),
        format!("cluster.tls.ca_file={}", certs.join("ca.pem").display()),
        format!("cluster.tls.cert_file={}", file(".pem")),
        format!("cluster.tls.key_file={}", file(".key")),
    ];
    for setting in settings.into_iter().chain(more.iter().cloned()) {
        flags.extend(["--set".to_string(), setting]);
    }
    flags
}

/// [`node_flags`] with the cookie read from the sealed secret `secret`, sealed with
/// the keyring in `secrets_dir`.
fn flags_with_sealed_cookie(
    surreal: &SurrealServer,
    certs: &Path,
    (name, secret): (&str, &str),
    secrets_dir: &Path,
) -> Vec<String> {
    let more = [
        format!("cluster.cookie_secret={secret}"),
        format!("secrets.dir={}", secrets_dir.display()),
    ];
    node_flags(surreal, certs, name, &more)
}

/// Where the node table says `name`'s links listen.
fn links_address(server: &Server, name: &str) -> String {
    let view = get_json(server, "/api/v1/cluster");
    view["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|member| member["name"] == name)
        .and_then(|member| member["cluster_address"].as_str())
        .unwrap_or_else(|| panic!("{name} is not listed: {view}"))
        .to_string()
}

/// A TLS client for the links with `config`; the handshake's outcome.
fn tls_client(
    address: &str,
    config: rustls::ClientConfig,
    name: &str,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, std::io::Error> {
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), server_name).unwrap();
    let socket = TcpStream::connect(address)?;
    socket.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut stream = rustls::StreamOwned::new(connection, socket);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    // TLS 1.3: the server checks the client's certificate after the client's side of
    // the handshake is done; its refusal arrives as an alert on the first read.
    stream.write_all(&[])?;
    Ok(stream)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &Path) -> rustls::RootCertStore {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    roots
}

/// A client presenting `certs`/NAME.pem, trusting `certs`/ca.pem.
fn client_with_cert(certs: &Path, name: &str) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(certs.join(format!("{name}.pem")))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(certs.join(format!("{name}.key"))).unwrap();
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(&certs.join("ca.pem")))
        .with_client_auth_cert(chain, key)
        .unwrap()
}

/// Whether the server ends the connection (an alert, a reset or end of stream) rather
/// than keeping it open for 10 s.
fn is_closed_by_peer(stream: &mut impl Read) -> bool {
    let mut buffer = [0u8; 64];
    match stream.read(&mut buffer) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => !matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn nodes_link_over_mutual_tls_and_strangers_get_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let (certs, strangers) = (dir.path().join("certs"), dir.path().join("strangers"));
    make_certs(&certs, "a,b,c,spare");
    make_certs(&strangers, "a,mallory");
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let a = start_node(dir.path(), &surreal, &certs, "a", TEST_CLUSTER_COOKIE);
    let b = start_node(dir.path(), &surreal, &certs, "b", TEST_CLUSTER_COOKIE);
    wait_for_links(&a, &["b"]);
    wait_for_links(&b, &["a"]);

    // A member with the cluster's certificate but the wrong cookie is listed in the
    // store (it shares it) and dials both, and neither links to it.
    let c = start_node(dir.path(), &surreal, &certs, "c", "not-the-cluster-cookie");
    let address = links_address(&a, "a");
    let _ = links_address(&a, "c");
    std::thread::sleep(Duration::from_secs(3));
    wait_for_links(&a, &["b"]);
    wait_for_links(&c, &[]);

    // A client whose certificate another CA signed, or with none, is refused in the
    // handshake.
    let stranger = client_with_cert(&strangers, "mallory");
    assert!(
        tls_client(&address, stranger, "a").is_err(),
        "a certificate from another CA is refused"
    );
    let anonymous = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(&certs.join("ca.pem")))
        .with_no_client_auth();
    match tls_client(&address, anonymous, "a") {
        Err(_) => {}
        Ok(mut stream) => assert!(is_closed_by_peer(&mut stream), "no certificate, no link"),
    }

    // A crowd of connections that never speak holds nobody up: a member's handshake
    // still completes at once.
    let silent: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    let started = Instant::now();
    let mut member = tls_client(&address, client_with_cert(&certs, "spare"), "a")
        .expect("a member's handshake completes beside 100 silent connections");
    let handshake = started.elapsed();
    assert!(handshake < Duration::from_secs(4), "took {handshake:?}");
    drop(silent);

    // A member's frame that claims more than the limit closes that link, before
    // anything is allocated for it; the node goes on.
    member.write_all(&(1u64 << 40).to_be_bytes()).unwrap();
    member.write_all(&[0u8; 64]).unwrap();
    member.flush().unwrap();
    assert!(is_closed_by_peer(&mut member), "a 1 TiB frame is refused");
    wait_for_links(&a, &["b"]);
    assert_eq!(get_json(&a, "/readyz")["membership"], "member");
    drop(c);

    // A frozen peer keeps its socket open and says nothing; once its lease lapses the
    // link is dropped, so calls to it fail at once. Woken, it joins again and is
    // linked again.
    b.signal("STOP");
    wait_for_links(&a, &[]);
    b.signal("CONT");
    wait_for_links(&a, &["b"]);
    wait_for_links(&b, &["a"]);
}

/// A member with the cluster's certificate and cookie that claims to be another node
/// (its certificate names `c`, it says it is `b`) is closed out: the name a session
/// claims must be one its certificate carries.
#[test]
fn a_member_posing_as_another_node_is_not_linked() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    make_certs(&certs, "a,b,c");
    // c's files under b's name: the imposter presents c's certificate as node b.
    for suffix in [".pem", ".key"] {
        let (from, to) = (format!("c{suffix}"), format!("b{suffix}"));
        std::fs::copy(certs.join(from), certs.join(to)).unwrap();
    }
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let a = start_node(dir.path(), &surreal, &certs, "a", TEST_CLUSTER_COOKIE);
    let imposter = start_node(dir.path(), &surreal, &certs, "b", TEST_CLUSTER_COOKIE);
    let _ = links_address(&a, "b");
    std::thread::sleep(Duration::from_secs(4));
    wait_for_links(&a, &[]);
    wait_for_links(&imposter, &[]);
    let log = std::fs::read_to_string(dir.path().join("a.log")).unwrap();
    assert!(
        log.contains("closed a link whose peer claims a node its certificate does not name"),
        "{log}"
    );
}

/// A cookie sealed in the secret store (`troupe secrets set cluster.cookie`) links a
/// node as the same cookie in its environment does; a node told to read one that is
/// not stored does not start, and says what to run.
#[test]
fn a_node_takes_its_cookie_from_the_secret_store() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    make_certs(&certs, "a,b");
    let surreal = SurrealServer::start(&dir.path().join("surreal.log"));
    let secrets_dir = dir.path().join("shared-secrets");
    let mut args: Vec<String> = surreal.store_flags_via(&surreal.address);
    args.extend([
        "--set".into(),
        format!("secrets.dir={}", secrets_dir.display()),
    ]);
    args.extend(["secrets".into(), "set".into(), "cluster.cookie".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sealed = troupe_with_input(dir.path(), &args, &format!("{TEST_CLUSTER_COOKIE}\n"));
    assert!(sealed.status.success(), "{sealed:?}");

    let a = start_node(dir.path(), &surreal, &certs, "a", TEST_CLUSTER_COOKIE);
    let flags = flags_with_sealed_cookie(&surreal, &certs, ("b", "cluster.cookie"), &secrets_dir);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let b = Server::start_on_store(&dir.path().join("b"), &free_address(), &flags);
    wait_for_links(&a, &["b"]);
    wait_for_links(&b, &["a"]);

    let flags = flags_with_sealed_cookie(
        &surreal,
        &certs,
        ("b", "cluster.no_such_secret"),
        &secrets_dir,
    );
    let refused = troupe()
        .args(&flags)
        .args(["up", "--address", &free_address()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("secret `cluster.no_such_secret` is not stored")
            && said.contains("troupe secrets set cluster.no_such_secret"),
        "{said}"
    );
}
