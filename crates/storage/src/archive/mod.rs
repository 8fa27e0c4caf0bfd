//! OCI layer tars in and out of a layer: [`apply`] (any compression, detected from the bytes,
//! diffID computed while streaming) and [`export`] (uncompressed, deterministic), converting
//! whiteouts between the tar form and the driver's on-disk form.

use std::io::{Read, Write};
use std::path::Path;

use crate::digest::Digest;
use crate::driver::{DiffFormat, DiffView};
use crate::error::Result;

mod apply;
pub mod decompress;
mod export;
pub mod whiteout;

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
