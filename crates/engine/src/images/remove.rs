//! `rmi`: untags, then deletes an image no container uses.

use super::Images;
use crate::container::{init_layer, Containers};
use crate::error::{Error, Result};

impl Images<'_> {
    /// `rmi`: the lines Docker prints (`Untagged: ...`, `Deleted: ...`).
    /// Refused while a container uses the image, unless `force` (the containers keep their
    /// layers).
    pub fn remove(&self, name_or_id: &str, force: bool) -> Result<Vec<String>> {
        let images = &self.stores.images;
        let image = images.resolve(name_or_id)?;
        if !force {
            let users = Containers::new(self.stores).of_image(&image.id)?;
            // Removing one of several tags only untags: no container loses its image.
            let untag_only = image.tags.len() > 1
                && name_or_id
                    .parse::<strata_image::Reference>()
                    .is_ok_and(|r| image.tags.contains(&r));
            if let (Some(first), false) = (users.first(), untag_only) {
                return Err(Error::Conflict(format!(
                    "unable to remove image {name_or_id} ({}): container {} uses it{}; remove the containers first (strata rm) or use rmi -f",
                    image.short_id(),
                    &first[..12],
                    match users.len() { 1 => String::new(), n => format!(" (and {} more)", n - 1) },
                )));
            }
        }
        let lines = images.remove(name_or_id, force)?;
        if images.resolve(&image.id).is_err() {
            // The image is gone: so is the init layer kept for its containers, unless one
            // still uses it.
            init_layer::remove_unused(&self.stores.layers, image.top_layer.as_ref())?;
        }
        Ok(lines)
    }
}
