//! `inspect` of a container: its record, its config and what it has on disk, for the front
//! ends to render (Docker's shape is `strata_api::render::container`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{parse_volume, Container, ContainerConfig, Containers};
use crate::error::Result;
use crate::layers::Layers;

/// What `inspect CONTAINER` reports.
#[derive(Clone, Debug)]
pub struct ContainerDetails {
    pub container: Container,
    pub config: ContainerConfig,
    /// Running, with its processes frozen (`pause`).
    pub paused: bool,
    /// The storage driver's name.
    pub driver: String,
    /// The writable layer's directories by Docker's `GraphDriver.Data` keys; `None` when
    /// the layer is gone (a dead container).
    pub layer_dirs: Option<BTreeMap<String, String>>,
    pub paths: ContainerPaths,
    /// Its volumes and binds, in `-v` order (tmpfs mounts are only in the config).
    pub mounts: Vec<MountPoint>,
}

/// Files of the container's directory.
#[derive(Clone, Debug)]
pub struct ContainerPaths {
    /// `resolv.conf`, `hostname`, `hosts`: written at the first start, `None` before.
    pub resolv_conf: Option<PathBuf>,
    pub hostname: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
    pub log: PathBuf,
}

/// A volume or bind of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountPoint {
    /// The volume's name; `None` for a bind.
    pub volume: Option<String>,
    /// The host path: the bind's source, or the volume's `_data`.
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

impl Containers<'_> {
    /// `inspect CONTAINER`.
    pub fn inspect(&self, name_or_id: &str) -> Result<ContainerDetails> {
        let c = self.get(name_or_id)?;
        let config = self.config(&c)?;
        let dir = self.dir(&c.id);
        let written_at_start = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
        let layer_dirs = Layers::new(self.stores)
            .inspect(&c.rw_layer)
            .ok()
            .map(|details| {
                let mut data = details.graph_driver.data;
                if let Some(upper) = data.get("UpperDir").cloned() {
                    // Docker shows the work dir whether or not the layer is mounted.
                    let work = std::path::Path::new(&upper).with_file_name("work");
                    if work.is_dir() {
                        data.entry("WorkDir".into())
                            .or_insert(work.display().to_string());
                    }
                }
                data
            });
        Ok(ContainerDetails {
            paused: self.is_paused(&c),
            driver: self.stores.layers.driver().name().to_string(),
            layer_dirs,
            paths: ContainerPaths {
                resolv_conf: written_at_start("resolv.conf"),
                hostname: written_at_start("hostname"),
                hosts: written_at_start("hosts"),
                log: dir.join(format!("{}-json.log", c.id)),
            },
            mounts: self.mounts_of(&config),
            container: c,
            config,
        })
    }

    fn mounts_of(&self, config: &ContainerConfig) -> Vec<MountPoint> {
        let volumes = self.volumes().dir();
        config
            .volumes
            .iter()
            .filter_map(|spec| parse_volume(spec).ok())
            .map(|v| {
                let bind = v.source.starts_with('/');
                MountPoint {
                    source: match bind {
                        true => PathBuf::from(&v.source),
                        false => volumes.join(&v.source).join("_data"),
                    },
                    volume: (!bind).then_some(v.source),
                    destination: v.destination,
                    read_only: v.read_only,
                }
            })
            .collect()
    }
}
