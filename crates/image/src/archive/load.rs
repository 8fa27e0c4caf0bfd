//! `load`: reads the archive's image list, checks everything that can be checked without
//! applying a layer (configs and their digests, diffID counts, blobs present, media types),
//! then applies the missing layers of every image (each checked against its blob digest and
//! diffID before it is published), and only then creates the images and tags. On any failure
//! the layers this load created are removed again, so a bad archive leaves nothing.

use std::io::{self, Read};

use strata_storage::layer_store::{LayerExpectation, LayerStore};
use strata_storage::Digest;

use super::entry::{check_blob, Entry, LayerBlob};
use super::source::Members;
use super::{docker_archive, oci_layout, LoadSource, Progress};
use crate::config::ImageConfig;
use crate::error::{Error, Result};
use crate::store::{Image, ImageStore};

struct Planned {
    entry: Entry,
    config: ImageConfig,
    diff_ids: Vec<Digest>,
}

/// Loads every image in `source`. Every blob is checked against its digest and every layer
/// against the config's diffIDs before anything is published; layers already in the store
/// are not applied again.
pub fn load(
    layers: &LayerStore,
    images: &ImageStore,
    source: LoadSource<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Image>> {
    let members = Members::open(layers, source)?;
    let entries = read_entries(&members)?;
    if entries.is_empty() {
        return Err(Error::Archive("the archive holds no image".into()));
    }
    let planned = entries
        .into_iter()
        .map(|e| plan(&members, e))
        .collect::<Result<Vec<_>>>()?;
    let mut created = Vec::new();
    let result = apply_all(layers, &members, &planned, &mut created, progress)
        .and_then(|tops| create_images(images, &planned, &tops, progress));
    if result.is_err() {
        remove_unused(layers, &created);
    }
    // The images reference their layers now (or the load failed): the holds apply_all took
    // on new and reused layers end.
    for p in &planned {
        let mut chain: Option<Digest> = None;
        for diff in &p.diff_ids {
            let id = Digest::chain(chain.as_ref(), diff);
            layers.release_hold(&id);
            chain = Some(id);
        }
    }
    result
}

/// The images listed: an OCI index when there is one (tags also taken from a Docker 25
/// `manifest.json` beside it), else a classic `manifest.json`.
fn read_entries(members: &Members) -> Result<Vec<Entry>> {
    let has_manifest = members.exists("manifest.json");
    if members.exists("oci-layout") && members.exists("index.json") {
        let mut entries = oci_layout::entries(members)?;
        if has_manifest {
            for (config, tags) in docker_archive::tags_by_config(members)? {
                for e in entries
                    .iter_mut()
                    .filter(|e| e.config_digest.as_ref() == Some(&config))
                {
                    for t in &tags {
                        if !e.tags.contains(t) {
                            e.tags.push(t.clone());
                        }
                    }
                    if let Some(first) = e.tags.first() {
                        e.name = first.to_string();
                    }
                }
            }
        }
        return Ok(entries);
    }
    if has_manifest {
        return docker_archive::entries(members);
    }
    Err(Error::Archive(
        "the archive is neither a docker-archive (no manifest.json) nor an OCI layout \
         (no oci-layout and index.json)"
            .into(),
    ))
}

/// Reads and checks the config, and checks that every layer blob is there, before anything
/// is applied.
fn plan(members: &Members, entry: Entry) -> Result<Planned> {
    let name = &entry.name;
    let bytes = members
        .read_small(&entry.config)
        .map_err(|e| Error::Archive(format!("image {name}: config blob {}: {e}", entry.config)))?;
    if let Some(d) = &entry.config_digest {
        let size = entry.config_size.unwrap_or(bytes.len() as u64);
        check_blob(&format!("image {name}: config"), d, size, &bytes)?;
    }
    let config =
        ImageConfig::from_bytes(bytes).map_err(|e| Error::Archive(format!("image {name}: {e}")))?;
    let diff_ids = config
        .diff_ids()
        .map_err(|e| Error::Archive(format!("image {name}: {e}")))?;
    if diff_ids.len() != entry.layers.len() {
        return Err(Error::Archive(format!(
            "image {name}: its config {} lists {} diffIDs but the manifest has {} layers",
            config.digest,
            diff_ids.len(),
            entry.layers.len()
        )));
    }
    for blob in &entry.layers {
        let (_, size) = members
            .open_member(&blob.path)
            .map_err(|e| Error::Archive(format!("image {name}: layer blob {}: {e}", blob.path)))?;
        if blob.size.is_some_and(|s| s != size) {
            return Err(Error::Archive(format!(
                "image {name}: layer blob {} is {size} bytes, its descriptor says {}",
                blob.path,
                blob.size.unwrap_or_default()
            )));
        }
    }
    Ok(Planned {
        entry,
        config,
        diff_ids,
    })
}

/// Applies the layers no image in the store has yet; returns each image's top chainID.
fn apply_all(
    layers: &LayerStore,
    members: &Members,
    planned: &[Planned],
    created: &mut Vec<Digest>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Option<Digest>>> {
    let mut tops = Vec::new();
    for p in planned {
        let mut parent: Option<Digest> = None;
        let count = p.entry.layers.len();
        for (i, (blob, diff_id)) in p.entry.layers.iter().zip(&p.diff_ids).enumerate() {
            let chain = Digest::chain(parent.as_ref(), diff_id);
            let shown = blob
                .digest
                .as_ref()
                .map_or(blob.path.clone(), |d| d.to_string());
            progress(Progress::Layer {
                index: i + 1,
                count,
                digest: shown.clone(),
            });
            // Held: it may have no reference until our image is recorded at the end.
            if layers.hold(&chain).is_ok() {
                progress(Progress::LayerExists { digest: shown });
            } else {
                apply_one(layers, members, p, blob, diff_id, parent.as_ref(), progress)?;
                created.push(chain.clone());
            }
            parent = Some(chain);
        }
        tops.push(parent);
    }
    Ok(tops)
}

fn apply_one(
    layers: &LayerStore,
    members: &Members,
    p: &Planned,
    blob: &LayerBlob,
    diff_id: &Digest,
    parent: Option<&Digest>,
    progress: &mut dyn FnMut(Progress),
) -> Result<()> {
    let wrap = |e: &dyn std::fmt::Display| {
        let kind = blob
            .media_type
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        Error::Archive(format!(
            "image {}: layer blob {}{kind}: {e}",
            p.entry.name, blob.path
        ))
    };
    let (reader, _) = members.open_member(&blob.path).map_err(|e| wrap(&e))?;
    let mut reader = Counting {
        inner: reader,
        pending: 0,
        progress,
    };
    let expect = LayerExpectation {
        blob_digest: blob.digest.clone(),
        diff_id: Some(diff_id.clone()),
    };
    let layer = layers
        .create_layer_checked(parent, &mut reader, &expect)
        .map_err(|e| wrap(&e))?;
    reader.flush_progress();
    if layer.diff_id != *diff_id {
        // create_layer_checked checks this; kept so that a store without the check still
        // cannot publish an image over the wrong layer.
        let _ = layers.remove_if_unused(&layer.chain_id);
        return Err(wrap(&format!(
            "its diffID is {}, the config says {diff_id}",
            layer.diff_id
        )));
    }
    Ok(())
}

fn create_images(
    images: &ImageStore,
    planned: &[Planned],
    tops: &[Option<Digest>],
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Image>> {
    let mut out = Vec::new();
    for (p, top) in planned.iter().zip(tops) {
        let image = images.create_image(&p.config, top.as_ref(), &p.entry.tags)?;
        progress(Progress::Image {
            id: image.id.clone(),
            tags: p.entry.tags.iter().map(|t| t.to_string()).collect(),
        });
        out.push(image);
    }
    Ok(out)
}

/// Removes the layers this load created that no image took, top first (a child holds a
/// reference on its parent).
fn remove_unused(layers: &LayerStore, created: &[Digest]) {
    for chain in created.iter().rev() {
        match layers.remove_if_unused(chain) {
            Ok(_) | Err(strata_storage::Error::NotFound(_)) => {}
            Err(e) => tracing::warn!("removing layer {chain} after a failed load: {e}"),
        }
    }
}

/// Reports bytes read, every 4 MiB.
struct Counting<'a, 'p> {
    inner: Box<dyn Read + Send + 'a>,
    pending: u64,
    progress: &'p mut dyn FnMut(Progress),
}

impl Counting<'_, '_> {
    fn flush_progress(&mut self) {
        if self.pending > 0 {
            (self.progress)(Progress::Bytes(self.pending));
            self.pending = 0;
        }
    }
}

impl Read for Counting<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        if self.pending >= 4 << 20 {
            self.flush_progress();
        }
        Ok(n)
    }
}
