//! `save`: images out as Docker 20.10's classic docker-archive (what `docker load` of every
//! version reads) or as an OCI layout (tar or directory).
//!
//! Everything streams: an uncompressed layer goes straight from the store into the output
//! (its size and digest, the diffID, are known beforehand); a compressed one, whose size and
//! digest a tar header or a manifest needs first, is compressed into a staging file under the
//! store's `tmp/` and copied from there. Memory stays small whatever the image size.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use strata_storage::digest::HashingWriter;
use strata_storage::error::IoContext;
use strata_storage::layer_store::LayerStore;
use strata_storage::Digest;

use super::oci_layout::{blob_path, CONFIG, CONTAINERD_NAME, INDEX, LAYER_TAR, MANIFEST, REF_NAME};
use super::tar_out::TarOut;
use super::{Progress, SaveCompression, SaveFormat};
use crate::config::ImageConfig;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::ImageStore;

/// An image to save, with the tags asked for.
struct Selected {
    config: ImageConfig,
    chains: Vec<Digest>,
    tags: Vec<Reference>,
}

/// A layer blob as written: digest and size of the bytes in the archive.
#[derive(Clone)]
struct Blob {
    digest: Digest,
    size: u64,
}

/// Saves `names` (tags or IDs) to `out` in `format` (for `OciDir`, `out` is unused).
pub fn save(
    layers: &LayerStore,
    images: &ImageStore,
    names: &[String],
    format: &SaveFormat,
    compression: SaveCompression,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(Progress),
) -> Result<()> {
    let selected = select(images, names)?;
    let mut w = Writer {
        layers,
        compression,
        progress,
        done: HashMap::new(),
    };
    match format {
        SaveFormat::DockerArchive => w.docker(&selected, &mut TarOut::new(out)),
        SaveFormat::OciArchive => w.oci(&selected, &mut Sink::Tar(TarOut::new(out))),
        SaveFormat::OciDir(dir) => {
            std::fs::create_dir(dir).ctx_path("creating the OCI layout directory", dir)?;
            let result = std::fs::create_dir_all(dir.join("blobs/sha256"))
                .ctx_path("creating", dir)
                .map_err(Error::from)
                .and_then(|()| w.oci(&selected, &mut Sink::Dir(dir.clone())));
            if result.is_err() {
                // We created it: nothing half-written stays.
                let _ = std::fs::remove_dir_all(dir);
            }
            result
        }
    }
}

/// Resolves `names`; the same image asked for twice is saved once, with both tags. A name
/// that is a tag of the image becomes a tag in the archive; an ID adds none (as Docker).
fn select(images: &ImageStore, names: &[String]) -> Result<Vec<Selected>> {
    if names.is_empty() {
        return Err(Error::NotFound(
            "save needs at least one image name or ID".into(),
        ));
    }
    let mut out: Vec<(String, Selected)> = Vec::new();
    for name in names {
        let image = images.resolve(name)?;
        let tag = name
            .parse::<Reference>()
            .ok()
            .filter(|r| image.tags.contains(r));
        if let Some((_, s)) = out.iter_mut().find(|(id, _)| *id == image.id) {
            s.tags.extend(tag.filter(|t| !s.tags.contains(t)));
            continue;
        }
        let config = images.config(&image.id)?;
        let mut parent = None;
        let chains = config
            .diff_ids()?
            .iter()
            .map(|d| {
                let chain = Digest::chain(parent.as_ref(), d);
                parent = Some(chain.clone());
                chain
            })
            .collect();
        let selected = Selected {
            config,
            chains,
            tags: tag.into_iter().collect(),
        };
        out.push((image.id.clone(), selected));
    }
    Ok(out.into_iter().map(|(_, s)| s).collect())
}

/// Where OCI blobs go.
enum Sink<'a> {
    Tar(TarOut<'a>),
    Dir(PathBuf),
}

struct Writer<'s, 'p> {
    layers: &'s LayerStore,
    compression: SaveCompression,
    progress: &'p mut dyn FnMut(Progress),
    /// Layers already written, by chainID: a layer shared by two images is written once.
    done: HashMap<Digest, Blob>,
}

impl Writer<'_, '_> {
    fn docker(&mut self, selected: &[Selected], tar: &mut TarOut<'_>) -> Result<()> {
        let mut manifest = Vec::new();
        let mut repositories: serde_json::Map<String, serde_json::Value> = Default::default();
        for image in selected {
            let mut paths = Vec::new();
            let count = image.chains.len();
            for (i, chain) in image.chains.iter().enumerate() {
                let dir = chain.hex().to_string();
                paths.push(format!("{dir}/layer.tar"));
                if self.done.contains_key(chain) {
                    continue;
                }
                self.layer_progress(i, count, chain);
                let parent = i.checked_sub(1).map(|p| image.chains[p].hex().to_string());
                tar.dir(&format!("{dir}/"))?;
                tar.file(&format!("{dir}/VERSION"), b"1.0")?;
                let v1 = json!({"id": dir, "parent": parent, "created": "1970-01-01T00:00:00Z"});
                tar.file(&format!("{dir}/json"), v1.to_string().as_bytes())?;
                let blob = self.layer_into_tar(tar, chain, &format!("{dir}/layer.tar"))?;
                self.done.insert(chain.clone(), blob);
            }
            let config_name = format!("{}.json", image.config.digest.hex());
            tar.file(&config_name, &image.config.bytes)?;
            let tags: Vec<String> = image.tags.iter().map(|t| t.to_string()).collect();
            manifest.push(json!({
                "Config": config_name,
                "RepoTags": if tags.is_empty() { serde_json::Value::Null } else { json!(tags) },
                "Layers": paths,
            }));
            if let Some(top) = image.chains.last() {
                for t in &image.tags {
                    let repo = repositories
                        .entry(t.name.clone())
                        .or_insert_with(|| json!({}));
                    repo[&t.tag] = json!(top.hex());
                }
            }
            self.image_done(image);
        }
        tar.file(
            "manifest.json",
            serde_json::Value::from(manifest).to_string().as_bytes(),
        )?;
        let repositories = serde_json::Value::Object(repositories).to_string();
        tar.file("repositories", repositories.as_bytes())?;
        tar.finish_ref()
    }

    fn oci(&mut self, selected: &[Selected], sink: &mut Sink<'_>) -> Result<()> {
        sink.put("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        if let Sink::Tar(tar) = sink {
            tar.dir("blobs/")?;
            tar.dir("blobs/sha256/")?;
        }
        let mut index = Vec::new();
        for image in selected {
            let count = image.chains.len();
            let mut descriptors = Vec::new();
            for (i, chain) in image.chains.iter().enumerate() {
                let blob = match self.done.get(chain) {
                    Some(blob) => blob.clone(),
                    None => {
                        self.layer_progress(i, count, chain);
                        let blob = self.layer_into_sink(sink, chain)?;
                        self.done.insert(chain.clone(), blob.clone());
                        blob
                    }
                };
                descriptors.push(json!({
                    "mediaType": self.layer_media_type(),
                    "digest": blob.digest.to_string(),
                    "size": blob.size,
                }));
            }
            let config = &image.config;
            sink.put_blob(&config.digest, &config.bytes)?;
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {"mediaType": CONFIG, "digest": config.digest.to_string(), "size": config.bytes.len()},
                "layers": descriptors,
            })
            .to_string();
            let digest = Digest::of_bytes(manifest.as_bytes());
            sink.put_blob(&digest, manifest.as_bytes())?;
            let descriptor = |annotations: Option<serde_json::Value>| {
                let mut d = json!({"mediaType": MANIFEST, "digest": digest.to_string(), "size": manifest.len()});
                if let Some(a) = annotations {
                    d["annotations"] = a;
                }
                d
            };
            if image.tags.is_empty() {
                index.push(descriptor(None));
            }
            for t in &image.tags {
                index.push(descriptor(Some(json!({
                    CONTAINERD_NAME: full_name(t),
                    REF_NAME: t.tag,
                }))));
            }
            self.image_done(image);
        }
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": index});
        sink.put("index.json", index.to_string().as_bytes())?;
        sink.finish()
    }

    fn layer_media_type(&self) -> String {
        match self.compression {
            SaveCompression::None => LAYER_TAR.to_string(),
            SaveCompression::Gzip => format!("{LAYER_TAR}+gzip"),
            SaveCompression::Zstd => format!("{LAYER_TAR}+zstd"),
        }
    }

    /// A layer as a tar member: straight from the store when uncompressed, else through a
    /// staging file (the header needs the compressed size first).
    fn layer_into_tar(&mut self, tar: &mut TarOut<'_>, chain: &Digest, name: &str) -> Result<Blob> {
        let layer = self.layers.layer(chain)?;
        if self.compression == SaveCompression::None {
            tar.stream(name, layer.size, |out| {
                self.layers.layer_tar(chain, out).map_err(Error::from)
            })?;
            self.bytes(layer.size);
            return Ok(Blob {
                digest: layer.diff_id,
                size: layer.size,
            });
        }
        let (mut file, blob, _staged) = self.compress_to_staging(chain)?;
        tar.stream(name, blob.size, |out| {
            Ok(io::copy(&mut file, out)
                .ctx(|| format!("copying layer {chain} into the archive"))?)
        })?;
        self.bytes(blob.size);
        Ok(blob)
    }

    fn layer_into_sink(&mut self, sink: &mut Sink<'_>, chain: &Digest) -> Result<Blob> {
        let dir = match sink {
            Sink::Tar(tar) => {
                let digest_hint = self.layers.layer(chain)?.diff_id;
                let name = blob_path(&digest_hint);
                // The member name needs the blob digest: known only uncompressed.
                if self.compression == SaveCompression::None {
                    return self.layer_into_tar(tar, chain, &name);
                }
                let (mut file, blob, _staged) = self.compress_to_staging(chain)?;
                tar.stream(&blob_path(&blob.digest), blob.size, |out| {
                    Ok(io::copy(&mut file, out).ctx(|| format!("copying layer {chain}"))?)
                })?;
                self.bytes(blob.size);
                return Ok(blob);
            }
            Sink::Dir(dir) => dir.clone(),
        };
        // A directory: written under a temporary name, hashed as it goes, then renamed.
        let tmp = dir.join(format!("blobs/sha256/.tmp-{}", chain.hex()));
        let file = File::create(&tmp).ctx_path("creating", &tmp)?;
        let (file, blob) = self.write_layer(chain, file)?;
        file.sync_all().ctx_path("syncing", &tmp)?;
        let dest = dir.join(blob_path(&blob.digest));
        std::fs::rename(&tmp, &dest).ctx_path("renaming into place", &dest)?;
        self.bytes(blob.size);
        Ok(blob)
    }

    /// Compresses layer `chain` into a staging file; returns it rewound, with the blob's
    /// digest and size. The staging file is removed when the last value is dropped.
    fn compress_to_staging(
        &mut self,
        chain: &Digest,
    ) -> Result<(File, Blob, strata_storage::layer_store::StagingFile)> {
        let mut staged = self.layers.staging_file(".save")?;
        let path = staged.path().to_path_buf();
        let handle = staged.file().try_clone().ctx_path("reopening", &path)?;
        let (mut file, blob) = self.write_layer(chain, handle)?;
        file.rewind().ctx_path("rewinding", &path)?;
        Ok((file, blob, staged))
    }

    /// Writes layer `chain` (compressed as asked) to `file`; returns the file and the blob.
    fn write_layer(&mut self, chain: &Digest, file: File) -> Result<(File, Blob)> {
        let mut hashing = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        let wrap = |e: io::Error| {
            Error::from(strata_storage::Error::io(
                format!("compressing layer {chain}"),
                e,
            ))
        };
        match self.compression {
            SaveCompression::None => {
                self.layers.layer_tar(chain, &mut hashing)?;
            }
            SaveCompression::Gzip => {
                let mut gz =
                    flate2::write::GzEncoder::new(&mut hashing, flate2::Compression::fast());
                self.layers.layer_tar(chain, &mut gz)?;
                gz.finish().map_err(wrap)?;
            }
            SaveCompression::Zstd => {
                let mut z = zstd::Encoder::new(&mut hashing, 3).map_err(wrap)?;
                self.layers.layer_tar(chain, &mut z)?;
                z.finish().map_err(wrap)?;
            }
        }
        let (buffered, digest, size) = hashing.finish();
        let file = buffered.into_inner().map_err(|e| wrap(e.into_error()))?;
        Ok((file, Blob { digest, size }))
    }

    fn layer_progress(&mut self, i: usize, count: usize, chain: &Digest) {
        (self.progress)(Progress::Layer {
            index: i + 1,
            count,
            digest: chain.to_string(),
        });
    }

    fn bytes(&mut self, n: u64) {
        (self.progress)(Progress::Bytes(n));
    }

    fn image_done(&mut self, image: &Selected) {
        (self.progress)(Progress::Image {
            id: image.config.digest.to_string(),
            tags: image.tags.iter().map(|t| t.to_string()).collect(),
        });
    }
}

impl Sink<'_> {
    fn put(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        match self {
            Sink::Tar(tar) => tar.file(name, bytes),
            Sink::Dir(dir) => write_file(&dir.join(name), bytes),
        }
    }

    fn put_blob(&mut self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        self.put(&blob_path(digest), bytes)
    }

    fn finish(&mut self) -> Result<()> {
        match self {
            Sink::Tar(tar) => tar.finish_ref(),
            Sink::Dir(dir) => strata_storage::fs::sync_dir(&dir.join("blobs/sha256"))
                .and_then(|()| strata_storage::fs::sync_dir(dir))
                .map_err(Error::from),
        }
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).ctx_path("creating", path)?;
    f.write_all(bytes).ctx_path("writing", path)?;
    f.sync_all().ctx_path("syncing", path)?;
    Ok(())
}

/// `busybox:latest` → `docker.io/library/busybox:latest`, as containerd names images.
fn full_name(t: &Reference) -> String {
    let first = t.name.split('/').next().unwrap_or_default();
    let has_domain = t.name.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost");
    match (has_domain, t.name.contains('/')) {
        (true, _) => t.to_string(),
        (false, true) => format!("docker.io/{t}"),
        (false, false) => format!("docker.io/library/{t}"),
    }
}
