//! The verbs that change a container without running it: `pause` and `unpause` (the
//! runtime's freezer), `rename`, and the processes it runs (for `top`), read from its cgroup.

use std::path::{Path, PathBuf};

use super::{names, store, Container, State};
use crate::error::{Error, Result};
use crate::Engine;

impl Engine {
    /// `pause`: freezes every process of a running container.
    pub fn pause_container(&self, name_or_id: &str) -> Result<Container> {
        let c = self.running(name_or_id, "pause")?;
        let runtime = self.runtime_for(&self.container_config(&c)?)?;
        runtime.pause(&c.id)?;
        Ok(c)
    }

    /// `unpause`: thaws a paused container.
    pub fn unpause_container(&self, name_or_id: &str) -> Result<Container> {
        let c = self.running(name_or_id, "unpause")?;
        let runtime = self.runtime_for(&self.container_config(&c)?)?;
        runtime.resume(&c.id)?;
        Ok(c)
    }

    /// Whether the runtime reports the running container `c` as paused.
    pub fn is_paused(&self, c: &Container) -> bool {
        if c.state != State::Running {
            return false;
        }
        let Ok(config) = self.container_config(c) else {
            return false;
        };
        let Ok(runtime) = self.runtime_for(&config) else {
            return false;
        };
        runtime
            .state(&c.id)
            .is_ok_and(|s| s.status == strata_runtime::Status::Paused)
    }

    fn running(&self, name_or_id: &str, verb: &str) -> Result<Container> {
        let c = self.container(name_or_id)?;
        if c.state != State::Running {
            return Err(Error::Conflict(format!(
                "cannot {verb} container {} ({}): it is not running",
                c.name,
                c.short_id()
            )));
        }
        Ok(c)
    }

    /// `rename`: a new name, refused when another container has it.
    pub fn rename_container(&self, name_or_id: &str, new_name: &str) -> Result<Container> {
        let new_name = names::validate(new_name.strip_prefix('/').unwrap_or(new_name))?;
        let c = self.container(name_or_id)?;
        if c.name == new_name {
            return Ok(c);
        }
        self.db.write(|tx| {
            if let Some(other) = store::by_name(tx.sql(), new_name)? {
                return Err(store::name_taken(new_name, &other));
            }
            store::rename(tx.sql(), &c.id, new_name)
        })?;
        self.container(&c.id)
    }

    /// The host PIDs of a running container's processes (from its cgroup), ascending.
    pub fn container_pids(&self, name_or_id: &str) -> Result<Vec<i32>> {
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
