//! `strata check` above the layer store: images against their layers and configs, config
//! blobs and tags no image owns, layer reference counts against everything that holds them,
//! and containers against their rows, directories, writable layers and monitors.
//! [`Engine::repair`] fixes what needs no user decision, through the same code as recovery
//! at open, then re-counts references.

use std::collections::BTreeSet;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};
use strata_image::ImageStore;
use strata_storage::layer_store::{LayerStore, Problem};

use crate::container::{is_id, State};
use crate::error::Result;
use crate::{Engine, EngineOptions, DEFAULT_DRIVER};

/// What `strata check` found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
    /// Layers nothing references (a load or import killed before its image was recorded,
    /// or left by `rmi`): consistent, not problems; `strata prune` reclaims them.
    pub unused_layers: usize,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Engine {
    /// Opens the store without the recovery sweeps of [`Engine::open`]: for `check`, which
    /// reports what a crash left instead of finding it already tidied, and for a container's
    /// monitor, whose starter has just opened (and recovered) the store; sweeping again
    /// would only delay the container's start.
    pub fn open_unrecovered(options: &EngineOptions) -> Result<Engine> {
        let driver = match &options.driver {
            Some(d) => d.clone(),
            None => strata_storage::layer_store::recorded_driver(&options.root)?
                .unwrap_or_else(|| DEFAULT_DRIVER.into()),
        };
        let layers = LayerStore::open_unrecovered(&options.root, &driver, &options.driver_options)?;
        let engine = Engine::assemble(layers, options)?;
        engine.prepare_containers()?;
        Ok(engine)
    }

    /// Every problem of the store; `quick` skips re-hashing layer contents.
    pub fn check(&self, quick: bool) -> Result<CheckReport> {
        let mut problems = self.layers.check(quick)?;
        let images = &self.images;
        problems.extend(self.layers.check_refs(ImageStore::layer_holds, false)?);
        problems.extend(self.check_images(images)?);
        problems.extend(self.check_containers()?);
        let unused_layers = self.layers.layers()?.iter().filter(|l| l.refs == 0).count();
        Ok(CheckReport {
            problems,
            unused_layers,
        })
    }

    /// Fixes every problem `check` calls repairable; returns what it did, one line each.
    /// Never removes an image, a container or a layer anything uses.
    pub fn repair(&self) -> Result<Vec<String>> {
        self.recover_containers()?;
        let mut done = self.layers.repair()?;
        for p in self.layers.check_refs(ImageStore::layer_holds, true)? {
            done.push(format!(
                "{}: reference count set to its users ({})",
                p.object, p.detail
            ));
        }
        let images = &self.images;
        match images.remove_orphan_blobs()? {
            0 => {}
            n => done.push(format!("{n} config blobs of no image removed")),
        }
        match images.remove_dangling_tags()? {
            0 => {}
            n => done.push(format!("{n} tags naming no image removed")),
        }
        Ok(done)
    }

    /// Layers whose reference count differs from what references them (children, images
    /// with it on top, writable layers on it): one line each; empty when consistent.
    pub fn layer_ref_problems(&self) -> Result<Vec<String>> {
        let problems = self.layers.check_refs(ImageStore::layer_holds, false)?;
        Ok(problems
            .into_iter()
            .map(|p| format!("{}: {}", p.object, p.detail))
            .collect())
    }

    fn check_images(&self, images: &ImageStore) -> Result<Vec<Problem>> {
        let mut problems = Vec::new();
        for image in images.images()? {
            let object = format!("image {}", image.id);
            let remedy = format!(
                "remove the image (strata rmi -f {}) and load, import or commit it again",
                image.short_id()
            );
            if let Some(top) = &image.top_layer {
                if self.layers.layer(top).is_err() {
                    let why = format!("its top layer {top} has no row");
                    problems.push(Problem::new("image-layer-missing", &object, why).needs(&remedy));
                    continue;
                }
            }
            if let Err(e) = images.check_image(&image) {
                problems.push(Problem::new("image-config", &object, e.to_string()).needs(&remedy));
            }
        }
        for blob in images.orphan_blobs()? {
            problems.push(Problem::new(
                "orphan-blob",
                blob.display().to_string(),
                "config blob of no image (an image create or rmi interrupted by a crash)",
            ));
        }
        for tag in images.dangling_tags()? {
            problems.push(Problem::new(
                "dangling-tag",
                format!("tag {tag}"),
                "names no image",
            ));
        }
        Ok(problems)
    }

    fn check_containers(&self) -> Result<Vec<Problem>> {
        let mut problems = Vec::new();
        let rows = self.containers(true)?;
        for c in &rows {
            problems.extend(self.check_container(c));
        }
        let ids: BTreeSet<&str> = rows.iter().map(|c| c.id.as_str()).collect();
        let dir = self.layers.root().join("containers");
        let mut leftovers = BTreeSet::new();
        for entry in std::fs::read_dir(&dir)
            .map_err(|e| strata_storage::Error::io(format!("listing {}", dir.display()), e))?
        {
            let name = entry
                .map_err(|e| strata_storage::Error::io(format!("listing {}", dir.display()), e))?
                .file_name();
            let name = name.to_string_lossy().into_owned();
            let id = name
                .strip_prefix(".tmp-")
                .or_else(|| name.strip_prefix('.').and_then(|n| n.strip_suffix(".lock")))
                .unwrap_or(&name);
            if is_id(id) && !ids.contains(id) {
                leftovers.insert((id.to_string(), dir.join(&name).display().to_string()));
            }
        }
        for rw in self.layers.rw_layers()? {
            if is_id(&rw.name) && !ids.contains(rw.name.as_str()) {
                leftovers.insert((rw.name.clone(), format!("writable layer {}", rw.name)));
            }
        }
        for (id, object) in leftovers {
            if !creation_in_progress(&dir, &id) {
                problems.push(Problem::new(
                    "container-leftover",
                    object,
                    format!("part of container {id}, which has no row (a create or rm interrupted by a crash)"),
                ));
            }
        }
        Ok(problems)
    }

    fn check_container(&self, c: &crate::Container) -> Vec<Problem> {
        let object = format!("container {} ({})", c.name, c.short_id());
        let remedy = format!("remove it (strata rm -f {})", c.short_id());
        let dir = self.container_dir(&c.id);
        let mut problems = Vec::new();
        if c.state == State::Dead {
            let why = "marked dead: its directory or writable layer was lost";
            problems.push(Problem::new("container-dead", &object, why).needs(&remedy));
            return problems;
        }
        if !dir.join("config.json").is_file() {
            let why = format!("{} is missing", dir.join("config.json").display());
            problems.push(Problem::new("container-files", &object, why).needs(&remedy));
        }
        if self.layers.rw_layer(&c.rw_layer).is_err() {
            let why = format!("its writable layer {} has no row", c.rw_layer);
            problems.push(Problem::new("container-layer-missing", &object, why).needs(&remedy));
        }
        if c.state == State::Running {
            if !self.monitor_alive(&c.id) {
                let why = "recorded as running, but its monitor is gone";
                problems.push(Problem::new("container-monitor-gone", &object, why));
            } else if !dir.join("bundle").join("config.json").is_file() {
                let why = format!(
                    "running, but its bundle {} is missing",
                    dir.join("bundle").display()
                );
                let remedy = format!("restart it (strata restart {})", c.short_id());
                problems.push(Problem::new("container-bundle", &object, why).needs(remedy));
            }
        }
        problems
    }
}

/// Whether a live process holds container `id`'s creation lock (it is being made now). A
/// probe only: never creates the lock file.
pub(crate) fn creation_in_progress(dir: &Path, id: &str) -> bool {
    let Ok(file) = std::fs::File::open(dir.join(format!(".{id}.lock"))) else {
        return false;
    };
    matches!(
        flock(&file, FlockOperation::NonBlockingLockExclusive),
        Err(rustix::io::Errno::WOULDBLOCK)
    )
}
