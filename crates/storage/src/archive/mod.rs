//! OCI layer tars in and out of a layer: [`apply`] (any compression, detected from the bytes,
//! diffID computed while streaming) and [`export`] (uncompressed, deterministic), converting
//! whiteouts between the tar form and the driver's on-disk form.

use std::io::{Read, Write};
use std::path::Path;

use crate::digest::Digest;
use crate::driver::{DiffFormat, DiffView};
use crate::error::Result;
use crate::fs::Root;

mod apply;
pub mod decompress;
mod export;
mod header_limit;
mod tarsplit;
mod tree;
pub mod whiteout;

pub(crate) use export::export_copying;
pub use tree::{archive_tree, TreeOptions};

/// What applying a layer tar produced.
#[derive(Clone, Debug)]
pub struct ApplyReport {
    /// sha256 of the uncompressed tar stream: the layer's diffID.
    pub diff_id: Digest,
    /// Bytes of the uncompressed tar stream.
    pub tar_size: u64,
    /// Tar entries applied (whiteouts included).
    pub entries: u64,
}

/// Applies the layer tar `input` (plain, gzip or zstd) into `target`, a layer directory in
/// `format`. Every path is resolved inside `target`; nothing is written outside it.
pub fn apply(target: &Path, format: DiffFormat, input: &mut dyn Read) -> Result<ApplyReport> {
    apply::apply(target, format, input)
}

/// Writes the changes in `view` as an uncompressed OCI layer tar to `out`.
pub fn export(view: &DiffView, out: &mut dyn Write) -> Result<()> {
    export::export(view, out)
}

/// Like [`apply`], and writes to `tar_split` a compact record (zstd) of everything in the
/// uncompressed stream that is not regular-file content, so that [`reassemble`] can later
/// rebuild the exact bytes from it and the layer's files. The record is streamed: memory
/// stays flat whatever the layer size.
pub fn apply_recording(
    target: &Path,
    format: DiffFormat,
    input: &mut dyn Read,
    tar_split: &mut dyn Write,
) -> Result<ApplyReport> {
    apply::apply_recording(target, format, input, tar_split)
}

/// Rebuilds, into `out`, the uncompressed tar a layer was applied from, from its tar-split
/// `record` and the files inside `root` (the layer's diff dir), which are opened without
/// following any symlink. A file changed since (size, type, gone) is an error naming it.
/// Returns the bytes written; the caller checks their digest against the diffID.
pub fn reassemble(record: &mut dyn Read, root: &Root, out: &mut dyn Write) -> Result<u64> {
    tarsplit::reassemble(record, root, out)
}

/// Extracts the user's tar `input` (plain, gzip or zstd) into the directory `root`, as
/// `docker cp` does: like [`apply`] (every path resolved inside `root`), except that names
/// starting with `.wh.` are ordinary files, never whiteouts, and that every entry is owned
/// by `owner` when one is given.
pub fn extract(
    root: &Root,
    input: &mut dyn Read,
    owner: Option<(u32, u32)>,
) -> Result<ApplyReport> {
    apply::extract(root, input, owner)
}
