//! OCI layer tars in and out of a layer: [`apply`] (any compression, detected from the bytes,
//! diffID computed while streaming) and [`export`] (uncompressed, deterministic), converting
//! whiteouts between the tar form and the layer's on-disk [`crate::layout::DiffFormat`].

mod apply;
pub mod decompress;
mod export;
mod header_limit;
mod tarsplit;
mod tree;

pub use apply::{apply, apply_recording, extract, ApplyReport};
pub use export::export;
pub(crate) use export::export_copying;
pub use tarsplit::reassemble;
pub use tree::{archive_tree, TreeOptions};
