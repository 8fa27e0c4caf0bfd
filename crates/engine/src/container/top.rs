//! `top`: the processes a running container runs, read from its cgroup.

use std::path::{Path, PathBuf};

use super::Containers;
use crate::error::{Error, Result};

impl Containers<'_> {
    /// The host PIDs of a running container's processes (from its cgroup), ascending.
    pub fn top(&self, name_or_id: &str) -> Result<Vec<i32>> {
        let c = self.running(name_or_id, "list the processes of")?;
        for procs in cgroup_procs_files(&c.id) {
            if let Ok(text) = std::fs::read_to_string(&procs) {
                let mut pids: Vec<i32> =
                    text.lines().filter_map(|l| l.trim().parse().ok()).collect();
                pids.sort_unstable();
                return Ok(pids);
            }
        }
        Err(Error::NotFound(format!(
            "the cgroup of container {} was not found under /sys/fs/cgroup",
            c.short_id()
        )))
    }
}

/// Where the container's `cgroup.procs` may be: the v1 pids or memory hierarchy, or v2.
fn cgroup_procs_files(id: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let rel = Path::new(strata_runtime::cgroup::PARENT)
        .join(id)
        .join("cgroup.procs");
    ["pids", "memory", "cpu", "unified", ""]
        .iter()
        .map(|h| base.join(h).join(&rel))
        .collect()
}
