//! The writable layers `strata mount` makes, outside any container: `mount`, `umount`,
//! `diff`, `rm`, `layers` and `inspect` of a layer. A container's writable layer is one of
//! them, named by the container's ID; these verbs accept it too.

use std::path::PathBuf;

use serde::Serialize;
use strata_image::{Image, ImageStore};
use strata_storage::layer_store::RwLayer;
use strata_storage::{Change, DiffView};

use crate::error::{Error, Result};
use crate::names;
use crate::Stores;

/// The writable-layer verbs, a view over the engine's stores.
#[derive(Clone, Copy)]
pub struct Layers<'e> {
    stores: &'e Stores,
}

/// A mounted writable layer.
#[derive(Clone, Debug)]
pub struct Mounted {
    pub name: String,
    pub path: PathBuf,
    /// Whether this call created the layer.
    pub created: bool,
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

impl<'e> Layers<'e> {
    pub(crate) fn new(stores: &'e Stores) -> Self {
        Layers { stores }
    }

    /// `mount TARGET`: remounts the writable layer named `target`, or creates one on the image
    /// `target` (named `name`, or a generated name) and mounts it.
    pub fn mount(&self, target: &str, name: Option<&str>) -> Result<Mounted> {
        if name.is_none() {
            if let Ok(layer) = self.stores.layers.rw_layer(target) {
                let path = self.stores.layers.mount_rw(&layer.name)?;
                return Ok(Mounted {
                    name: layer.name,
                    path,
                    created: false,
                });
            }
        }
        let image = self.stores.images.resolve(target)?;
        let name = self.create_rw_for(&image, name)?;
        match self.stores.layers.mount_rw(&name) {
            Ok(path) => Ok(Mounted {
                name,
                path,
                created: true,
            }),
            Err(e) => {
                // Nothing half made: a layer that could not be mounted is not kept.
                if let Err(r) = self.stores.layers.remove_rw(&name, true) {
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
            self.stores
                .layers
                .create_rw(n, image.top_layer.as_ref(), Some(&image.id))
        };
        if let Some(n) = name {
            if names::is_id(n) {
                return Err(Error::InvalidName {
                    name: n.into(),
                    why: "names of 64 hex digits are reserved for containers' writable layers",
                });
            }
            create(names::validate(n)?)?;
            return Ok(n.to_string());
        }
        for _ in 0..8 {
            let n = names::generate(image, |n| self.stores.layers.rw_layer(n).is_ok());
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
        Ok(self.stores.layers.unmount_rw(name, force)?)
    }

    /// `diff`: the writable layer's changes, as `docker diff` lists them.
    pub fn diff(&self, name: &str) -> Result<Vec<Change>> {
        Ok(self.stores.layers.changes_rw(name)?)
    }

    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        Ok(self.stores.layers.remove_rw(name, force)?)
    }

    pub fn list(&self) -> Result<Vec<RwSummary>> {
        let images = &self.stores.images;
        let layers = self.stores.layers.rw_layers()?;
        Ok(layers.into_iter().map(|l| summarize(images, l)).collect())
    }

    /// `inspect NAME`: the layer's record and where its directories are.
    pub fn inspect(&self, name: &str) -> Result<LayerDetails> {
        let layer = self.stores.layers.rw_layer(name)?;
        let driver = self.stores.layers.driver();
        let parent_sid = match &layer.parent {
            Some(p) => Some(self.stores.layers.layer(p)?.storage_id),
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
