//! What an image archive says about its images, whatever its format: the images with
//! their config and layer blobs by member path, and the checks both formats share. The
//! format modules fill these in; `load` verifies and applies them.

use strata_storage::Digest;

use crate::error::{Error, Result};
use crate::reference::Reference;

/// One image as the archive describes it.
pub(crate) struct Entry {
    /// How errors name it: its first tag, else its config.
    pub name: String,
    /// Member path of the config.
    pub config: String,
    /// What the config must hash to, when the archive says (descriptor or file name).
    pub config_digest: Option<Digest>,
    pub config_size: Option<u64>,
    pub layers: Vec<LayerBlob>,
    pub tags: Vec<Reference>,
}

/// One layer blob of an image, bottom first.
pub(crate) struct LayerBlob {
    pub path: String,
    pub digest: Option<Digest>,
    pub size: Option<u64>,
    pub media_type: Option<String>,
}

/// An image's tags as the archive names them, each checked as a reference.
pub(crate) fn parse_tags(image: &str, tags: &[String]) -> Result<Vec<Reference>> {
    tags.iter()
        .map(|t| {
            t.parse().map_err(|e| {
                Error::Archive(format!("image {image} in the archive has a bad tag: {e}"))
            })
        })
        .collect()
}

/// A small blob must have the size and digest its descriptor gives.
pub(crate) fn check_blob(what: &str, d: &Digest, size: u64, bytes: &[u8]) -> Result<()> {
    let actual = Digest::of_bytes(bytes);
    if actual != *d || bytes.len() as u64 != size {
        return Err(Error::Archive(format!(
            "{what} blob {d} does not match its descriptor (digest {actual}, {} bytes, \
             expected {size}): the archive is corrupt",
            bytes.len()
        )));
    }
    Ok(())
}
