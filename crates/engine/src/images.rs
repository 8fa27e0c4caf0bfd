//! The image verbs besides load/save/import: `history`, `tag`, `image inspect`, and `prune`
//! of stopped containers, dangling images and unused layers.

use serde::Serialize;
use serde_json::{json, Value};
use strata_image::{Image, ImageConfig, Reference};
use strata_storage::{DiffView, Digest};

use crate::container::State;
use crate::error::{Error, Result};
use crate::Engine;

/// One row of `history`, newest first.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryRow {
    /// The image ID for the top entry, `<missing>` below it (as Docker shows images it did
    /// not build itself).
    pub id: String,
    pub created: Option<String>,
    pub created_by: String,
    /// Bytes of the entry's layer tar; 0 for an `empty_layer` entry.
    pub size: u64,
    pub comment: String,
}

/// What `prune` removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub containers: Vec<String>,
    /// Lines as `rmi` prints them.
    pub images: Vec<String>,
    /// ChainIDs of the layers removed.
    pub layers: Vec<String>,
    /// Disk of the containers' writable layers plus the tar size of the layers removed.
    pub reclaimed: u64,
}

impl Engine {
    /// `history IMAGE`: one row per history entry, newest first, sizes from the layers.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryRow>> {
        let images = &self.images;
        let image = images.resolve(name)?;
        let config = images.config(&image.id)?;
        let sizes = self.layer_sizes(&config)?;
        let history: Vec<Value> = json_of(&config)["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut sizes = sizes.into_iter();
        let mut rows: Vec<HistoryRow> = history
            .iter()
            .map(|h| {
                let empty = h["empty_layer"].as_bool().unwrap_or(false);
                HistoryRow {
                    id: "<missing>".into(),
                    created: h["created"].as_str().map(str::to_string),
                    created_by: h["created_by"].as_str().unwrap_or_default().to_string(),
                    size: if empty { 0 } else { sizes.next().unwrap_or(0) },
                    comment: h["comment"].as_str().unwrap_or_default().to_string(),
                }
            })
            .collect();
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = image.id.clone();
        }
        Ok(rows)
    }

    /// The tar size of each layer of `config`, bottom first.
    fn layer_sizes(&self, config: &ImageConfig) -> Result<Vec<u64>> {
        let mut chain: Option<Digest> = None;
        let mut sizes = Vec::new();
        for diff in config.diff_ids()? {
            let id = Digest::chain(chain.as_ref(), &diff);
            sizes.push(self.layers.layer(&id).map(|l| l.size).unwrap_or(0));
            chain = Some(id);
        }
        Ok(sizes)
    }

    /// `tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let reference: Reference = target.parse()?;
        Ok(self.images.tag(source, &reference)?)
    }

    /// `image inspect NAME`: Docker's JSON shape.
    pub fn inspect_image(&self, name: &str) -> Result<Value> {
        let images = &self.images;
        let image = images.resolve(name)?;
        let config = images.config(&image.id)?;
        let c = json_of(&config);
        let last_comment = c["history"]
            .as_array()
            .and_then(|h| h.last())
            .map(|h| h["comment"].clone());
        let comment = match &c["comment"] {
            Value::String(s) => json!(s),
            _ => last_comment.unwrap_or(json!("")),
        };
        Ok(json!({
            "Id": image.id,
            "RepoTags": image.tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            "RepoDigests": [],
            "Parent": "",
            "Comment": comment,
            "Created": c["created"],
            "Container": c["container"].as_str().unwrap_or_default(),
            "Author": c["author"].as_str().unwrap_or_default(),
            "Config": c["config"],
            "Architecture": c["architecture"],
            "Os": c["os"],
            "Size": image.size,
            "GraphDriver": self.image_graph_driver(&image)?,
            "RootFS": {
                "Type": c["rootfs"]["type"].as_str().unwrap_or("layers"),
                "Layers": c["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default(),
            },
            "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
        }))
    }

    /// Where the image's layers are, as Docker's `GraphDriver` shows them.
    fn image_graph_driver(&self, image: &Image) -> Result<Value> {
        let driver = self.layers.driver();
        let Some(top) = &image.top_layer else {
            return Ok(json!({"Name": driver.name(), "Data": null}));
        };
        let layer = self.layers.layer(top)?;
        let parent = match &layer.parent {
            Some(p) => Some(self.layers.layer(p)?.storage_id),
            None => None,
        };
        let data = match driver.diff_view(&layer.storage_id, parent.as_deref())? {
            DiffView::Overlay { upper, lowers, .. } => {
                let mut data = serde_json::Map::new();
                if !lowers.is_empty() {
                    let lowers: Vec<String> =
                        lowers.iter().map(|p| p.display().to_string()).collect();
                    data.insert("LowerDir".into(), json!(lowers.join(":")));
                }
                let dir = upper.parent().unwrap_or(&upper).to_path_buf();
                data.insert("MergedDir".into(), json!(dir.join("merged")));
                data.insert("UpperDir".into(), json!(upper));
                data.insert("WorkDir".into(), json!(dir.join("work")));
                Value::Object(data)
            }
            DiffView::FullCopy { layer, .. } => json!({ "Dir": layer }),
        };
        Ok(json!({"Name": driver.name(), "Data": data}))
    }

    /// `prune`: stopped containers (created, exited, dead), then images with no tag that no
    /// container uses, then layers nothing references (left by removed images or by imports
    /// killed before their image was recorded).
    pub fn prune(&self) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        for c in self.containers(true)? {
            if !matches!(c.state, State::Created | State::Exited | State::Dead) {
                continue;
            }
            // Being created, or created and about to be started (`run`), by another process.
            let dir = self.layers.root().join("containers");
            if crate::check::creation_in_progress(&dir, &c.id) {
                continue;
            }
            let usage = self.rw_usage(&c.rw_layer);
            match self.remove_container(&c.id, false, false) {
                Ok(()) => {}
                // Started or removed by another process since the listing: not ours to prune.
                Err(Error::Conflict(_) | Error::NotFound(_) | Error::NoSuchContainer(_)) => {
                    continue
                }
                Err(e) => return Err(e),
            }
            report.reclaimed += usage;
            report.containers.push(c.id);
        }
        let images = &self.images;
        for image in images.images()? {
            if !image.tags.is_empty() || !self.containers_of_image(&image.id)?.is_empty() {
                continue;
            }
            match images.remove(&image.id, false) {
                Ok(lines) => report.images.extend(lines),
                // Still used by a writable layer (`strata mount IMAGE`): not dangling.
                Err(strata_image::Error::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Removing a layer releases its parent, which may then be unused in turn.
        loop {
            let unused: Vec<_> = self
                .layers
                .layers()?
                .into_iter()
                .filter(|l| l.refs == 0)
                .collect();
            if unused.is_empty() {
                break;
            }
            let mut removed_any = false;
            for layer in unused {
                if self.layers.remove_if_unused(&layer.chain_id)? {
                    report.reclaimed += layer.size;
                    report.layers.push(layer.chain_id.to_string());
                    removed_any = true;
                }
            }
            if !removed_any {
                break;
            }
        }
        Ok(report)
    }

    /// Disk used by writable layer `name`'s own dir (0 if it cannot be measured).
    fn rw_usage(&self, name: &str) -> u64 {
        let Ok(rw) = self.layers.rw_layer(name) else {
            return 0;
        };
        self.layers
            .driver()
            .usage(&rw.storage_id)
            .map(|u| u.bytes)
            .unwrap_or(0)
    }
}

fn json_of(config: &ImageConfig) -> Value {
    serde_json::from_slice(&config.bytes).unwrap_or(Value::Null)
}
