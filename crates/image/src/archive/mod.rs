//! Image archives in and out: docker-archive (`docker save` output, both the classic
//! per-layer `layer.tar` form and the OCI-layout form Docker 25+ writes) and OCI image
//! layouts (`oci-layout`, `index.json`, `blobs/sha256`), as directories or tars.
//!
//! Load reads members in place (a tar file is indexed once, then read with `pread`; a stream
//! is spooled to the store's `tmp/` first) and checks every blob and diffID before anything
//! is published; save streams layers from the store with deterministic tar headers.

mod docker_archive;
mod entry;
mod load;
mod oci_layout;
mod save;
mod source;
mod tar_out;

use std::io::Read;
use std::path::PathBuf;

/// The format `save` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaveFormat {
    /// `docker save`'s format (the default): loadable by `docker load`.
    DockerArchive,
    /// An OCI image layout, as a tar.
    OciArchive,
    /// An OCI image layout, as a directory (created; must not exist).
    OciDir(PathBuf),
}

/// Layer compression for `save`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveCompression {
    None,
    Gzip,
    Zstd,
}

/// Progress of a load or save, for the CLI to show.
#[derive(Clone, Debug)]
pub enum Progress {
    /// Working on layer `index` of `count` (1-based), `digest` as the archive names it.
    Layer {
        index: usize,
        count: usize,
        digest: String,
    },
    /// The layer was already in the store: nothing applied.
    LayerExists { digest: String },
    /// `bytes` more bytes of the archive processed.
    Bytes(u64),
    /// An image finished: `Loaded image: NAME:TAG` / `Loaded image ID: sha256:...`.
    Image { id: String, tags: Vec<String> },
}

/// Where a load reads from.
pub enum LoadSource<'a> {
    /// A tar archive (docker-archive or OCI layout), from a file or a stream.
    Stream(&'a mut dyn Read),
    /// A file: read in place (seekable, nothing spooled).
    File(PathBuf),
    /// An unpacked OCI layout or docker-archive directory.
    Dir(PathBuf),
}

pub use load::load;
pub use save::save;
