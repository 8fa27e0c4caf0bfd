//! `history IMAGE`: the config's history entries, newest first, with their layers' sizes.

use serde::Serialize;
use serde_json::Value;
use strata_image::ImageConfig;
use strata_storage::Digest;

use super::Images;
use crate::error::Result;

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

impl Images<'_> {
    /// `history IMAGE`: one row per history entry, newest first, sizes from the layers.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryRow>> {
        let images = &self.stores.images;
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
            sizes.push(self.stores.layers.layer(&id).map(|l| l.size).unwrap_or(0));
            chain = Some(id);
        }
        Ok(sizes)
    }
}

fn json_of(config: &ImageConfig) -> Value {
    serde_json::from_slice(&config.bytes).unwrap_or(Value::Null)
}
