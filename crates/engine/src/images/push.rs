//! `push`: an image's layers, config and manifest up to a registry. Each layer's tar (the
//! very bytes it was loaded from) is gzip-compressed into a staging file in the store's
//! `tmp/`, hashed as it is written: the compressed digest is known only then, and the
//! registry is asked (HEAD) before anything goes up. Layers go up in parallel, then the
//! config's exact bytes (so the image ID, the config digest, is the same wherever it is
//! pulled), then the manifest, last, so that the tag never names blobs not yet there.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::json;
use strata_distribution::{Client, Reference, Upload};
use strata_storage::digest::HashingWriter;
use strata_storage::layer_store::StagingFile;
use strata_storage::Digest;

use super::Images;
use crate::error::{Error, Result};

pub const MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG_V1: &str = "application/vnd.docker.container.image.v1+json";
const LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// As many uploads at once as docker's default `max-concurrent-uploads` minus two: the
/// machine compresses as it goes, and more threads only contend for the cores.
const UPLOAD_THREADS: usize = 3;

/// What `push` reports, from any of its threads; `id` is a layer's short diffID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushEvent {
    /// Once, first: the repository the push goes to (`host/name`).
    Repository(String),
    Preparing {
        id: String,
    },
    Pushing {
        id: String,
        current: u64,
        total: u64,
    },
    Pushed {
        id: String,
    },
    Exists {
        id: String,
    },
}

/// What a push did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    pub tag: String,
    /// The manifest's digest.
    pub digest: String,
    /// The manifest's size.
    pub size: u64,
    /// Layers uploaded (the others the registry had).
    pub uploaded: usize,
}

/// A layer's blob, and whether this push uploaded it.
type Done = (Blob, bool);

struct Blob {
    digest: String,
    size: u64,
}

impl Images<'_> {
    /// `push REF`: the local image tagged `reference` (the registry in its name) to that
    /// registry, through `client` (which carries credentials and transport settings).
    pub fn push(
        &self,
        reference: &str,
        client: &Client,
        progress: &(dyn Fn(PushEvent) + Sync),
    ) -> Result<Pushed> {
        let remote = Reference::parse_normalized(reference)
            .map_err(|e| Error::Invalid(format!("invalid reference {reference:?}: {e}")))?;
        if remote.digest().is_some() {
            return Err(Error::Invalid(format!(
                "cannot push a digest reference: {reference}"
            )));
        }
        let tag = remote.tag().unwrap_or("latest").to_string();
        let local = match remote.tag() {
            Some(_) => remote.familiar(),
            None => format!("{}:latest", remote.familiar()),
        };
        let image = self.stores.images.resolve(&local).map_err(|_| {
            Error::NotFound(format!(
                "An image does not exist locally with the tag: {reference}"
            ))
        })?;
        let config = self.stores.images.config(&image.id)?;
        progress(PushEvent::Repository(remote.name()));
        let mut parent = None;
        let layers: Vec<(Digest, String)> = config
            .diff_ids()?
            .iter()
            .map(|d| {
                let chain = Digest::chain(parent.as_ref(), d);
                parent = Some(chain.clone());
                (chain, d.hex()[..12].to_string())
            })
            .collect();
        for (_, id) in &layers {
            progress(PushEvent::Preparing { id: id.clone() });
        }
        let blobs = self.push_layers(&remote, client, &layers, progress)?;
        let uploaded = blobs.iter().filter(|(_, up)| *up).count();
        let config_digest = config.digest.to_string();
        if client
            .blob_exists(&remote, &config_digest)
            .map_err(registry)?
            .is_none()
        {
            let bytes = &config.bytes;
            client
                .push_blob(
                    &remote,
                    &config_digest,
                    bytes.len() as u64,
                    &mut &bytes[..],
                    Upload::Monolithic,
                )
                .map_err(registry)?;
        }
        let descriptors: Vec<_> = blobs
            .iter()
            .map(|(b, _)| json!({"mediaType": LAYER_GZIP, "size": b.size, "digest": b.digest}))
            .collect();
        let manifest = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {"mediaType": CONFIG_V1, "size": config.bytes.len(), "digest": config_digest},
            "layers": descriptors,
        }))
        .expect("a manifest serialises");
        let digest = client
            .push_manifest(&remote, MANIFEST_V2, &manifest)
            .map_err(registry)?;
        Ok(Pushed {
            tag,
            digest,
            size: manifest.len() as u64,
            uploaded,
        })
    }

    /// Every layer compressed, checked for and uploaded if missing, `UPLOAD_THREADS` at a
    /// time; the blobs in layer order, each with whether it went up.
    fn push_layers(
        &self,
        remote: &Reference,
        client: &Client,
        layers: &[(Digest, String)],
        progress: &(dyn Fn(PushEvent) + Sync),
    ) -> Result<Vec<(Blob, bool)>> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<Option<Result<Done>>>> =
            Mutex::new(layers.iter().map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..UPLOAD_THREADS.min(layers.len()) {
                scope.spawn(|| loop {
                    if failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((chain, id)) = layers.get(i) else {
                        return;
                    };
                    let done = self.push_layer(remote, client, chain, id, progress);
                    if done.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    results.lock().unwrap()[i] = Some(done);
                });
            }
        });
        let mut blobs = Vec::new();
        for done in results.into_inner().unwrap() {
            match done {
                Some(done) => blobs.push(done?),
                // Not started because another layer failed: that error is reported.
                None => continue,
            }
        }
        if blobs.len() != layers.len() {
            return Err(Error::Invalid("push stopped by an earlier error".into()));
        }
        Ok(blobs)
    }

    fn push_layer(
        &self,
        remote: &Reference,
        client: &Client,
        chain: &Digest,
        id: &str,
        progress: &(dyn Fn(PushEvent) + Sync),
    ) -> Result<(Blob, bool)> {
        let (mut file, blob, _staged) = self.compress_layer(chain)?;
        if client
            .blob_exists(remote, &blob.digest)
            .map_err(registry)?
            .is_some()
        {
            progress(PushEvent::Exists { id: id.to_string() });
            return Ok((blob, false));
        }
        let mut reader = Counting {
            inner: &mut file,
            current: 0,
            total: blob.size,
            last: 0,
            report: &|current, total| {
                progress(PushEvent::Pushing {
                    id: id.to_string(),
                    current,
                    total,
                })
            },
        };
        client
            .push_blob(
                remote,
                &blob.digest,
                blob.size,
                &mut reader,
                Upload::Monolithic,
            )
            .map_err(registry)?;
        progress(PushEvent::Pushed { id: id.to_string() });
        Ok((blob, true))
    }

    /// Layer `chain` gzip-compressed (docker's default level) into a staging file, rewound;
    /// the staging file goes when the returned guard is dropped.
    fn compress_layer(&self, chain: &Digest) -> Result<(File, Blob, StagingFile)> {
        let layers = &self.stores.layers;
        let mut staged = layers.staging_file(".push")?;
        let path = staged.path().to_path_buf();
        let wrap = |e: io::Error| Error::io(format!("compressing layer {chain} to push it"), e);
        let handle = staged.file().try_clone().map_err(wrap)?;
        let mut hashing = HashingWriter::new(BufWriter::with_capacity(1 << 20, handle));
        let mut gz = flate2::write::GzEncoder::new(&mut hashing, flate2::Compression::default());
        layers.layer_tar(chain, &mut gz)?;
        gz.finish().map_err(wrap)?;
        let (buffered, digest, size) = hashing.finish();
        let mut file = buffered.into_inner().map_err(|e| wrap(e.into_error()))?;
        file.rewind()
            .map_err(|e| Error::io(format!("rewinding {}", path.display()), e))?;
        let blob = Blob {
            digest: digest.to_string(),
            size,
        };
        Ok((file, blob, staged))
    }
}

fn registry(e: strata_distribution::Error) -> Error {
    Error::Registry(e)
}

/// Reports bytes read, at most every 512 KiB and at the end, as docker's progress does.
struct Counting<'a> {
    inner: &'a mut dyn Read,
    current: u64,
    total: u64,
    last: u64,
    report: &'a dyn Fn(u64, u64),
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.current += n as u64;
        if self.current - self.last >= 512 * 1024 || (n > 0 && self.current == self.total) {
            self.last = self.current;
            (self.report)(self.current, self.total);
        }
        Ok(n)
    }
}
