//! A container as strata describes it ([`ContainerSpec`]) and its translation into the OCI
//! runtime spec Docker would generate for it, written as a bundle's `config.json`.
//!
//! Nothing here knows about images or layers: the caller passes a root filesystem path.

use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, Process, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};
use serde::{Deserialize, Serialize};

use crate::defaults;
use crate::error::{Error, Result};
use crate::user::UserSpec;

/// The CFS period `--cpus` quotas are expressed in, as Docker uses (100 ms).
pub const CPU_PERIOD: u64 = 100_000;
/// Docker refuses memory limits below this: the container could not even start.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Which network namespace a container gets: the one network-mode type, stored in the
/// container's configuration (`--network`) and set in its spec.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A new namespace with only `lo` (`--network none`).
    #[default]
    None,
    /// The host's namespace (`--network host`).
    Host,
    /// An existing namespace the container joins by path (`/proc/<pid>/ns/net`, a bind mount
    /// under `/run/netns`), as a start hook prepares one before the runtime creates the
    /// container.
    Path(PathBuf),
}

impl std::str::FromStr for NetworkMode {
    type Err = Error;
    /// The modes a user names; a namespace path comes from a start hook, not from a flag.
    fn from_str(s: &str) -> Result<NetworkMode> {
        match s {
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            _ => Err(Error::Invalid(format!(
                "invalid network value {s:?}: supported modes are none and host (no bridge \
                 networking yet)"
            ))),
        }
    }
}

impl NetworkMode {
    /// Docker's name of the mode (`HostConfig.NetworkMode`).
    pub fn as_str(&self) -> &str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
            NetworkMode::Path(_) => "path",
        }
    }
}

/// A mount added to the container (`-v`, `--tmpfs`). Targets are absolute container paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    Bind {
        source: PathBuf,
        target: PathBuf,
        readonly: bool,
    },
    /// `options` are mount(8) options such as `size=64m` or `mode=1777`; they come after
    /// Docker's defaults (`nosuid`, `nodev`, `noexec`) so `exec` can undo `noexec`.
    Tmpfs {
        target: PathBuf,
        options: Vec<String>,
    },
}

impl MountSpec {
    pub fn target(&self) -> &Path {
        match self {
            MountSpec::Bind { target, .. } | MountSpec::Tmpfs { target, .. } => target,
        }
    }
}

/// Cgroup limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Resources {
    /// Bytes (`-m`); 0 means unlimited.
    pub memory: Option<i64>,
    /// CPUs' worth of time (`--cpus 1.5`), turned into a CFS quota.
    pub cpus: Option<f64>,
    /// Maximum number of tasks (`--pids-limit`); 0 or less means unlimited, as in Docker.
    pub pids_limit: Option<i64>,
}

/// Host files bind-mounted over the container's `/etc/hostname`, `/etc/hosts` and
/// `/etc/resolv.conf`, so the engine can write them without touching the image's layers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EtcFiles {
    pub hostname: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
    pub resolv_conf: Option<PathBuf>,
}

/// Everything needed to run one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    pub id: String,
    /// The container's root filesystem (a mounted image + writable layer, or any directory).
    pub rootfs: PathBuf,
    pub readonly_rootfs: bool,
    pub args: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub user: UserSpec,
    /// Empty means the first 12 characters of the id, as Docker does.
    pub hostname: String,
    pub terminal: bool,
    pub network: NetworkMode,
    pub mounts: Vec<MountSpec>,
    pub resources: Resources,
    pub etc_files: EtcFiles,
    /// Relative to each cgroup hierarchy's mount point; `None` is `/strata/<id>`.
    pub cgroups_path: Option<PathBuf>,
}

impl ContainerSpec {
    /// A spec with Docker's defaults: root, `/` as working directory, no network, no limits.
    pub fn new(id: impl Into<String>, rootfs: impl Into<PathBuf>, args: Vec<String>) -> Self {
        ContainerSpec {
            id: id.into(),
            rootfs: rootfs.into(),
            readonly_rootfs: false,
            args,
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cwd: PathBuf::from("/"),
            user: UserSpec::default(),
            hostname: String::new(),
            terminal: false,
            network: NetworkMode::None,
            mounts: Vec::new(),
            resources: Resources::default(),
            etc_files: EtcFiles::default(),
            cgroups_path: None,
        }
    }

    /// The container's main process, also the template for `exec`.
    pub fn process(&self) -> Result<Process> {
        let caps = defaults::capabilities();
        let mut user = UserBuilder::default().uid(self.user.uid).gid(self.user.gid);
        if !self.user.additional_gids.is_empty() {
            user = user.additional_gids(self.user.additional_gids.clone());
        }
        let nofile = PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(defaults::nofile())
            .hard(defaults::nofile())
            .build()?;
        Ok(ProcessBuilder::default()
            .terminal(self.terminal)
            .user(user.build()?)
            .args(self.args.clone())
            .env(self.env.clone())
            .cwd(&self.cwd)
            .capabilities(
                LinuxCapabilitiesBuilder::default()
                    .bounding(caps.clone())
                    .effective(caps.clone())
                    .permitted(caps)
                    .build()?,
            )
            .rlimits(vec![nofile])
            .no_new_privileges(true)
            .build()?)
    }

    /// Validates the spec and builds the OCI runtime spec Docker would generate for it.
    pub fn to_oci(&self) -> Result<Spec> {
        self.validate()?;
        let hostname = match self.hostname.as_str() {
            "" => self.id.chars().take(12).collect(),
            name => name.to_string(),
        };
        Ok(SpecBuilder::default()
            .version("1.0.2-dev")
            .root(
                RootBuilder::default()
                    .path(&self.rootfs)
                    .readonly(self.readonly_rootfs)
                    .build()?,
            )
            .process(self.process()?)
            .hostname(hostname)
            .mounts(self.oci_mounts()?)
            .linux(self.linux()?)
            .build()?)
    }

    fn linux(&self) -> Result<oci_spec::runtime::Linux> {
        let kinds = vec![
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Ipc,
        ];
        let mut namespaces = kinds
            .into_iter()
            .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
            .collect::<Result<Vec<_>, _>>()?;
        match &self.network {
            NetworkMode::Host => {}
            NetworkMode::None => namespaces.push(
                LinuxNamespaceBuilder::default()
                    .typ(LinuxNamespaceType::Network)
                    .build()?,
            ),
            NetworkMode::Path(path) => namespaces.push(
                LinuxNamespaceBuilder::default()
                    .typ(LinuxNamespaceType::Network)
                    .path(path.clone())
                    .build()?,
            ),
        }
        let cgroups_path = self
            .cgroups_path
            .clone()
            .unwrap_or_else(|| crate::cgroup::container_path(&self.id));
        let strings = |paths: &[&str]| paths.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        Ok(LinuxBuilder::default()
            .namespaces(namespaces)
            .masked_paths(strings(&defaults::MASKED_PATHS))
            .readonly_paths(strings(&defaults::READONLY_PATHS))
            .resources(self.oci_resources()?)
            .cgroups_path(cgroups_path)
            .build()?)
    }

    fn oci_resources(&self) -> Result<oci_spec::runtime::LinuxResources> {
        let r = &self.resources;
        let mut builder =
            LinuxResourcesBuilder::default().devices(vec![defaults::deny_all_devices()?]);
        if let Some(limit) = r.memory.filter(|m| *m > 0) {
            builder = builder.memory(LinuxMemoryBuilder::default().limit(limit).build()?);
        }
        if let Some(cpus) = r.cpus {
            let quota = (cpus * CPU_PERIOD as f64).round() as i64;
            let cpu = LinuxCpuBuilder::default()
                .quota(quota)
                .period(CPU_PERIOD)
                .build()?;
            builder = builder.cpu(cpu);
        }
        if let Some(limit) = r.pids_limit.filter(|p| *p > 0) {
            builder = builder.pids(LinuxPidsBuilder::default().limit(limit).build()?);
        }
        Ok(builder.build()?)
    }

    /// Docker's kernel mounts, then the `/etc` files, then the user's mounts, parents before
    /// children; a user mount on a default mount's target replaces it.
    fn oci_mounts(&self) -> Result<Vec<Mount>> {
        let taken = |dest: &Path| self.mounts.iter().any(|m| m.target() == dest);
        let mut mounts: Vec<Mount> = defaults::mounts()?
            .into_iter()
            .filter(|m| !taken(m.destination()))
            .collect();
        let etc = [
            ("/etc/hostname", &self.etc_files.hostname),
            ("/etc/hosts", &self.etc_files.hosts),
            ("/etc/resolv.conf", &self.etc_files.resolv_conf),
        ];
        for (target, source) in etc {
            if let Some(source) = source.as_ref().filter(|_| !taken(Path::new(target))) {
                mounts.push(bind(source, Path::new(target), self.readonly_rootfs)?);
            }
        }
        let mut user: Vec<&MountSpec> = self.mounts.iter().collect();
        user.sort_by_key(|m| m.target().components().count());
        for mount in user {
            mounts.push(match mount {
                MountSpec::Bind {
                    source,
                    target,
                    readonly,
                } => bind(source, target, *readonly)?,
                MountSpec::Tmpfs { target, options } => tmpfs(target, options)?,
            });
        }
        Ok(mounts)
    }
}

fn bind(source: &Path, target: &Path, readonly: bool) -> Result<Mount> {
    let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
    if readonly {
        options.push("ro".into());
    }
    Ok(MountBuilder::default()
        .destination(target)
        .typ("bind")
        .source(source)
        .options(options)
        .build()?)
}

fn tmpfs(target: &Path, extra: &[String]) -> Result<Mount> {
    let mut options: Vec<String> = ["nosuid", "nodev", "noexec"].map(String::from).to_vec();
    options.extend(extra.iter().cloned());
    Ok(MountBuilder::default()
        .destination(target)
        .typ("tmpfs")
        .source("tmpfs")
        .options(options)
        .build()?)
}

/// Writes `spec` as `bundle/config.json`, atomically: a runtime never reads half a file. Not
/// fsynced: a bundle is written anew at each start, just before the runtime reads it, so one
/// a power cut left unwritten is never read.
pub fn write_bundle(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let path = bundle.join("config.json");
    let tmp = bundle.join(".config.json.tmp");
    let io = |e| Error::io(format!("writing {}", path.display()), e);
    let json = serde_json::to_vec_pretty(spec).map_err(|e| io(e.into()))?;
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&json)?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })?;
    Ok(path)
}

mod validate;

pub use validate::host_cpus;

#[cfg(test)]
mod tests;
