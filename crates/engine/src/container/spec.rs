//! A container's record and config turned into the runtime's [`ContainerSpec`]: the
//! process (argv, env, workdir, user resolved in the rootfs), host name, `/etc` files from
//! `containers/<id>/`, bind mounts, named volumes, tmpfs, read-only root and limits.

use std::path::{Path, PathBuf};

use strata_runtime::{resolve_user, ContainerSpec, EtcFiles, MountSpec, Resources};

use super::config::{parse_volume, ContainerConfig};
use super::{files, volumes, Container};
use crate::error::{Error, Result};

/// The spec of `c` running on `rootfs` (its mounted writable layer).
pub fn build(
    root: &Path,
    dir: &Path,
    c: &Container,
    config: &ContainerConfig,
    rootfs: &Path,
) -> Result<ContainerSpec> {
    let argv = config.argv();
    if argv.is_empty() {
        return Err(Error::Invalid(format!(
            "container {}: no command specified (the image has no CMD or ENTRYPOINT); give one after the image name",
            c.name
        )));
    }
    let mut spec = ContainerSpec::new(&c.id, rootfs, argv);
    if !config.env.is_empty() {
        let has_path = config.env.iter().any(|e| e.starts_with("PATH="));
        if !has_path {
            spec.env.truncate(1); // keep the default PATH, as Docker does
        } else {
            spec.env.clear();
        }
        spec.env.extend(config.env.iter().cloned());
    }
    if let Some(w) = &config.workdir {
        spec.cwd = PathBuf::from(w);
    }
    if let Some(u) = &config.user {
        spec.user = resolve_user(rootfs, u)?;
    }
    spec.terminal = config.tty;
    if config.tty && !spec.env.iter().any(|e| e.starts_with("TERM=")) {
        spec.env.push("TERM=xterm".into()); // as Docker sets it
    }
    spec.hostname = files::hostname(config, &c.id);
    spec.readonly_rootfs = config.read_only;
    spec.network = config.network.clone();
    spec.etc_files = EtcFiles {
        hostname: Some(dir.join("hostname")),
        hosts: Some(dir.join("hosts")),
        resolv_conf: Some(dir.join("resolv.conf")),
    };
    spec.resources = Resources {
        memory: config.memory.map(|m| m as i64),
        cpus: config.nano_cpus.map(|n| n as f64 / 1e9),
        pids_limit: config.pids_limit,
    };
    spec.mounts = mounts(root, config, rootfs)?;
    Ok(spec)
}

fn mounts(root: &Path, config: &ContainerConfig, rootfs: &Path) -> Result<Vec<MountSpec>> {
    let mut mounts = Vec::new();
    for v in &config.volumes {
        let v = parse_volume(v)?;
        let source = if v.source.is_empty() {
            // Named at create; only a config written by hand lacks the name.
            return Err(Error::Invalid(format!(
                "volume spec {:?} has no source; recreate the container",
                v.destination
            )));
        } else if v.source.starts_with('/') {
            check_bind_source(&v.source)?;
            PathBuf::from(&v.source)
        } else {
            volumes::ensure(root, &v.source, rootfs, &v.destination)?
        };
        mounts.push(MountSpec::Bind {
            source,
            target: PathBuf::from(&v.destination),
            readonly: v.read_only,
        });
    }
    for t in &config.tmpfs {
        let (target, options) = t.split_once(':').unwrap_or((t, ""));
        mounts.push(MountSpec::Tmpfs {
            target: PathBuf::from(target),
            options: options
                .split(',')
                .filter(|o| !o.is_empty())
                .map(String::from)
                .collect(),
        });
    }
    Ok(mounts)
}

/// A bind source must exist: Docker refuses to create it for `-v` as well (with `--mount`).
pub fn check_bind_source(source: &str) -> Result<()> {
    if Path::new(source).exists() {
        return Ok(());
    }
    Err(Error::NotFound(format!(
        "bind source path does not exist: {source}; create it or fix the -v spec"
    )))
}
