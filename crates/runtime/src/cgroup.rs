//! Where strata's processes sit in the cgroup hierarchies: under one parent, `strata`, in
//! every hierarchy mounted (each v1 controller's and the unified one). A container is in
//! `strata/<id>` (runc creates and joins it from the spec's `cgroupsPath`); every monitor
//! moves itself into `strata/monitors`, as podman moves its conmon out of its caller's cgroup.
//!
//! A monitor outlives the command that started it, so it leaves that command's cgroup: a
//! service manager that stops the caller's unit by killing its cgroup leaves containers and
//! their monitors running, and what monitors use is accounted apart from the caller.
//!
//! When a monitor moves matters too. Moving a process between cgroups takes the kernel's
//! threadgroup lock for writing, which first waits for an RCU grace period unless another
//! move waited for one moments before (5-15 ms here, measured). runc moving the container's
//! first process pays that wait on the start path; a monitor that moves itself while runc
//! starts up has the grace period over, or nearly, by the time runc gets there.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The parent of strata's cgroups in each hierarchy.
pub const PARENT: &str = "strata";

/// Where monitors go, under [`PARENT`].
const MONITORS: &str = "monitors";

/// The cgroup path of container `id` (the spec's `cgroupsPath`).
pub fn container_path(id: &str) -> PathBuf {
    Path::new("/").join(PARENT).join(id)
}

/// Moves the calling process (all its threads) into `strata/monitors` of every cgroup
/// hierarchy mounted, creating it where missing.
pub fn join_monitors() -> Result<()> {
    let hierarchies = strata_sys::mountinfo::mounts_of_type(&["cgroup", "cgroup2"])?;
    let pid = std::process::id().to_string();
    for hierarchy in hierarchies {
        let dir = make_cgroup(&hierarchy, &Path::new(PARENT).join(MONITORS))?;
        let procs = dir.join("cgroup.procs");
        std::fs::write(&procs, &pid)
            .map_err(|e| Error::io(format!("moving into {}", procs.display()), e))?;
    }
    Ok(())
}

/// Creates `relative` under `hierarchy`, level by level; its path.
fn make_cgroup(hierarchy: &Path, relative: &Path) -> Result<PathBuf> {
    let mut dir = hierarchy.to_path_buf();
    for part in relative.components() {
        let parent = dir.clone();
        dir.push(part);
        match std::fs::create_dir(&dir) {
            Ok(()) => inherit_cpuset(&parent, &dir)?,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(format!("creating cgroup {}", dir.display()), e)),
        }
    }
    Ok(dir)
}

/// A new v1 cpuset cgroup holds no CPUs or memory nodes, and refuses processes, until given
/// some: it gets its parent's (as runc does for containers). Other hierarchies have no such
/// files.
fn inherit_cpuset(parent: &Path, dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let Ok(value) = std::fs::read_to_string(parent.join(file)) else {
            continue;
        };
        let path = dir.join(file);
        std::fs::write(&path, value.trim())
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_cgroups_sit_under_the_parent() {
        assert_eq!(container_path("abc"), PathBuf::from("/strata/abc"));
    }

    #[test]
    fn a_new_cpuset_cgroup_gets_its_parents_cpus() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(tmp.path().join("cpuset.mems"), "0\n").unwrap();
        let dir = make_cgroup(tmp.path(), Path::new("strata/monitors")).unwrap();
        assert_eq!(dir, tmp.path().join("strata/monitors"));
        assert_eq!(
            std::fs::read_to_string(dir.join("cpuset.cpus")).unwrap(),
            "0-1"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("cpuset.mems")).unwrap(),
            "0"
        );
        // Existing levels are left as they are.
        make_cgroup(tmp.path(), Path::new("strata/monitors")).unwrap();
    }
}
