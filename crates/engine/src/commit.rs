//! `commit`: a container's changes as a new image, as `docker commit` makes it.
//!
//! The changes of the container's writable layer (against its init layer, so the init
//! layer's files never show) become one new layer on the image's top layer, copied rather
//! than tarred and untarred (see `LayerStore::commit_rw_onto`). The new config is the
//! image's own JSON with the container's process settings, one more diffID, one more history
//! entry and the `-c` changes; fields strata does not model survive untouched. As Docker 20.10
//! does, a container without changes adds no layer: its history entry is `empty_layer`.

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use strata_image::{Image, ImageConfig, Reference};
use strata_storage::Digest;

use crate::container::{Container, ContainerConfig, State};
use crate::error::{Error, Result};
use crate::Engine;

/// What `commit` records besides the layer.
#[derive(Clone, Debug, Default)]
pub struct CommitOptions<'a> {
    /// `REPO[:TAG]` to tag the new image with.
    pub reference: Option<&'a str>,
    /// `-m`: the history entry's comment.
    pub message: Option<&'a str>,
    /// `-a`: the image's and the history entry's author.
    pub author: Option<&'a str>,
    /// `-c`: Dockerfile-style changes (`CMD ["sh"]`, `ENV A=b`, ...).
    pub changes: &'a [String],
    /// `--pause`: freeze a running container while its layer is copied (Docker's default:
    /// true), so the new layer is one point in time; without it the copy is taken live.
    pub pause: bool,
}

/// The diffID of a layer with no changes: an empty tar (two zero blocks), as Docker's
/// `layer.DigestSHA256EmptyTar`.
pub fn empty_tar_diff_id() -> Digest {
    Digest::of_bytes(&[0u8; 1024])
}

impl Engine {
    /// `commit CONTAINER [REPO[:TAG]]`: the new image. Changes are checked first, so a bad
    /// `-c` leaves nothing. A running container is frozen while its layer is copied unless
    /// [`CommitOptions::pause`] is off, and thawed even if the commit fails.
    pub fn commit_container(&self, container: &str, options: &CommitOptions<'_>) -> Result<Image> {
        let reference = options.reference.map(str::parse::<Reference>).transpose()?;
        let changes = strata_image::parse_changes(options.changes)?;
        let c = self.container(container)?;
        if c.state == State::Dead {
            return Err(Error::Conflict(format!(
                "cannot commit container /{} ({}): it is dead (its layer or directory is gone); remove it with strata rm",
                c.name,
                c.short_id()
            )));
        }
        let images = &self.images;
        let image = images.image(&c.image)?;
        let base = images.config(&image.id)?;
        let settings = self.container_config(&c)?;
        let layer = self.paused_if(options.pause, &c, || {
            self.layers
                .commit_rw_onto(&c.rw_layer, image.top_layer.as_ref())
                .map_err(Error::from)
        })?;
        let empty = layer.diff_id == empty_tar_diff_id();
        let result = (|| {
            let diff_id = (!empty).then_some(&layer.diff_id);
            let config =
                child_config(&base, &c, &settings, options, diff_id)?.with_changes(&changes)?;
            let top = if empty {
                image.top_layer.as_ref()
            } else {
                Some(&layer.chain_id)
            };
            Ok::<_, Error>(images.create_image(&config, top, reference.as_slice())?)
        })();
        self.layers.release_hold(&layer.chain_id);
        // A layer nothing took (an empty change, or a failed image) goes now, not at prune.
        if empty || result.is_err() {
            if let Err(e) = self.layers.remove_if_unused(&layer.chain_id) {
                tracing::warn!("removing unused layer {}: {e}", layer.chain_id);
            }
        }
        result
    }
}

impl Engine {
    /// Runs `f` with container `c` frozen when `pause` is set and it is running, so that
    /// what `f` copies is one point in time; thawed afterwards whatever `f` returned. A
    /// container that stopped meanwhile needs no thawing: its exit is not an error.
    fn paused_if<T>(&self, pause: bool, c: &Container, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if !pause || c.state != State::Running {
            return f();
        }
        let runtime = self.runtime_for(&self.container_config(c)?)?;
        if let Err(e) = runtime.pause(&c.id) {
            // Exited since we read its state: nothing to freeze any more.
            if self
                .container(&c.id)
                .is_ok_and(|now| now.state != State::Running)
            {
                return f();
            }
            return Err(e.into());
        }
        let result = f();
        if let Err(e) = runtime.resume(&c.id) {
            // The commit itself is done (or failed on its own): report, as Docker does not
            // fail a commit on its unpause either.
            let stopped = self
                .container(&c.id)
                .is_ok_and(|now| now.state != State::Running);
            if !stopped {
                tracing::error!(
                    "container {} may stay paused after commit: {e}; stop and start it again",
                    c.short_id()
                );
            }
        }
        result
    }
}

/// `base` plus the new layer `diff_id` (`None`: no layer) and its history entry, with the
/// container's process settings as the image's, as Docker's commit merges them.
fn child_config(
    base: &ImageConfig,
    c: &Container,
    settings: &ContainerConfig,
    options: &CommitOptions<'_>,
    diff_id: Option<&Digest>,
) -> Result<ImageConfig> {
    let bad = |why: String| {
        Error::from(strata_image::Error::BadConfig {
            digest: base.digest.to_string(),
            why,
        })
    };
    let mut root: Value = serde_json::from_slice(&base.bytes).map_err(|e| bad(e.to_string()))?;
    let top = root
        .as_object_mut()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    top.insert("created".into(), json!(now));
    top.insert("container".into(), json!(c.id));
    if let Some(author) = options.author {
        top.insert("author".into(), json!(author));
    }
    if let Some(message) = options.message {
        top.insert("comment".into(), json!(message));
    }
    merge_settings(top, settings);
    if let Some(diff_id) = diff_id {
        let rootfs = top
            .entry("rootfs")
            .or_insert_with(|| json!({"type": "layers"}));
        let ids = rootfs
            .as_object_mut()
            .ok_or_else(|| bad("\"rootfs\" is not an object".into()))?
            .entry("diff_ids")
            .or_insert_with(|| json!([]));
        ids.as_array_mut()
            .ok_or_else(|| bad("\"rootfs.diff_ids\" is not an array".into()))?
            .push(json!(diff_id.to_string()));
    }
    let mut entry = Map::new();
    entry.insert("created".into(), json!(now));
    if let Some(author) = options.author {
        entry.insert("author".into(), json!(author));
    }
    // Docker 20.10 records the container's Cmd, joined by spaces.
    entry.insert("created_by".into(), json!(settings.cmd.join(" ")));
    if let Some(message) = options.message {
        entry.insert("comment".into(), json!(message));
    }
    if diff_id.is_none() {
        entry.insert("empty_layer".into(), json!(true));
    }
    let history = top.entry("history").or_insert_with(|| json!([]));
    history
        .as_array_mut()
        .ok_or_else(|| bad("\"history\" is not an array".into()))?
        .push(Value::Object(entry));
    let bytes = serde_json::to_vec(&root).map_err(|e| bad(e.to_string()))?;
    Ok(ImageConfig::from_bytes(bytes)?)
}

/// The container's command, entrypoint, env, workdir and user become the image's (they were
/// completed from the image's at create, so an unchanged setting stays the same).
fn merge_settings(top: &mut Map<String, Value>, s: &ContainerConfig) {
    let config = top.entry("config").or_insert_with(|| json!({}));
    if !config.is_object() {
        *config = json!({});
    }
    let Some(config) = config.as_object_mut() else {
        return;
    };
    if !s.cmd.is_empty() {
        config.insert("Cmd".into(), json!(s.cmd));
    }
    match &s.entrypoint {
        Some(e) if e.is_empty() => {
            config.remove("Entrypoint");
        }
        Some(e) => {
            config.insert("Entrypoint".into(), json!(e));
        }
        None => {}
    }
    if !s.env.is_empty() {
        config.insert("Env".into(), json!(s.env));
    }
    if let Some(w) = &s.workdir {
        config.insert("WorkingDir".into(), json!(w));
    }
    if let Some(u) = &s.user {
        config.insert("User".into(), json!(u));
    }
}
