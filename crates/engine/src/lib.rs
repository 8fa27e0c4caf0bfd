//! The operations users name — import, images, info, mount, umount, diff, rm, rmi, inspect —
//! composed from the layer store and the image store. The CLI calls these today; the API
//! server will call the same ones, so behaviour and messages stay identical across both.
//!
//! Not here: argument parsing or output formatting (crate `strata`), storage internals.

mod error;
mod names;

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use strata_image::{Image, ImageStore, Reference};
use strata_storage::layer_store::{self, LayerStore, RwLayer};
use strata_storage::{Change, DiffView};

pub use error::{Error, Result};

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
    layers: LayerStore,
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
        ImageStore::open(&layers)?; // creates the image tables on first use
        Ok(Engine { layers })
    }

    fn images_store(&self) -> ImageStore<'_> {
        ImageStore::open(&self.layers).expect("image tables were created at open")
    }

    /// `import`: a rootfs tarball (plain, gzip, zstd) as a one-layer image.
    pub fn import(
        &self,
        tar: &mut dyn Read,
        reference: Option<&str>,
        message: Option<&str>,
    ) -> Result<Image> {
        let reference = reference.map(str::parse::<Reference>).transpose()?;
        let images = self.images_store();
        Ok(strata_image::import(
            &self.layers,
            &images,
            tar,
            reference.as_ref(),
            message,
        )?)
    }

    pub fn images(&self) -> Result<Vec<Image>> {
        Ok(self.images_store().images()?)
    }

    /// `rmi`: the lines Docker prints (`Untagged: ...`, `Deleted: ...`).
    pub fn remove_image(&self, name_or_id: &str, force: bool) -> Result<Vec<String>> {
        Ok(self.images_store().remove(name_or_id, force)?)
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
        let image = self.images_store().resolve(target)?;
        let name = match name {
            Some(n) => names::validate(n)?.to_string(),
            None => names::generate(&image, |n| self.layers.rw_layer(n).is_ok()),
        };
        self.layers
            .create_rw(&name, image.top_layer.as_ref(), Some(&image.id))?;
        match self.layers.mount_rw(&name) {
            Ok(path) => Ok(Mounted {
                name,
                path,
                created: true,
            }),
            Err(e) => {
                // Nothing half made: a layer that could not be mounted is not kept.
                let _ = self.layers.remove_rw(&name, true);
                Err(e.into())
            }
        }
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
        let images = self.images_store();
        let layers = self.layers.rw_layers()?;
        Ok(layers.into_iter().map(|l| summarize(&images, l)).collect())
    }

    /// `inspect NAME`: the layer's record and where its directories are.
    pub fn inspect(&self, name: &str) -> Result<LayerDetails> {
        let layer = self.layers.rw_layer(name)?;
        let driver = self.layers.driver();
        let parent_sid = match &layer.parent {
            Some(p) => Some(self.layers.layer(p)?.storage_id),
            None => None,
        };
        let mut data = std::collections::BTreeMap::new();
        match driver.diff_view(&layer.storage_id, parent_sid.as_deref())? {
            DiffView::Overlay { upper, lowers } => {
                let lowers: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
                if !lowers.is_empty() {
                    data.insert("LowerDir".into(), lowers.join(":"));
                }
                data.insert("UpperDir".into(), upper.display().to_string());
                let layer_dir = upper.parent().unwrap_or(Path::new("/"));
                data.insert(
                    "MergedDir".into(),
                    layer_dir.join("merged").display().to_string(),
                );
                data.insert(
                    "WorkDir".into(),
                    layer_dir.join("work").display().to_string(),
                );
            }
            DiffView::Naive { layer: dir, .. } => {
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
            mounts: driver.mounts(&layer.storage_id)?,
        })
    }
}

fn summarize(images: &ImageStore<'_>, layer: RwLayer) -> RwSummary {
    let image = match layer.image.as_deref().map(|id| images.image(id)) {
        Some(Ok(img)) => match img.tags.first() {
            Some(tag) => tag.to_string(),
            None => img
                .id
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect(),
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
