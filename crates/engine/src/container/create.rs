//! `create`: a container as a record, without running anything yet: an image, a shared init
//! layer, a writable layer named by the container's ID, a row in the `containers` table and
//! a directory `containers/<id>/` (`config.json`; `hostname`, `hosts` and `resolv.conf` are
//! written there at each start).
//!
//! Creation order, so that a crash at any instant leaves nothing a later command believes
//! in: files in a staging dir `containers/.tmp-<id>`, then the layers, then the dir renamed
//! to `containers/<id>`, then the row, last. The creator holds `containers/.<id>.lock`
//! (`flock`) throughout; at open, recovery (`recover.rs`) removes what an abandoned creation
//! left (dirs and writable layers of an ID with no row, whose lock nobody holds), and marks
//! `dead` the rows whose dir or layer is gone, for `rm` to clean. (The staging dir is not
//! under the store's `tmp/`: every open empties directories there unconditionally, which
//! would race with a creation in another process.)

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use crate::error::IoContext;
use strata_image::Image;
use strata_storage::layer_store::ParentWhenUnused;

use super::lock::CreationLock;
use super::{
    etc_files, init_layer, now_nanos, parse_volume, runtime_spec, store, Container,
    ContainerConfig, Containers, State,
};
use crate::error::{Error, Result};
use crate::names;
use crate::Stores;

impl Containers<'_> {
    /// `create`: a container of `image` (name, ID or prefix) with `config` (validated, then
    /// completed from the image's config), named `name` or a generated name.
    pub fn create(
        &self,
        image: &str,
        mut config: ContainerConfig,
        name: Option<&str>,
    ) -> Result<Container> {
        config.validate()?;
        self.runtime_for(&config)?;
        for v in &config.volumes {
            let v = parse_volume(v)?;
            if v.source.starts_with('/') {
                runtime_spec::check_bind_source(&v.source)?;
            }
        }
        let generated_name = name.is_none();
        let name = match name {
            Some(n) => {
                let n = names::validate(n.strip_prefix('/').unwrap_or(n))?;
                if let Some(other) = self.stores.db.read(|c| store::by_name(c, n))? {
                    return Err(store::name_taken(n, &other));
                }
                n.to_string()
            }
            None => self.generate_name()?,
        };
        let images = &self.stores.images;
        let img = images.resolve(image)?;
        let image_config = images.config(&img.id)?;
        if config.image.is_empty() {
            config.image = image.to_string();
        }
        config.merge_image(image_config.parsed.config().as_ref());
        let image_volumes = image_config
            .parsed
            .config()
            .as_ref()
            .and_then(|c| c.volumes().clone())
            .unwrap_or_default();
        let anonymous = self.name_anonymous_volumes(&mut config, &image_volumes)?;
        let id = strata_sys::id::random_hex(32, "a container ID")?;
        let lock = CreationLock::acquire(&self.containers_dir(), &id)?;
        let made = match self.build_container(&id, &name, generated_name, &img, &config) {
            Ok(made) => made,
            Err(e) => {
                drop(lock);
                for v in &anonymous {
                    let _ = self.volumes().remove(v, true);
                }
                return Err(e);
            }
        };
        // Kept until this process starts it (or ends): until then another process's prune
        // would take the new container for a stopped one.
        self.stores
            .creations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, lock));
        Ok(made)
    }

    /// Lets go of the creation lock of `id` kept since [`Containers::create`].
    pub(crate) fn end_creation(&self, id: &str) {
        let mut kept = self
            .stores
            .creations
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        kept.retain(|(kept_id, _)| kept_id != id);
    }

    /// Gives each `-v /path` (no source) and each of the image's `VOLUME`s that no `-v`
    /// covers an anonymous volume of a random name, as Docker does: the specs become
    /// `NAME:/path` and the volumes exist (empty, filled from the image at first start).
    fn name_anonymous_volumes(
        &self,
        config: &mut ContainerConfig,
        image_volumes: &[String],
    ) -> Result<Vec<String>> {
        let mut specs = Vec::new();
        for spec in &config.volumes {
            let v = parse_volume(spec)?;
            if v.source.is_empty() {
                specs.push((None, v));
            } else {
                specs.push((Some(spec.clone()), v));
            }
        }
        for path in image_volumes {
            let path = path.trim_end_matches('/');
            let path = if path.is_empty() { "/" } else { path };
            if !specs
                .iter()
                .any(|(_, v)| v.destination.trim_end_matches('/') == path)
                && !config
                    .tmpfs
                    .iter()
                    .any(|t| t.split(':').next() == Some(path))
            {
                specs.push((None, parse_volume(path)?));
            }
        }
        let mut made: Vec<String> = Vec::new();
        let mut volumes = Vec::new();
        for (spec, v) in specs {
            match spec {
                Some(spec) => volumes.push(spec),
                None => {
                    let name = strata_sys::id::random_hex(32, "a volume name")?;
                    let created = self.volumes().make(&name, Default::default(), true);
                    if let Err(e) = created {
                        for v in &made {
                            let _ = self.volumes().remove(v, true);
                        }
                        return Err(e);
                    }
                    let mode = if v.read_only { ":ro" } else { "" };
                    volumes.push(format!("{name}:{}{mode}", v.destination));
                    made.push(name);
                }
            }
        }
        config.volumes = volumes;
        Ok(made)
    }

    fn generate_name(&self) -> Result<String> {
        for attempt in 0..16 {
            let name = names::generate_container_name(
                strata_sys::id::random_u64("a container name")?,
                attempt,
            );
            if self.stores.db.read(|c| store::by_name(c, &name))?.is_none() {
                return Ok(name);
            }
        }
        Err(Error::Conflict(
            "could not generate a free container name; pass --name".into(),
        ))
    }

    /// The steps of a creation, undone in reverse on any failure.
    fn build_container(
        &self,
        id: &str,
        name: &str,
        generated_name: bool,
        image: &Image,
        config: &ContainerConfig,
    ) -> Result<Container> {
        let mut undo = Undo::new(self.stores, id);
        let staging = self.containers_dir().join(format!(".tmp-{id}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .ctx_path("creating container directory", &staging)?;
        undo.staging = Some(staging.clone());
        let json = serde_json::to_vec_pretty(config).expect("a config serialises");
        let unsynced = strata_sys::atomic::Durability::Unsynced;
        strata_sys::atomic::write_new(&staging, "config.json", &json, unsynced)?;
        etc_files::sync_staged(&staging)?;
        let init = init_layer::ensure(&self.stores.layers, image.top_layer.as_ref())?;
        let made = self
            .stores
            .layers
            .create_rw(id, Some(&init.chain_id), Some(&image.id));
        self.stores.layers.release_hold(&init.chain_id); // referenced by the writable layer now
        made?;
        undo.rw = true;
        let dir = self.dir(id);
        std::fs::rename(&staging, &dir)
            .ctx(|| format!("renaming {} to {}", staging.display(), dir.display()))?;
        undo.staging = Some(dir);
        strata_storage::fs::sync_dir(&self.containers_dir())?;
        let mut container = Container {
            id: id.to_string(),
            name: name.to_string(),
            image: image.id.clone(),
            rw_layer: id.to_string(),
            created: now_nanos(),
            state: State::Created,
            pid: None,
            exit_code: None,
            started_at: None,
            finished_at: None,
        };
        self.stores.db.write(|tx| {
            if generated_name {
                container.name = store::free_name(tx.sql(), &container.name, |attempt| {
                    Ok(names::generate_container_name(
                        strata_sys::id::random_u64("a container name")?,
                        attempt,
                    ))
                })?;
            }
            store::insert(tx.sql(), &container)
        })?;
        undo.done();
        Ok(container)
    }
}

/// What a creation made so far, removed on drop unless [`Undo::done`].
struct Undo<'a> {
    stores: &'a Stores,
    id: &'a str,
    staging: Option<PathBuf>,
    rw: bool,
}

impl<'a> Undo<'a> {
    fn new(stores: &'a Stores, id: &'a str) -> Self {
        Undo {
            stores,
            id,
            staging: None,
            rw: false,
        }
    }

    fn done(mut self) {
        self.staging = None;
        self.rw = false;
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        let layers = &self.stores.layers;
        if let Some(dir) = &self.staging {
            if let Err(e) = strata_storage::fs::remove_tree(dir) {
                tracing::warn!("removing {} after a failed create: {e}", dir.display());
            }
        }
        // The init layer stays, unused or not: it is the image's, for its next container.
        let undone = if self.rw {
            layers.remove_rw_with(self.id, true, ParentWhenUnused::Keep)
        } else {
            Ok(())
        };
        if let Err(e) = undone {
            tracing::warn!(
                "undoing the layers of container {} (swept at next open): {e}",
                self.id
            );
        }
    }
}
