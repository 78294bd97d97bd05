//! bubblewrap's command line for one jail: pure, so what the jail sees can be read (and
//! tested) without starting anything.
//!
//! The new root is empty but for, in this order: the system (`/usr` and the links or
//! directories beside it), the few `/etc` entries programs need to start, a private
//! `/proc`, `/dev` and `/tmp`, an empty writable `HOME`, the toolchain directories
//! (read-only), the cell's readable then writable directories, and last an empty tmpfs
//! over every hidden directory that lies below something bound, so the node's store and
//! keys stay out of sight even when a work directory contains them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{Cell, Network};

/// The `HOME` jailed commands get: empty and writable, gone with the jail.
pub(crate) const JAIL_HOME: &str = "/home/jail";

/// Beside `/usr`: links on a merged-/usr system, directories on an older one.
const SYSTEM_ROOTS: [&str; 6] = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// What programs read from `/etc` to start (dynamic linker, alternatives, users for
/// `getpwuid`, time zone, certificates and name resolution for tasks with network).
/// Nothing else of the host's configuration is visible.
const ETC_ENTRIES: [&str; 12] = [
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "passwd",
    "group",
    "localtime",
    "nsswitch.conf",
    "hosts",
    "resolv.conf",
    "ssl",
    "ca-certificates",
];

/// Who the jailed command runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity {
    /// The node runs as root: bubblewrap sets up the mounts with root's rights (no user
    /// namespace), then `setpriv` becomes this unprivileged uid and gid for good.
    Unprivileged { user: u32, group: u32 },
    /// The node's own user, inside a user namespace with no capabilities.
    NodeUser,
}

/// Everything the command line is made from.
pub(crate) struct Plan<'a> {
    pub identity: Identity,
    pub toolchain_dirs: &'a [PathBuf],
    pub hidden_dirs: &'a [PathBuf],
    pub cell: &'a Cell,
    pub seccomp_fd: i32,
}

/// The host's entries beside `/usr`, as this machine has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SystemRoot {
    Link { path: PathBuf, target: PathBuf },
    Dir(PathBuf),
}

/// How `SYSTEM_ROOTS` look on this machine.
pub(crate) fn system_roots() -> Vec<SystemRoot> {
    SYSTEM_ROOTS
        .iter()
        .map(PathBuf::from)
        .filter_map(|path| match std::fs::read_link(&path) {
            Ok(target) => Some(SystemRoot::Link { path, target }),
            Err(_) if path.is_dir() => Some(SystemRoot::Dir(path)),
            Err(_) => None,
        })
        .collect()
}

/// bubblewrap's arguments up to and including `--`; the program and its arguments go
/// after them.
pub(crate) fn arguments(plan: &Plan, system: &[SystemRoot]) -> Vec<OsString> {
    let mut line = Line::default();
    line.namespaces(plan);
    line.flags(["--ro-bind", "/usr", "/usr"]);
    for root in system {
        match root {
            SystemRoot::Link { path, target } => line.op("--symlink", target, path),
            SystemRoot::Dir(path) => line.op("--ro-bind", path, path),
        }
    }
    line.dir(Path::new("/etc"), "0755");
    for entry in ETC_ENTRIES {
        let path = Path::new("/etc").join(entry);
        line.op("--ro-bind-try", &path, &path);
    }
    line.flags(["--proc", "/proc", "--dev", "/dev"]);
    // POSIX semaphores and shared memory (Python's multiprocessing, as flake8 uses it)
    // live in /dev/shm, which must be writable by the jail's user.
    line.flags(["--perms", "1777", "--tmpfs", "/dev/shm"]);
    line.flags(["--perms", "1777", "--tmpfs", "/tmp"]);
    line.flags(["--perms", "0777", "--tmpfs", JAIL_HOME]);
    for dir in plan.toolchain_dirs {
        line.bind("--ro-bind", dir);
    }
    for dir in &plan.cell.readable {
        line.bind("--ro-bind", dir);
    }
    for dir in &plan.cell.writable {
        line.bind("--bind", dir);
    }
    let bound: Vec<&PathBuf> = plan
        .toolchain_dirs
        .iter()
        .chain(&plan.cell.readable)
        .chain(&plan.cell.writable)
        .collect();
    for hidden in plan.hidden_dirs {
        if bound.iter().any(|dir| hidden.starts_with(dir)) && hidden.is_dir() {
            line.flags(["--perms", "0000"]);
            line.op1("--tmpfs", hidden);
        }
    }
    line.op1("--chdir", &plan.cell.cwd);
    line.flags(["--seccomp"]);
    line.0.push(plan.seccomp_fd.to_string().into());
    line.flags(["--cap-drop", "ALL"]);
    if let Identity::Unprivileged { user, group } = plan.identity {
        // Only for setpriv's change of user, which clears them again.
        line.flags(["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]);
        line.flags(["--", "setpriv"]);
        line.0.push(format!("--reuid={user}").into());
        line.0.push(format!("--regid={group}").into());
        line.flags(["--clear-groups"]);
    }
    line.flags(["--"]);
    line.0
}

#[derive(Default)]
struct Line(Vec<OsString>);

impl Line {
    fn flags<const N: usize>(&mut self, flags: [&str; N]) {
        self.0.extend(flags.map(OsString::from));
    }

    fn op1(&mut self, flag: &str, path: &Path) {
        self.0.push(flag.into());
        self.0.push(path.into());
    }

    fn op(&mut self, flag: &str, from: &Path, to: &Path) {
        self.op1(flag, from);
        self.0.push(to.into());
    }

    fn dir(&mut self, path: &Path, mode: &str) {
        self.flags(["--perms", mode]);
        self.op1("--dir", path);
    }

    /// Binds `dir` at the same path, making its missing ancestors first (readable by
    /// all: bubblewrap would otherwise copy modes such as root's 0700 home).
    fn bind(&mut self, flag: &str, dir: &Path) {
        let ancestors: Vec<&Path> = dir
            .ancestors()
            .skip(1)
            .filter(|ancestor| *ancestor != Path::new("/"))
            .collect();
        for ancestor in ancestors.into_iter().rev() {
            if !ancestor.starts_with("/usr") {
                self.dir(ancestor, "0755");
            }
        }
        self.op(flag, dir, dir);
    }

    fn namespaces(&mut self, plan: &Plan) {
        self.flags([
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
        ]);
        if plan.cell.network == Network::Off {
            self.flags(["--unshare-net"]);
        }
        if plan.identity == Identity::NodeUser {
            self.flags(["--unshare-user", "--disable-userns"]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(writable: &str, network: Network) -> Cell {
        Cell {
            readable: vec!["/srv/repo".into()],
            writable: vec![writable.into()],
            cwd: writable.into(),
            network,
            limits: None,
        }
    }

    fn text(arguments: &[OsString]) -> String {
        arguments
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn as_root_the_command_becomes_the_unprivileged_user_with_the_network_cut() {
        let cell = cell("/var/work/copy", Network::Off);
        let plan = Plan {
            identity: Identity::Unprivileged {
                user: 65534,
                group: 65534,
            },
            toolchain_dirs: &["/opt/toolchain".into()],
            hidden_dirs: &[],
            cell: &cell,
            seccomp_fd: 7,
        };
        let line = text(&arguments(&plan, &[]));
        assert!(line.contains("--unshare-net"), "{line}");
        assert!(!line.contains("--unshare-user"), "{line}");
        assert!(
            line.ends_with(
                "--cap-drop ALL --cap-add CAP_SETUID --cap-add CAP_SETGID -- setpriv \
                 --reuid=65534 --regid=65534 --clear-groups --"
            ),
            "{line}"
        );
        assert!(line.contains("--ro-bind /opt/toolchain /opt/toolchain"));
        assert!(line.contains("--ro-bind /srv/repo /srv/repo"));
        assert!(line.contains("--perms 0755 --dir /var/work --bind /var/work/copy /var/work/copy"));
        assert!(line.contains("--chdir /var/work/copy --seccomp 7"));
    }

    #[test]
    fn as_another_user_a_user_namespace_is_made_and_no_other_may_be() {
        let cell = cell("/tmp/scratch", Network::On);
        let plan = Plan {
            identity: Identity::NodeUser,
            toolchain_dirs: &[],
            hidden_dirs: &[],
            cell: &cell,
            seccomp_fd: 3,
        };
        let line = text(&arguments(&plan, &[]));
        assert!(line.contains("--unshare-user --disable-userns"), "{line}");
        assert!(!line.contains("--unshare-net"), "{line}");
        assert!(!line.contains("setpriv"), "{line}");
        assert!(line.ends_with("--cap-drop ALL --"), "{line}");
    }

    #[test]
    fn a_hidden_directory_below_a_bound_one_is_covered() {
        let outer = tempfile::tempdir().unwrap();
        let hidden = outer.path().join(".troupe/data-auth");
        std::fs::create_dir_all(&hidden).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let cell = Cell {
            readable: vec![],
            writable: vec![outer.path().to_path_buf()],
            cwd: outer.path().to_path_buf(),
            network: Network::Off,
            limits: None,
        };
        let hidden_dirs = [hidden.clone(), elsewhere.path().to_path_buf()];
        let plan = Plan {
            identity: Identity::NodeUser,
            toolchain_dirs: &[],
            hidden_dirs: &hidden_dirs,
            cell: &cell,
            seccomp_fd: 3,
        };
        let line = text(&arguments(&plan, &[]));
        let bind = line
            .find(&format!("--bind {0} {0}", outer.path().display()))
            .unwrap();
        let cover = line
            .find(&format!("--perms 0000 --tmpfs {}", hidden.display()))
            .unwrap();
        assert!(bind < cover, "{line}");
        assert!(!line.contains(&format!("--tmpfs {}", elsewhere.path().display())));
    }
}
