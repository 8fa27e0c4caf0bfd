//! `docker save`'s `manifest.json`: `[{Config, RepoTags, Layers}]`, in both the classic form
//! (`<id>/layer.tar`, `<hex>.json`) and Docker 25+'s (paths under `blobs/sha256/`, where the
//! name is the digest and so is checked).

use serde::Deserialize;
use strata_storage::Digest;

use super::entry::{parse_tags, Entry, LayerBlob};
use super::source::Members;
use crate::error::{Error, Result};
use crate::reference::Reference;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Item {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// The images `manifest.json` lists.
pub(crate) fn entries(members: &Members) -> Result<Vec<Entry>> {
    let bytes = members.read_small("manifest.json")?;
    let items: Vec<Item> = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Archive(format!(
            "manifest.json in the archive is not a docker-archive manifest: {e}"
        ))
    })?;
    items.into_iter().map(entry).collect()
}

/// Tags by config digest, for an archive that also has an OCI index (Docker 25+).
pub(crate) fn tags_by_config(members: &Members) -> Result<Vec<(Digest, Vec<Reference>)>> {
    Ok(entries(members)?
        .into_iter()
        .filter_map(|e| Some((e.config_digest?, e.tags)))
        .collect())
}

fn entry(item: Item) -> Result<Entry> {
    let tags = parse_tags(&item.config, item.repo_tags.as_deref().unwrap_or_default())?;
    let layers = item
        .layers
        .iter()
        .map(|path| LayerBlob {
            path: path.clone(),
            digest: digest_in_name(path),
            size: None,
            media_type: None,
        })
        .collect();
    Ok(Entry {
        name: tags
            .first()
            .map_or_else(|| item.config.clone(), |t| t.to_string()),
        config_digest: digest_in_name(&item.config),
        config: item.config,
        config_size: None,
        layers,
        tags,
    })
}

/// `blobs/sha256/<hex>` and `<hex>.json` name their digest; `<id>/layer.tar` does not.
fn digest_in_name(path: &str) -> Option<Digest> {
    let hex = path
        .strip_prefix("blobs/sha256/")
        .or_else(|| path.strip_suffix(".json"))?;
    hex.parse().ok()
}
