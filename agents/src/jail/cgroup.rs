//! A throw-away control group for one command: `pids.max` bounds a fork bomb (root
//! ignores RLIMIT_NPROC) and the memory limit counts what is resident, not reserved.
//!
//! Best effort: cgroup v2 where the controller is delegated to the cgroup we may create
//! children in, else the v1 hierarchy of that controller. When neither is writable the
//! caller falls back to rlimits and says so in the attempt's `isolation` output.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One created cgroup directory and what it limits.
#[derive(Debug)]
struct Created {
    dir: PathBuf,
    limits_memory: bool,
    limits_processes: bool,
}

/// The cgroups one command runs in; removed (after killing what is left in them) by
/// [`Cgroups::remove`] or, as a fallback, on drop.
#[derive(Debug, Default)]
pub(crate) struct Cgroups {
    created: Vec<Created>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl Cgroups {
    /// Creates what this machine allows; never fails, an empty value limits nothing.
    pub(crate) fn create(max_memory_bytes: u64, max_processes: u64) -> Self {
        let name = format!(
            "troupe-{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let membership = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mut cgroups = Cgroups::default();
        if let Some(created) =
            create_v2(&mounts, &membership, &name, max_memory_bytes, max_processes)
        {
            cgroups.created.push(created);
        }
        if !cgroups.limits_processes()
            && let Some(parent) = v1_parent(&mounts, &membership, "pids")
            && let Some(dir) = create_with(&parent, &name, &[("pids.max", max_processes)])
        {
            cgroups.created.push(Created {
                dir,
                limits_memory: false,
                limits_processes: true,
            });
        }
        if !cgroups.limits_memory()
            && let Some(parent) = v1_parent(&mounts, &membership, "memory")
            && let Some(dir) = create_with(
                &parent,
                &name,
                &[("memory.limit_in_bytes", max_memory_bytes)],
            )
        {
            cgroups.created.push(Created {
                dir,
                limits_memory: true,
                limits_processes: false,
            });
        }
        cgroups
    }

    pub(crate) fn limits_memory(&self) -> bool {
        self.created.iter().any(|created| created.limits_memory)
    }

    pub(crate) fn limits_processes(&self) -> bool {
        self.created.iter().any(|created| created.limits_processes)
    }

    /// The `cgroup.procs` files a child writes `0` into (itself) before exec, so that it
    /// and everything it forks is inside from the first instruction.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.created
            .iter()
            .map(|created| created.dir.join("cgroup.procs"))
            .collect()
    }

    /// Kills every process still in the cgroups and removes them. Blocking, but short:
    /// SIGKILL cannot be ignored, so the groups empty within milliseconds.
    pub(crate) fn remove(&mut self) {
        for created in self.created.drain(..) {
            kill_and_remove(&created.dir);
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.remove();
    }
}

fn kill_and_remove(dir: &Path) {
    // cgroup v2 kills the whole group in one write where the kernel has cgroup.kill.
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    for _ in 0..250 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = procs
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect();
        if pids.is_empty() && std::fs::remove_dir(dir).is_ok() {
            return;
        }
        for pid in pids {
            // SAFETY: kill only sends a signal; these pids are members of the cgroup this
            // agent created for its own command, nothing else is in it.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::warn!(dir = %dir.display(), "could not remove a test cgroup");
}

/// Makes `parent/name` and writes each limit; removes it again if any write fails.
fn create_with(parent: &Path, name: &str, limits: &[(&str, u64)]) -> Option<PathBuf> {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).ok()?;
    for (file, value) in limits {
        if std::fs::write(dir.join(file), value.to_string()).is_err() {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
    }
    Some(dir)
}

fn create_v2(
    mounts: &str,
    membership: &str,
    name: &str,
    max_memory_bytes: u64,
    max_processes: u64,
) -> Option<Created> {
    let mount = mount_points(mounts, |fstype, _| fstype == "cgroup2").next()?;
    let own = membership
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .unwrap_or("/");
    // Our own cgroup (when we may create children there), else the mount's root.
    for parent in [join_cgroup_path(&mount, own), mount.clone()] {
        let delegated =
            std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        let controllers: Vec<&str> = delegated.split_whitespace().collect();
        let mut limits = Vec::new();
        if controllers.contains(&"pids") {
            limits.push(("pids.max", max_processes));
        }
        if controllers.contains(&"memory") {
            limits.push(("memory.max", max_memory_bytes));
        }
        if limits.is_empty() {
            continue;
        }
        if let Some(dir) = create_with(&parent, name, &limits) {
            return Some(Created {
                dir,
                limits_memory: controllers.contains(&"memory"),
                limits_processes: controllers.contains(&"pids"),
            });
        }
    }
    None
}

/// Our cgroup in the v1 hierarchy of `controller`, if it is mounted.
fn v1_parent(mounts: &str, membership: &str, controller: &str) -> Option<PathBuf> {
    let mount = mount_points(mounts, |fstype, options| {
        fstype == "cgroup" && options.split(',').any(|option| option == controller)
    })
    .next()?;
    let own = membership.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|name| name == controller)
            .then_some(path)
    })?;
    Some(join_cgroup_path(&mount, own))
}

fn join_cgroup_path(mount: &Path, cgroup: &str) -> PathBuf {
    mount.join(cgroup.trim_start_matches('/'))
}

/// Mount points from `/proc/self/mountinfo` whose filesystem type and super options
/// match: `id parent dev root mount-point options [optional...] - fstype source super`.
fn mount_points<'a>(
    mounts: &'a str,
    matches: impl Fn(&str, &str) -> bool + 'a,
) -> impl Iterator<Item = PathBuf> + 'a {
    mounts.lines().filter_map(move |line| {
        let (before, after) = line.split_once(" - ")?;
        let mount_point = before.split(' ').nth(4)?;
        let mut after = after.split(' ');
        let fstype = after.next()?;
        let _source = after.next();
        let options = after.next().unwrap_or_default();
        matches(fstype, options).then(|| PathBuf::from(mount_point))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";

    const MEMBERSHIP: &str = "8:pids:/\n4:memory:/jobs/abc\n0::/\n";

    #[test]
    fn finds_our_cgroup_in_each_v1_hierarchy() {
        assert_eq!(
            v1_parent(MOUNTS, MEMBERSHIP, "memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/jobs/abc"))
        );
        assert_eq!(
            v1_parent(MOUNTS, MEMBERSHIP, "pids"),
            Some(PathBuf::from("/sys/fs/cgroup/pids"))
        );
        assert_eq!(v1_parent(MOUNTS, MEMBERSHIP, "cpu"), None);
    }

    #[test]
    fn finds_the_v2_mount() {
        let found: Vec<PathBuf> = mount_points(MOUNTS, |fstype, _| fstype == "cgroup2").collect();
        assert_eq!(found, vec![PathBuf::from("/sys/fs/cgroup/unified")]);
    }
}
