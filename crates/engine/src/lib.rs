//! The operations users name — import, export, load, save, images, info, mount, umount, diff,
//! rm, rmi, inspect —
//! composed from the layer store and the image store. The CLI calls these today; the API
//! server will call the same ones, so behaviour and messages stay identical across both.
//!
//! Not here: argument parsing or output formatting (crate `strata`), storage internals.

mod check;
mod commit;
pub mod container;
pub mod daemon;
mod error;
mod images;
pub mod volumes;

use container::names;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use strata_image::archive::{LoadSource, Progress, SaveCompression, SaveFormat};
use strata_image::{Image, ImageStore, Reference};
use strata_meta::Db;
use strata_storage::layer_store::{self, LayerStore, RwLayer};
use strata_storage::{Change, DiffView};

pub use check::CheckReport;
pub use commit::{empty_tar_diff_id, CommitOptions};
pub use container::{Container, ContainerConfig, NetworkMode, State};
pub use error::{Error, Result};
pub use images::{HistoryRow, PruneReport};
pub use strata_storage::layer_store::Problem;
pub use volumes::{Volume, VolumePrune};

/// Where the store is and which driver to use.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub root: PathBuf,
    /// `None`: the driver the store was created with, else `overlay2`.
    pub driver: Option<String>,
    pub driver_options: Vec<String>,
}

pub const DEFAULT_DRIVER: &str = "overlay2";

pub struct Engine {
    /// The metadata database the stores share, for transactions that span them.
    db: Arc<Db>,
    layers: Arc<LayerStore>,
    images: ImageStore,
    /// How it was opened, for the monitors it spawns.
    options: EngineOptions,
    /// Creation locks of containers this process made and has not started yet: `prune` in
    /// another process leaves them alone (a `run` is create, then start).
    creations: std::sync::Mutex<Vec<(String, container::CreationLock)>>,
}

/// A mounted writable layer.
#[derive(Clone, Debug)]
pub struct Mounted {
    pub name: String,
    pub path: PathBuf,
    /// Whether this call created the layer.
    pub created: bool,
}

/// What `info` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Info {
    pub driver: String,
    pub driver_status: Vec<(String, String)>,
    pub root: PathBuf,
    pub images: usize,
    pub layers: usize,
    pub rw_layers: usize,
    pub rw_mounted: usize,
    pub kernel: String,
}

/// A writable layer as `layers` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct RwSummary {
    pub name: String,
    /// The image's first tag, or its short ID, or `<none>`.
    pub image: String,
    pub mount_count: u64,
    /// Unix seconds.
    pub created: i64,
}

/// `inspect` of a writable layer, with Docker's `GraphDriver` shape.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayerDetails {
    pub name: String,
    pub image: Option<String>,
    pub parent_layer: Option<String>,
    pub mount_count: u64,
    pub created: String,
    pub graph_driver: GraphDriver,
    pub mounts: Vec<strata_storage::Mount>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GraphDriver {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Data")]
    pub data: std::collections::BTreeMap<String, String>,
}

impl Engine {
    /// Opens the store at `options.root`, recovering from any crash first.
    pub fn open(options: &EngineOptions) -> Result<Engine> {
        let driver = match &options.driver {
            Some(d) => d.clone(),
            None => layer_store::recorded_driver(&options.root)?
                .unwrap_or_else(|| DEFAULT_DRIVER.into()),
        };
        let layers = LayerStore::open(&options.root, &driver, &options.driver_options)?;
        let engine = Engine::assemble(layers, options)?;
        // A config blob is written in its image's transaction and removed after an rmi's
        // commit: a kill between leaves a blob of no image. Looked for without the lock;
        // removed (after looking again) under it.
        if !engine.images.orphan_blobs()?.is_empty() {
            let n = engine.images.remove_orphan_blobs()?;
            tracing::info!("store recovery: {n} config blobs of no image removed");
        }
        engine.open_containers()?;
        Ok(engine)
    }

    /// The engine on an opened layer store: the other stores on its database, their tables
    /// created on first use.
    fn assemble(layers: LayerStore, options: &EngineOptions) -> Result<Engine> {
        let layers = Arc::new(layers);
        let images = ImageStore::open(&layers)?;
        Ok(Engine {
            db: layers.db().clone(),
            layers,
            images,
            options: options.clone(),
            creations: Default::default(),
        })
    }

    /// `import`: a rootfs tarball (plain, gzip, zstd) as a one-layer image, with
    /// Dockerfile-style `changes` (`CMD ["sh"]`, `ENV A=b`, ...) applied to its config.
    /// Changes are checked before the tarball is read.
    pub fn import(
        &self,
        tar: &mut dyn Read,
        reference: Option<&str>,
        message: Option<&str>,
        changes: &[String],
    ) -> Result<Image> {
        let reference = reference.map(str::parse::<Reference>).transpose()?;
        let changes = strata_image::parse_changes(changes)?;
        let images = &self.images;
        Ok(strata_image::import_with_changes(
            &self.layers,
            images,
            tar,
            reference.as_ref(),
            message,
            &changes,
        )?)
    }

    /// `export NAME`: the merged filesystem of writable layer `name` as an uncompressed tar
    /// (no whiteouts: the overlay presents the merged view), like `docker export`. The layer
    /// is mounted for the walk (one more reference if it already is) and released after.
    /// A container's name, ID or ID prefix stands for its writable layer.
    pub fn export(&self, name: &str, out: &mut dyn Write) -> Result<()> {
        let layer = self.container(name).map(|c| c.rw_layer);
        let name = layer.as_deref().unwrap_or(name);
        let merged = self.layers.mount_rw(name)?;
        // The merged view is a full tree: walked as a layer with no parent, every entry is
        // written, fd-relative and without following symlinks.
        let view = DiffView::FullCopy {
            layer: merged,
            parent: None,
        };
        let written = strata_storage::archive::export(&view, out);
        let released = self.layers.unmount_rw(name, false);
        if let (Err(_), Err(e)) = (&written, &released) {
            tracing::warn!("unmounting writable layer {name} after a failed export: {e}");
        }
        written?;
        Ok(released?)
    }

    /// `load`: every image in a docker-archive or OCI layout; the images loaded, each with
    /// the tags the archive gave it.
    pub fn load(
        &self,
        source: LoadSource<'_>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Image>> {
        let images = &self.images;
        Ok(strata_image::archive::load(
            &self.layers,
            images,
            source,
            progress,
        )?)
    }

    /// `save`: `names` (tags or IDs) as a docker-archive or OCI layout written to `out`
    /// (unused for [`SaveFormat::OciDir`], which names its directory).
    pub fn save(
        &self,
        names: &[String],
        format: &SaveFormat,
        compression: SaveCompression,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<()> {
        let images = &self.images;
        Ok(strata_image::archive::save(
            &self.layers,
            images,
            names,
            format,
            compression,
            out,
            progress,
        )?)
    }

    pub fn images(&self) -> Result<Vec<Image>> {
        Ok(self.images.images()?)
    }

    /// `rmi`: the lines Docker prints (`Untagged: ...`, `Deleted: ...`).
    /// Refused while a container uses the image, unless `force` (the containers keep their
    /// layers).
    pub fn remove_image(&self, name_or_id: &str, force: bool) -> Result<Vec<String>> {
        let images = &self.images;
        let image = images.resolve(name_or_id)?;
        if !force {
            let users = self.containers_of_image(&image.id)?;
            // Removing one of several tags only untags: no container loses its image.
            let untag_only = image.tags.len() > 1
                && name_or_id
                    .parse::<strata_image::Reference>()
                    .is_ok_and(|r| image.tags.contains(&r));
            if let (Some(first), false) = (users.first(), untag_only) {
                return Err(Error::Conflict(format!(
                    "unable to remove image {name_or_id} ({}): container {} uses it{}; remove the containers first (strata rm) or use rmi -f",
                    image.short_id(),
                    &first[..12],
                    match users.len() { 1 => String::new(), n => format!(" (and {} more)", n - 1) },
                )));
            }
        }
        let lines = images.remove(name_or_id, force)?;
        if images.resolve(&image.id).is_err() {
            // The image is gone: so is the init layer kept for its containers, unless one
            // still uses it.
            container::init_layer::remove_unused(&self.layers, image.top_layer.as_ref())?;
        }
        Ok(lines)
    }

    pub fn info(&self) -> Result<Info> {
        let driver = self.layers.driver();
        let rw = self.layers.rw_layers()?;
        Ok(Info {
            driver: driver.name().to_string(),
            driver_status: driver.status(),
            root: self.layers.root().to_path_buf(),
            images: self.images()?.len(),
            layers: self.layers.layers()?.len(),
            rw_layers: rw.len(),
            rw_mounted: rw.iter().filter(|l| l.mount_count > 0).count(),
            kernel: rustix::system::uname()
                .release()
                .to_string_lossy()
                .into_owned(),
        })
    }

    /// `mount TARGET`: remounts the writable layer named `target`, or creates one on the image
    /// `target` (named `name`, or a generated name) and mounts it.
    pub fn mount(&self, target: &str, name: Option<&str>) -> Result<Mounted> {
        if name.is_none() {
            if let Ok(layer) = self.layers.rw_layer(target) {
                let path = self.layers.mount_rw(&layer.name)?;
                return Ok(Mounted {
                    name: layer.name,
                    path,
                    created: false,
                });
            }
        }
        let image = self.images.resolve(target)?;
        let name = self.create_rw_for(&image, name)?;
        match self.layers.mount_rw(&name) {
            Ok(path) => Ok(Mounted {
                name,
                path,
                created: true,
            }),
            Err(e) => {
                // Nothing half made: a layer that could not be mounted is not kept.
                if let Err(r) = self.layers.remove_rw(&name, true) {
                    tracing::warn!("removing writable layer {name} after its mount failed: {r}");
                }
                Err(e.into())
            }
        }
    }

    /// Creates a writable layer on `image` named `name`, or under a generated name; a
    /// generated name another process took meanwhile is generated again.
    fn create_rw_for(&self, image: &Image, name: Option<&str>) -> Result<String> {
        let create = |n: &str| {
            self.layers
                .create_rw(n, image.top_layer.as_ref(), Some(&image.id))
        };
        if let Some(n) = name {
            if container::is_id(n) {
                return Err(Error::InvalidName {
                    name: n.into(),
                    why: "names of 64 hex digits are reserved for containers' writable layers",
                });
            }
            create(names::validate(n)?)?;
            return Ok(n.to_string());
        }
        for _ in 0..8 {
            let n = names::generate(image, |n| self.layers.rw_layer(n).is_ok());
            match create(&n) {
                Err(strata_storage::Error::Conflict(_)) => continue,
                other => return other.map(|_| n).map_err(Error::from),
            }
        }
        Err(Error::InvalidName {
            name: format!("{}-working-N", names::base(image)),
            why: "every generated name was taken by another process meanwhile; pass --name",
        })
    }

    pub fn unmount(&self, name: &str, force: bool) -> Result<()> {
        Ok(self.layers.unmount_rw(name, force)?)
    }

    /// `diff`: the writable layer's changes, as `docker diff` lists them.
    pub fn diff(&self, name: &str) -> Result<Vec<Change>> {
        Ok(self.layers.changes_rw(name)?)
    }

    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        Ok(self.layers.remove_rw(name, force)?)
    }

    pub fn rw_layers(&self) -> Result<Vec<RwSummary>> {
        let images = &self.images;
        let layers = self.layers.rw_layers()?;
        Ok(layers.into_iter().map(|l| summarize(images, l)).collect())
    }

    /// `inspect NAME`: the layer's record and where its directories are.
    pub fn inspect(&self, name: &str) -> Result<LayerDetails> {
        let layer = self.layers.rw_layer(name)?;
        let driver = self.layers.driver();
        let parent_sid = match &layer.parent {
            Some(p) => Some(self.layers.layer(p)?.storage_id),
            None => None,
        };
        let mounts = driver.mounts(&layer.storage_id)?;
        let mut data = std::collections::BTreeMap::new();
        match driver.diff_view(&layer.storage_id, parent_sid.as_deref())? {
            DiffView::Overlay { upper, lowers, .. } => {
                let lowers: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
                if !lowers.is_empty() {
                    data.insert("LowerDir".into(), lowers.join(":"));
                }
                data.insert("UpperDir".into(), upper.display().to_string());
                let merged = driver.dirs(&layer.storage_id).mount_point;
                data.insert("MergedDir".into(), merged.display().to_string());
                if let Some(work) = mount_option(&mounts, "workdir=") {
                    data.insert("WorkDir".into(), work.to_string());
                }
            }
            DiffView::FullCopy { .. } => {
                let dir = driver.dirs(&layer.storage_id).mount_point;
                data.insert("Dir".into(), dir.display().to_string());
            }
        }
        Ok(LayerDetails {
            name: layer.name.clone(),
            image: layer.image.clone(),
            parent_layer: layer.parent.as_ref().map(|p| p.to_string()),
            mount_count: layer.mount_count,
            created: rfc3339(layer.created),
            graph_driver: GraphDriver {
                name: driver.name().to_string(),
                data,
            },
            mounts,
        })
    }
}

/// The value of the first `key=value` option (`key` given with its `=`) of `mounts`.
fn mount_option<'a>(mounts: &'a [strata_storage::Mount], key: &str) -> Option<&'a str> {
    mounts
        .iter()
        .flat_map(|m| &m.options)
        .find_map(|o| o.strip_prefix(key))
}

fn summarize(images: &ImageStore, layer: RwLayer) -> RwSummary {
    let image = match layer.image.as_deref().map(|id| images.image(id)) {
        Some(Ok(img)) => match img.tags.first() {
            Some(tag) => tag.to_string(),
            None => img.short_id().to_string(),
        },
        Some(Err(_)) => "<removed>".into(),
        None => "<none>".into(),
    };
    RwSummary {
        name: layer.name,
        image,
        mount_count: layer.mount_count,
        created: unix(layer.created),
    }
}

fn unix(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn rfc3339(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
