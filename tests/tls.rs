//! HTTPS served by the node itself (`server.tls`): a real `troupe up` with a throw-away
//! certificate, and a client that trusts that certificate only.

mod support;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// A `troupe up` serving HTTPS; killed when dropped.
struct TlsNode {
    child: Child,
    address: String,
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        let _already_dead = self.child.kill();
        let _reaped = self.child.wait();
    }
}

impl TlsNode {
    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.address)
    }
}

/// A certificate for `localhost` and 127.0.0.1, written as PEM files in `dir`; its PEM.
fn certificate(dir: &std::path::Path) -> String {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    made.cert.pem()
}

fn start(dir: &std::path::Path, tls: &[&str]) -> std::process::Output {
    troupe()
        .current_dir(dir)
        .env_remove("TROUPE_AUTH__REQUIRED")
        .args(tls)
        .args(["up", "--address", &free_address(), "--data-dir", "data"])
        .output()
        .unwrap()
}

async fn wait_ready(client: &reqwest::Client, node: &TlsNode) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(node.url("/readyz")).send().await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("troupe up did not answer over HTTPS in 60 s");
}

/// The browser's cookies set by a sign-in over HTTPS, as `Set-Cookie` says them.
async fn browser_sign_in(client: &reqwest::Client, node: &TlsNode, password: &str) -> Vec<String> {
    let response = client
        .post(node.url("/api/v1/auth/browser/login"))
        .header("origin", format!("https://{}", node.address))
        .json(&serde_json::json!({ "email": "ada@example.com", "password": password }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let cookies = response.headers().clone();
    assert_eq!(status, 200, "{}", response.text().await.unwrap());
    cookies
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_node_with_tls_serves_https_only_with_secure_prefixed_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let pem = certificate(dir.path());
    let data = format!(
        "store.url=surrealkv://{}",
        dir.path().join("data").display()
    );
    let one_time = create_user_offline(dir.path(), &data, "ada@example.com", "developer");
    let address = free_address();
    let child = troupe()
        .current_dir(dir.path())
        .env_remove("TROUPE_AUTH__REQUIRED")
        .args([
            "--set",
            "server.tls.cert_file=cert.pem",
            "--set",
            "server.tls.key_file=key.pem",
        ])
        .args(["up", "--address", &address, "--data-dir", "data"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let node = TlsNode { child, address };
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    wait_ready(&client, &node).await;

    let plain = http1::blocking_get(&format!("http://{}/readyz", node.address));
    // No HTTP answer: the connection fails, or what comes back is not HTTP (status 0).
    let answered = plain.map(|response| response.status);
    assert!(
        matches!(answered, Err(_) | Ok(0)),
        "plain HTTP on the TLS port answered {answered:?}"
    );
    let health = client.get(node.url("/livez")).send().await.unwrap();
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=31536000"
    );

    let cookies = browser_sign_in(&client, &node, &one_time).await;
    let access = cookies
        .iter()
        .find(|cookie| cookie.starts_with("__Host-troupe_access="))
        .unwrap_or_else(|| panic!("no __Host- access cookie in {cookies:?}"));
    assert!(
        access.contains("; Path=/;") && access.ends_with("; Secure"),
        "{access}"
    );
    let refresh = cookies
        .iter()
        .find(|cookie| cookie.starts_with("__Secure-troupe_refresh="))
        .unwrap_or_else(|| panic!("no __Secure- refresh cookie in {cookies:?}"));
    assert!(refresh.ends_with("; Secure"), "{refresh}");

    // The token is read from this node's cookie name only: a cookie under the plain
    // name (which a page over plain HTTP could have planted) signs nobody in.
    let token = access["__Host-troupe_access=".len()..]
        .split(';')
        .next()
        .unwrap();
    for (name, expected) in [("__Host-troupe_access", 200), ("troupe_access", 401)] {
        let status = client
            .get(node.url("/api/v1/auth/me"))
            .header("cookie", format!("{name}={token}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, expected, "{name}");
    }
}

/// A key that is not the certificate's, and a file that holds none: the node does not
/// start, and says which setting and file are wrong.
#[test]
fn bad_tls_files_are_refused_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    certificate(dir.path());
    let other = tempfile::tempdir().unwrap();
    certificate(other.path());
    let other_key = other.path().join("key.pem");
    let other_key = format!("server.tls.key_file={}", other_key.display());
    let cert = "server.tls.cert_file=cert.pem";
    let cases = [
        (
            ["--set", cert, "--set", other_key.as_str()],
            "does not fit the certificate",
        ),
        (
            [
                "--set",
                "server.tls.cert_file=key.pem",
                "--set",
                "server.tls.key_file=key.pem",
            ],
            "server.tls.cert_file: key.pem holds no PEM certificate",
        ),
        (
            ["--set", cert, "--set", "server.tls.key_file=missing.pem"],
            "server.tls.key_file: cannot read missing.pem",
        ),
    ];
    for (flags, expected) in cases {
        let output = start(dir.path(), &flags);
        let errors = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {errors}");
        assert!(errors.contains(expected), "{flags:?}: {errors}");
    }
}
