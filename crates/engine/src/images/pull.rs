//! `pull`: an image from a registry into the store, all-or-nothing as `load` is. The
//! reference is normalised as Docker does, the manifest resolved to one platform, the config
//! fetched and verified, then each layer not yet in the store (by chainID) comes in: the
//! lowest streams from the registry straight into the layer store, the ones above it are
//! fetched meanwhile into staging files by a few threads. The blob's digest is checked at
//! its end by the registry reader, and its diffID by the layer store while it applies,
//! before the layer is published. Layers are applied in parent order. The image and
//! its tag are created at the end, in one transaction; on any error the layers this pull
//! made are removed again and nothing is tagged.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use strata_distribution::{
    Client, CredentialSource, Descriptor, Options, Platform, Reference as Remote, TransportConfig,
};
use strata_image::{Image, ImageConfig, Reference};
use strata_storage::layer_store::{LayerExpectation, LayerStore, StagingFile};
use strata_storage::Digest;

use crate::error::{Error, Result};

/// Layers fetched at once into staging files, beside the one streaming into the store.
const DOWNLOADS: usize = 3;

/// An image config is small; anything larger is not one.
const CONFIG_LIMIT: u64 = 8 << 20;

/// How to pull.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// `os/arch[/variant]`; the host's when `None`.
    pub platform: Option<String>,
    pub credentials: CredentialSource,
    pub transport: TransportConfig,
}

/// What a pull reports as it goes, in Docker's order. `id` is a layer's short
/// compressed digest (12 hex), as Docker's progress shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullEvent {
    /// `latest: Pulling from library/busybox`
    PullingFrom {
        tag: String,
        repository: String,
    },
    AlreadyExists {
        id: String,
    },
    PullingFsLayer {
        id: String,
    },
    Downloading {
        id: String,
        current: u64,
        total: u64,
    },
    VerifyingChecksum {
        id: String,
    },
    DownloadComplete {
        id: String,
    },
    /// A layer downloaded ahead is being applied from its staging file.
    Extracting {
        id: String,
    },
    PullComplete {
        id: String,
    },
    /// The digest the reference resolved to (the index's when there is one).
    Digest(String),
}

impl PullEvent {
    /// The layer the event is about (none for the image's own lines).
    pub fn id(&self) -> Option<&str> {
        match self {
            PullEvent::AlreadyExists { id }
            | PullEvent::PullingFsLayer { id }
            | PullEvent::Downloading { id, .. }
            | PullEvent::VerifyingChecksum { id }
            | PullEvent::DownloadComplete { id }
            | PullEvent::Extracting { id }
            | PullEvent::PullComplete { id } => Some(id),
            PullEvent::PullingFrom { .. } | PullEvent::Digest(_) => None,
        }
    }

    /// Docker's words for it, as its CLI prints them and its API streams them.
    pub fn status(&self) -> String {
        match self {
            PullEvent::PullingFrom { tag, repository } => {
                format!("{tag}: Pulling from {repository}")
            }
            PullEvent::AlreadyExists { .. } => "Already exists".into(),
            PullEvent::PullingFsLayer { .. } => "Pulling fs layer".into(),
            PullEvent::Downloading { .. } => "Downloading".into(),
            PullEvent::VerifyingChecksum { .. } => "Verifying Checksum".into(),
            PullEvent::DownloadComplete { .. } => "Download complete".into(),
            PullEvent::Extracting { .. } => "Extracting".into(),
            PullEvent::PullComplete { .. } => "Pull complete".into(),
            PullEvent::Digest(d) => format!("Digest: {d}"),
        }
    }
}

impl Pulled {
    /// Docker's last status line.
    pub fn status(&self) -> String {
        if self.up_to_date {
            format!("Status: Image is up to date for {}", self.name)
        } else {
            format!("Status: Downloaded newer image for {}", self.name)
        }
    }
}

/// What a pull made.
#[derive(Clone, Debug)]
pub struct Pulled {
    pub image: Image,
    /// `127.0.0.1:5000/x:latest`, `busybox:latest`: the name Docker shows.
    pub name: String,
    /// The full reference, `docker.io/library/busybox:latest`, as `docker pull` ends with.
    pub canonical: String,
    pub digest: String,
    /// The tag already named this image and every layer was there: nothing was downloaded.
    pub up_to_date: bool,
}

/// Where a resolved image's layers stand, bottom first.
struct Plan {
    config: ImageConfig,
    layers: Vec<(Descriptor, Digest, Digest)>, // blob, diffID, chainID
}

impl super::Images<'_> {
    /// `pull REFERENCE`: see the module doc.
    pub fn pull(
        &self,
        reference: &str,
        options: &PullOptions,
        progress: &mut dyn FnMut(PullEvent),
    ) -> Result<Pulled> {
        let remote =
            Remote::parse_normalized(reference).map_err(|e| Error::Invalid(e.to_string()))?;
        let name = remote.familiar();
        let client = Client::new(Options {
            transport: options.transport.clone(),
            credentials: options.credentials.clone(),
        });
        let platform = options
            .platform
            .as_deref()
            .map(Platform::parse)
            .transpose()
            .map_err(registry)?;
        let resolved = client
            .resolve(&remote, platform.as_ref())
            .map_err(registry)?;
        let source = &resolved.source;
        let config_desc = &resolved.image.config;
        let bytes = client
            .fetch_blob_bytes(
                source,
                &config_desc.digest,
                Some(config_desc.size),
                CONFIG_LIMIT,
            )
            .map_err(registry)?;
        let plan = plan(&name, bytes, &resolved.image.layers)?;
        if let (Some(wanted), None) = (&platform, &resolved.index) {
            check_platform(&name, wanted, &plan.config)?;
        }
        progress(PullEvent::PullingFrom {
            tag: remote
                .tag()
                .or(remote.digest())
                .unwrap_or("latest")
                .to_string(),
            repository: familiar_repository(&remote),
        });
        let tag: Option<Reference> = match remote.digest() {
            // Docker tags a pull by tag; a pull by digest only has the digest.
            Some(_) if remote.tag().is_none() => None,
            _ => Some(name.parse()?),
        };
        let stores = self.stores;
        // What "up to date" compares with: the image the tag named, or for a pull by
        // digest (no tag) whether the image was there at all.
        let before = match &tag {
            Some(t) => stores.images.resolve(&t.to_string()).ok().map(|i| i.id),
            None => stores
                .images
                .image(plan.config.digest.as_str())
                .ok()
                .map(|i| i.id),
        };

        let mut created = Vec::new();
        let result = fetch_layers(
            &client,
            source,
            &stores.layers,
            &plan,
            &mut created,
            progress,
        )
        .and_then(|downloaded| {
            let top = plan.layers.last().map(|l| l.2.clone());
            let tags: Vec<Reference> = tag.iter().cloned().collect();
            let image = stores
                .images
                .create_image(&plan.config, top.as_ref(), &tags)?;
            Ok((image, downloaded))
        });
        if result.is_err() {
            for chain in created.iter().rev() {
                match stores.layers.remove_if_unused(chain) {
                    Ok(_) | Err(strata_storage::Error::NotFound(_)) => {}
                    Err(e) => tracing::warn!("removing layer {chain} after a failed pull: {e}"),
                }
            }
        }
        // The image references its layers now (or the pull failed): our holds end.
        for (_, _, chain) in &plan.layers {
            stores.layers.release_hold(chain);
        }
        let (image, downloaded) = result?;
        progress(PullEvent::Digest(resolved.digest.clone()));
        let up_to_date = !downloaded && before.as_deref() == Some(image.id.as_str());
        Ok(Pulled {
            image,
            name: tag.map_or_else(|| remote.familiar(), |t| t.to_string()),
            canonical: remote.to_string(),
            digest: resolved.digest,
            up_to_date,
        })
    }
}

fn registry(e: strata_distribution::Error) -> Error {
    Error::Registry(e)
}

/// `library/busybox` for Docker Hub's official images, else the path without the registry,
/// as Docker's "Pulling from" line shows it.
fn familiar_repository(remote: &Remote) -> String {
    remote.repository().to_string()
}

/// A single-platform image pulled with `--platform` must be of that platform: Docker
/// refuses it otherwise (an index was already chosen from by platform).
fn check_platform(name: &str, wanted: &Platform, config: &ImageConfig) -> Result<()> {
    let have: Platform = serde_json::from_slice(&config.bytes)
        .map_err(|e| Error::Invalid(format!("image {name}: its config has no platform: {e}")))?;
    if wanted.matches(&have) {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "image with reference {name} was found but does not match the specified platform: \
         wanted {wanted}, actual: {have}"
    )))
}

/// Reads the config and pairs each layer blob with its diffID and chainID.
fn plan(name: &str, bytes: Vec<u8>, blobs: &[Descriptor]) -> Result<Plan> {
    let config =
        ImageConfig::from_bytes(bytes).map_err(|e| Error::Invalid(format!("image {name}: {e}")))?;
    let diff_ids = config
        .diff_ids()
        .map_err(|e| Error::Invalid(format!("image {name}: {e}")))?;
    if diff_ids.len() != blobs.len() {
        return Err(Error::Invalid(format!(
            "image {name}: its config {} lists {} diffIDs but the manifest has {} layers",
            config.digest,
            diff_ids.len(),
            blobs.len()
        )));
    }
    let mut parent: Option<Digest> = None;
    let mut layers = Vec::new();
    for (blob, diff) in blobs.iter().zip(diff_ids) {
        let chain = Digest::chain(parent.as_ref(), &diff);
        parent = Some(chain.clone());
        layers.push((blob.clone(), diff, chain));
    }
    Ok(Plan { config, layers })
}

/// The short id Docker's progress names a layer by.
pub fn short_id(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// Applies every layer the store lacks, bottom first; says whether any was downloaded.
/// Every layer of the image is held (it may have no reference until the image is made).
/// The lowest missing layer streams from the registry straight into the store; meanwhile
/// up to [`DOWNLOADS`] threads fetch the layers above it into staging files in `tmp/`
/// (verified at their end), which are applied in order as their parents are in.
fn fetch_layers(
    client: &Client,
    source: &Remote,
    layers: &LayerStore,
    plan: &Plan,
    created: &mut Vec<Digest>,
    progress: &mut dyn FnMut(PullEvent),
) -> Result<bool> {
    let mut missing = Vec::new();
    for (i, (blob, _, chain)) in plan.layers.iter().enumerate() {
        let id = short_id(&blob.digest);
        if layers.hold(chain).is_ok() {
            progress(PullEvent::AlreadyExists { id });
        } else {
            progress(PullEvent::PullingFsLayer { id });
            missing.push(i);
        }
    }
    let Some((&first, later)) = missing.split_first() else {
        return Ok(false);
    };
    let queue = Mutex::new(later.iter().copied().collect::<VecDeque<_>>());
    let cancel = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Msg>();
    std::thread::scope(|scope| {
        for _ in 0..DOWNLOADS.min(later.len()) {
            let tx = tx.clone();
            let (queue, cancel) = (&queue, &cancel);
            scope.spawn(move || loop {
                let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                let Some(i) = next else { break };
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                let blob = &plan.layers[i].0;
                let staged = download(client, source, layers, blob, &tx, cancel);
                if tx.send(Msg::Done(i, staged)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pump = Pump {
            rx,
            done: HashMap::new(),
        };
        let result = apply_in_order(
            client, source, layers, plan, first, &missing, &mut pump, created, progress,
        );
        if result.is_err() {
            cancel.store(true, Ordering::Relaxed);
        }
        result
    })?;
    Ok(true)
}

/// What the download threads tell the applying one.
enum Msg {
    Event(PullEvent),
    Done(usize, Result<StagingFile>),
}

/// The applying thread's end of the channel: events are passed on as they come, finished
/// downloads kept until their turn.
struct Pump {
    rx: mpsc::Receiver<Msg>,
    done: HashMap<usize, Result<StagingFile>>,
}

impl Pump {
    fn take(&mut self, msg: Msg, progress: &mut dyn FnMut(PullEvent)) {
        match msg {
            Msg::Event(e) => progress(e),
            Msg::Done(i, r) => {
                self.done.insert(i, r);
            }
        }
    }

    fn drain(&mut self, progress: &mut dyn FnMut(PullEvent)) {
        while let Ok(msg) = self.rx.try_recv() {
            self.take(msg, progress);
        }
    }

    fn wait_for(&mut self, i: usize, progress: &mut dyn FnMut(PullEvent)) -> Result<StagingFile> {
        loop {
            if let Some(r) = self.done.remove(&i) {
                return r;
            }
            match self.rx.recv() {
                Ok(msg) => self.take(msg, progress),
                Err(_) => {
                    return Err(Error::Invalid(format!(
                        "layer {i}: its download thread ended without a result"
                    )))
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_in_order(
    client: &Client,
    source: &Remote,
    layers: &LayerStore,
    plan: &Plan,
    first: usize,
    missing: &[usize],
    pump: &mut Pump,
    created: &mut Vec<Digest>,
    progress: &mut dyn FnMut(PullEvent),
) -> Result<()> {
    for &i in missing {
        let (blob, diff_id, _) = &plan.layers[i];
        let parent = i.checked_sub(1).map(|p| &plan.layers[p].2);
        let id = short_id(&blob.digest);
        let what = format!("layer {} of {}", blob.digest, source.name());
        let expect = LayerExpectation {
            blob_digest: blob.digest.parse().ok(),
            diff_id: Some(diff_id.clone()),
        };
        let made = if i == first {
            let reader = client
                .fetch_blob(source, &blob.digest, Some(blob.size), None)
                .map_err(|e| layer_error(&what, registry(e)))?;
            let mut reader = Counting {
                inner: reader,
                current: 0,
                reported: 0,
                total: blob.size,
                id: &id,
                report: &mut |e| {
                    progress(e);
                    pump.drain(progress);
                },
            };
            let made = layers.create_layer_checked(parent, &mut reader, &expect);
            if made.is_ok() {
                progress(PullEvent::VerifyingChecksum { id: id.clone() });
                progress(PullEvent::DownloadComplete { id: id.clone() });
            }
            made
        } else {
            let mut staged = pump
                .wait_for(i, progress)
                .map_err(|e| layer_error(&what, e))?;
            progress(PullEvent::Extracting { id: id.clone() });
            layers.create_layer_checked(parent, staged.file(), &expect)
        };
        let made = made.map_err(|e| layer_error(&what, storage_or_registry(e)))?;
        created.push(made.chain_id.clone());
        progress(PullEvent::PullComplete { id });
        pump.drain(progress);
    }
    Ok(())
}

/// One blob into a staging file, verified (the reader checks size and digest at its end),
/// rewound for the apply.
fn download(
    client: &Client,
    source: &Remote,
    layers: &LayerStore,
    blob: &Descriptor,
    tx: &mpsc::Sender<Msg>,
    cancel: &AtomicBool,
) -> Result<StagingFile> {
    let id = short_id(&blob.digest);
    let reader = client
        .fetch_blob(source, &blob.digest, Some(blob.size), None)
        .map_err(registry)?;
    let mut staged = layers.staging_file(".blob")?;
    let mut reader = Counting {
        inner: reader,
        current: 0,
        reported: 0,
        total: blob.size,
        id: &id,
        report: &mut |e| {
            let _ = tx.send(Msg::Event(e));
        },
    };
    let mut buf = vec![0u8; 256 << 10];
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Invalid("the pull was cancelled".into()));
        }
        let n = reader.read(&mut buf).map_err(|e| {
            Error::Registry(strata_distribution::Error::from_io(
                e,
                &format!("blob {}", blob.digest),
            ))
        })?;
        if n == 0 {
            break;
        }
        staged
            .file()
            .write_all(&buf[..n])
            .map_err(|e| Error::io(format!("staging blob {}", blob.digest), e))?;
    }
    staged
        .file()
        .seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(format!("staging blob {}", blob.digest), e))?;
    let _ = tx.send(Msg::Event(PullEvent::VerifyingChecksum { id: id.clone() }));
    let _ = tx.send(Msg::Event(PullEvent::DownloadComplete { id }));
    Ok(staged)
}

/// A blob reader's own error (digest or size mismatch) travels through the layer store as an
/// io error; this gets it back so the message says what went wrong with the blob.
fn storage_or_registry(e: strata_storage::Error) -> Error {
    if let strata_storage::Error::Io { cause, .. } = &e {
        if let Some(inner) = cause
            .get_ref()
            .and_then(|r| r.downcast_ref::<strata_distribution::Error>())
        {
            return Error::Invalid(format!("{inner}"));
        }
    }
    Error::Storage(e)
}

fn layer_error(what: &str, e: Error) -> Error {
    let message = e.to_string();
    if message.contains(what) {
        return e;
    }
    match e {
        Error::Registry(r) => Error::Registry(r),
        other => Error::Invalid(format!("{what}: {other}")),
    }
}

/// Reports bytes read as `Downloading`, about every 512 KiB.
struct Counting<'a> {
    inner: strata_distribution::BlobReader,
    current: u64,
    reported: u64,
    total: u64,
    id: &'a str,
    report: &'a mut dyn FnMut(PullEvent),
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.current += n as u64;
        if self.current - self.reported >= 512 << 10 || (n == 0 && self.current > self.reported) {
            self.reported = self.current;
            (self.report)(PullEvent::Downloading {
                id: self.id.to_string(),
                current: self.current,
                total: self.total,
            });
        }
        Ok(n)
    }
}
