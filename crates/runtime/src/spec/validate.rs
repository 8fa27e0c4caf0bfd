//! Checks a [`ContainerSpec`] before anything is created, with errors naming the bad value
//! the way Docker words them.

use std::path::{Component, Path};

use super::{ContainerSpec, MountSpec, MIN_MEMORY};
use crate::error::{Error, Result};

impl ContainerSpec {
    /// Checks the spec, with an error naming the bad value.
    pub fn validate(&self) -> Result<()> {
        let valid_id = |c: char| c.is_ascii_alphanumeric() || "_.+-".contains(c);
        if self.id.is_empty() || !self.id.chars().all(valid_id) {
            return invalid(format!("invalid container id {:?}", self.id));
        }
        if self.args.is_empty() || self.args[0].is_empty() {
            return invalid("no command specified".into());
        }
        if !self.rootfs.is_absolute() || !self.rootfs.is_dir() {
            return Err(Error::NotFound(format!(
                "root filesystem {} is not an existing directory",
                self.rootfs.display()
            )));
        }
        check_container_path(&self.cwd, "working directory")?;
        if let Some(bad) = self.env.iter().find(|e| !e.contains('=')) {
            return invalid(format!(
                "invalid environment entry {bad:?}: expected KEY=value"
            ));
        }
        self.validate_resources()?;
        self.validate_mounts()
    }

    fn validate_resources(&self) -> Result<()> {
        let r = &self.resources;
        match r.memory {
            Some(m) if m < 0 => return invalid(format!("invalid memory limit {m}: negative")),
            Some(m) if m > 0 && m < MIN_MEMORY => {
                return invalid(format!(
                    "invalid memory limit {m}: the minimum allowed is 6MB"
                ))
            }
            _ => {}
        }
        if let Some(cpus) = r.cpus {
            let host = host_cpus();
            if cpus.is_nan() || cpus < 0.01 || cpus > host as f64 {
                return invalid(format!(
                    "invalid --cpus {cpus}: the range of CPUs is from 0.01 to {host}.00, as there are only {host} CPUs available"
                ));
            }
        }
        Ok(())
    }

    fn validate_mounts(&self) -> Result<()> {
        let etc = [
            &self.etc_files.hostname,
            &self.etc_files.hosts,
            &self.etc_files.resolv_conf,
        ];
        for source in etc.into_iter().flatten() {
            check_source(source)?;
        }
        let mut targets = Vec::new();
        for mount in &self.mounts {
            check_container_path(mount.target(), "mount target")?;
            if let MountSpec::Bind { source, .. } = mount {
                check_source(source)?;
            }
            if targets.contains(&mount.target()) {
                return invalid(format!(
                    "duplicate mount point {}",
                    mount.target().display()
                ));
            }
            targets.push(mount.target());
        }
        Ok(())
    }
}

/// The CPUs this process may run on, the bound Docker checks `--cpus` against.
pub fn host_cpus() -> u32 {
    rustix::thread::sched_getaffinity(None)
        .map(|set| set.count())
        .unwrap_or(1)
        .max(1)
}

fn invalid(message: String) -> Result<()> {
    Err(Error::Invalid(message))
}

fn check_container_path(path: &Path, what: &str) -> Result<()> {
    let escapes = path.components().any(|c| c == Component::ParentDir);
    if !path.is_absolute() || escapes {
        return invalid(format!(
            "invalid {what} {}: it must be an absolute path without '..'",
            path.display()
        ));
    }
    Ok(())
}

fn check_source(source: &Path) -> Result<()> {
    if !source.is_absolute() {
        return invalid(format!(
            "invalid bind source {}: it must be an absolute path",
            source.display()
        ));
    }
    if !source.exists() {
        return Err(Error::NotFound(format!(
            "bind source {} does not exist",
            source.display()
        )));
    }
    Ok(())
}
