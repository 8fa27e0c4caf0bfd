//! OCI image layouts: `oci-layout`, `index.json` (nested indexes followed, for this machine's
//! platform), manifests and configs read from `blobs/sha256/` and checked against their
//! descriptors. Also the names of the media types load accepts and save writes.

use std::collections::HashMap;

use serde::Deserialize;
use strata_storage::Digest;

use super::entry::{check_blob, parse_tags, Entry, LayerBlob};
use super::source::{Members, MAX_JSON};
use crate::error::{Error, Result};
use crate::reference::Reference;

pub(crate) const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// `io.containerd.image.name`: the full reference (Docker 25+, containerd).
pub(crate) const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// `org.opencontainers.image.ref.name`: a tag, or a whole reference (skopeo).
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Layer media types load accepts (the driver detects the compression itself).
const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

#[derive(Deserialize, Clone)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize, Clone)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// The images of the layout's `index.json`, one per manifest (tags merged).
pub(crate) fn entries(members: &Members) -> Result<Vec<Entry>> {
    let bytes = members.read_small("index.json")?;
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Archive(format!(
            "index.json in the archive is not an OCI index: {e}"
        ))
    })?;
    let mut out: Vec<(String, Entry)> = Vec::new();
    walk(members, &index.manifests, &[], 0, &mut out)?;
    Ok(out.into_iter().map(|(_, e)| e).collect())
}

fn walk(
    members: &Members,
    manifests: &[Descriptor],
    outer_tags: &[Reference],
    depth: usize,
    out: &mut Vec<(String, Entry)>,
) -> Result<()> {
    if depth > 4 {
        return Err(Error::Archive("OCI indexes nested more than 4 deep".into()));
    }
    for desc in manifests {
        if is_attestation(desc) || (depth > 0 && !for_this_platform(desc)) {
            continue;
        }
        let mut tags = outer_tags.to_vec();
        tags.extend(tags_of(desc)?);
        match desc.media_type.as_deref() {
            Some(INDEX | DOCKER_LIST) => {
                let nested: Index = parse_blob(members, desc, "index")?;
                walk(members, &nested.manifests, &tags, depth + 1, out)?;
            }
            Some(MANIFEST | DOCKER_MANIFEST) | None => {
                if let Some((_, e)) = out.iter_mut().find(|(d, _)| *d == desc.digest) {
                    for t in tags {
                        if !e.tags.contains(&t) {
                            e.tags.push(t);
                        }
                    }
                    continue;
                }
                out.push((desc.digest.clone(), manifest_entry(members, desc, tags)?));
            }
            Some(other) => {
                return Err(Error::Archive(format!(
                    "blob {} in index.json has unknown media type {other}",
                    desc.digest
                )))
            }
        }
    }
    Ok(())
}

fn manifest_entry(members: &Members, desc: &Descriptor, tags: Vec<Reference>) -> Result<Entry> {
    let manifest: Manifest = parse_blob(members, desc, "manifest")?;
    let name = tags
        .first()
        .map_or_else(|| format!("(manifest {})", desc.digest), |t| t.to_string());
    match manifest.config.media_type.as_deref() {
        Some(CONFIG | DOCKER_CONFIG) | None => {}
        Some(other) => {
            return Err(Error::Archive(format!(
                "image {name}: config blob {} has media type {other}, not an image config",
                manifest.config.digest
            )))
        }
    }
    let layers = manifest
        .layers
        .iter()
        .map(|l| layer_blob(&name, l))
        .collect::<Result<_>>()?;
    let config_digest = digest(&name, &manifest.config.digest)?;
    Ok(Entry {
        name,
        config: blob_path(&config_digest),
        config_digest: Some(config_digest),
        config_size: Some(manifest.config.size),
        layers,
        tags,
    })
}

fn layer_blob(image: &str, desc: &Descriptor) -> Result<LayerBlob> {
    let media_type = desc.media_type.clone().unwrap_or_default();
    if !LAYER_TYPES.contains(&media_type.as_str()) {
        return Err(Error::Archive(format!(
            "image {image}: layer blob {} has unknown media type {media_type:?}; strata loads \
             OCI and Docker tar, tar+gzip and tar+zstd layers",
            desc.digest
        )));
    }
    let d = digest(image, &desc.digest)?;
    Ok(LayerBlob {
        path: blob_path(&d),
        digest: Some(d),
        size: Some(desc.size),
        media_type: Some(media_type),
    })
}

pub(crate) fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn digest(image: &str, s: &str) -> Result<Digest> {
    s.parse().map_err(|_| {
        Error::Archive(format!(
            "image {image}: descriptor digest {s:?} is not a sha256 digest"
        ))
    })
}

/// Reads a JSON blob, checking its size and digest against `desc`.
fn parse_blob<T: for<'de> Deserialize<'de>>(
    members: &Members,
    desc: &Descriptor,
    what: &str,
) -> Result<T> {
    let d = digest(what, &desc.digest)?;
    if desc.size > MAX_JSON {
        return Err(Error::Archive(format!(
            "{what} blob {d} is too large ({} bytes)",
            desc.size
        )));
    }
    let bytes = members
        .read_small(&blob_path(&d))
        .map_err(|e| Error::Archive(format!("{what} blob {d}: {e}")))?;
    check_blob(what, &d, desc.size, &bytes)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Archive(format!("{what} blob {d} is not a valid {what}: {e}")))
}

fn tags_of(desc: &Descriptor) -> Result<Vec<Reference>> {
    let Some(a) = &desc.annotations else {
        return Ok(Vec::new());
    };
    let name = a.get(CONTAINERD_NAME).or_else(|| {
        // A bare tag (`latest`) names no repository: only a whole reference is a tag here.
        a.get(REF_NAME)
            .filter(|r| r.contains(':') || r.contains('/'))
    });
    parse_tags(
        &desc.digest,
        name.map(std::slice::from_ref).unwrap_or_default(),
    )
}

fn is_attestation(desc: &Descriptor) -> bool {
    desc.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("vnd.docker.reference.type"))
}

fn for_this_platform(desc: &Descriptor) -> bool {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    desc.platform
        .as_ref()
        .is_none_or(|p| p.os == "linux" && p.architecture == arch)
}
