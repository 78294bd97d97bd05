//! The jail, tried from inside with real bubblewrap: what a jailed command can see,
//! write, reach and become.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::process::{Bounds, Finished, run_bounded};

/// Runs `script` with `sh -c` in a jail whose only writable directory is `work`.
async fn jailed(jail: &Jail, work: &Path, network: Network, script: &str) -> Finished {
    let entered = jail
        .enter(Cell {
            readable: Vec::new(),
            writable: vec![work.to_path_buf()],
            cwd: work.to_path_buf(),
            network,
            limits: None,
        })
        .await
        .expect("bubblewrap sets up a jail here (scripts/setup installs it)");
    let env = BTreeMap::from([("PATH".to_string(), std::env::var("PATH").unwrap())]);
    let command = entered.command(["sh", "-c", script], &env).unwrap();
    let bounds = Bounds::head(Duration::from_secs(60), 64 * 1024);
    let finished = run_bounded(command, &CancellationToken::new(), &bounds)
        .await
        .unwrap();
    entered.finish().await;
    finished
}

fn jail_hiding(hidden: &Path) -> Jail {
    Jail::new(JailConfig::from_environment(
        Vec::new(),
        vec![hidden.to_path_buf()],
    ))
}

/// A node directory as `troupe up` leaves it: a signing key beside the store.
fn node_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let node = tempfile::tempdir().unwrap();
    let keys = node.path().join(".troupe/data-auth");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("jwt.key"), "the signing key").unwrap();
    (node, keys)
}

#[tokio::test]
async fn the_node_keys_stay_hidden_even_inside_the_work_directory() {
    let (node, keys) = node_dir();
    let jail = jail_hiding(&keys);
    let finished = jailed(
        &jail,
        node.path(),
        Network::Off,
        "cat .troupe/data-auth/jwt.key; ls -a .troupe/data-auth",
    )
    .await;
    assert!(
        !finished.stdout.text.contains("the signing key"),
        "{finished:?}"
    );
    assert!(
        finished.stderr.text.contains("Permission denied"),
        "{finished:?}"
    );
}

#[tokio::test]
async fn nothing_outside_the_cell_is_visible_or_writable() {
    let work = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "outside").unwrap();
    let script = format!(
        "cat {0}/secret; echo planted > {0}/planted; echo x > /usr/planted",
        outside.path().display()
    );
    let finished = jailed(&Jail::default(), work.path(), Network::Off, &script).await;
    assert!(!finished.stdout.text.contains("outside"), "{finished:?}");
    assert!(!outside.path().join("planted").exists());
    assert!(!Path::new("/usr/planted").exists());
    assert!(
        finished.stderr.text.contains("No such file or directory"),
        "{finished:?}"
    );
    assert!(
        finished.stderr.text.contains("Read-only file system"),
        "{finished:?}"
    );
}

#[tokio::test]
async fn a_handed_over_directory_is_writable_by_the_jailed_user() {
    let work = tempfile::tempdir().unwrap();
    let jail = Jail::default();
    jail.hand_over(work.path()).await.unwrap();
    let finished = jailed(&jail, work.path(), Network::Off, "echo kept > kept").await;
    assert_eq!(finished.exit_code, Some(0), "{finished:?}");
    assert_eq!(
        std::fs::read_to_string(work.path().join("kept")).unwrap(),
        "kept\n"
    );
}

/// Python's multiprocessing (flake8 runs its checks with it) needs semaphores in a
/// writable /dev/shm.
#[tokio::test]
async fn jailed_code_can_use_shared_memory_semaphores() {
    let work = tempfile::tempdir().unwrap();
    let jail = Jail::default();
    jail.hand_over(work.path()).await.unwrap();
    let script = "python3 -c 'import multiprocessing; multiprocessing.Lock(); print(\"locked\")'";
    let finished = jailed(&jail, work.path(), Network::Off, script).await;
    assert_eq!(finished.exit_code, Some(0), "{finished:?}");
    assert_eq!(finished.stdout.text.trim(), "locked");
}

#[tokio::test]
async fn the_jailed_user_has_no_privileges_and_a_seccomp_filter() {
    let work = tempfile::tempdir().unwrap();
    let finished = jailed(
        &Jail::default(),
        work.path(),
        Network::Off,
        "id -u; grep -E '^(CapEff|CapPrm|NoNewPrivs|Seccomp):' /proc/self/status; echo HOME=$HOME; ls -A $HOME | wc -l",
    )
    .await;
    let out = &finished.stdout.text;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert!(out.starts_with("65534\n"), "{out}");
    }
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("CapPrm:\t0000000000000000"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains(&format!("HOME={JAIL_HOME}\n0\n")), "{out}");
}

#[tokio::test]
async fn denied_calls_fail_with_eperm_and_no_user_namespace_can_be_made() {
    let work = tempfile::tempdir().unwrap();
    let script = format!(
        "python3 -c 'import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); \
         r = libc.syscall({keyctl}, 0, -3, 0); print(\"keyctl\", r, os.strerror(ctypes.get_errno()))'; \
         unshare --user --map-root-user id",
        keyctl = libc::SYS_keyctl
    );
    let finished = jailed(&Jail::default(), work.path(), Network::Off, &script).await;
    assert!(
        finished
            .stdout
            .text
            .contains("keyctl -1 Operation not permitted"),
        "{finished:?}"
    );
    assert!(!finished.stdout.text.contains("uid=0"), "{finished:?}");
    assert!(
        finished.stderr.text.contains("Operation not permitted"),
        "{finished:?}"
    );
}

#[tokio::test]
async fn without_network_the_host_loopback_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let work = tempfile::tempdir().unwrap();
    let script = format!(
        "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 2); print(\"connected\")'"
    );
    let off = jailed(&Jail::default(), work.path(), Network::Off, &script).await;
    assert!(!off.stdout.text.contains("connected"), "{off:?}");
    assert!(
        off.stderr.text.contains("Network is unreachable")
            || off.stderr.text.contains("Connection refused"),
        "{off:?}"
    );
    let on = jailed(&Jail::default(), work.path(), Network::On, &script).await;
    assert!(on.stdout.text.contains("connected"), "{on:?}");
}

#[test]
fn toolchain_dirs_are_the_outermost_existing_ones_outside_the_system() {
    let root = tempfile::tempdir().unwrap();
    let outer = root.path().join("toolchain");
    let inner = outer.join("bin");
    std::fs::create_dir_all(&inner).unwrap();
    let dirs = outermost(vec![
        inner.clone(),
        outer.clone(),
        "/usr/local/bin".into(),
        "relative/bin".into(),
        root.path().join("missing"),
        outer.clone(),
    ]);
    assert_eq!(dirs, vec![outer]);
}
