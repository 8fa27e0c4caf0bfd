//! overlay2: kernel overlayfs with Docker's on-disk layout under `<root>/overlay2`:
//!
//! ```text
//! <id>/diff/     the layer's own changes (overlay upper-dir form)
//! <id>/link      its 26-character short name
//! <id>/lower     `l/SHORT1:l/SHORT2:...`, topmost parent first (absent for a base layer)
//! <id>/work/     overlay work dir (writable layers only; its presence marks a writable layer)
//! <id>/merged/   the mount point
//! <id>/empty/    the lower of a writable layer with no parent (overlay needs one lower)
//! l/<SHORT>      -> ../<id>/diff, so mount options stay short
//! .tmp/          layers being created or removed, and the open-time test mount
//! .checks.json   cached results of the expensive open-time checks
//! ```
//!
//! A layer is built in `.tmp/` and renamed into place, so a crash never leaves a half-made
//! layer under its id; [`Maintenance::cleanup`] removes what a crash left in `.tmp/` and dangling
//! `l/` links. A writable layer without a parent is an overlay on its own empty `empty/`
//! dir rather than a bind of `diff/`, so every writable layer has the same semantics (copy-up,
//! whiteouts, opaque dirs) and its diff is always in overlay form.

mod checks;
mod consistency;
mod mount;
#[cfg(test)]
mod tests;

use std::os::unix::fs::symlink;

use super::*;
use crate::error::IoContext;
use crate::fs::sync_dir;
use crate::layout::{DiffFormat, OverlayXattrs};
use checks::Status;
use mount::Plan;
use strata_sys::atomic;

const LINK_DIR: &str = "l";
const TMP_DIR: &str = ".tmp";
const SHORT_LEN: usize = 26;
/// overlay2 refuses to run in a user namespace (see `checks`), so overlayfs keeps its
/// markers in the trusted namespace.
const XATTRS: OverlayXattrs = OverlayXattrs::Trusted;

pub struct Overlay2 {
    home: PathBuf,
    status: Status,
}

impl Overlay2 {
    /// Opens (creating if needed) the driver at `home`, after checking the kernel and the
    /// backing filesystem can run it. No `--storage-opt` is supported yet.
    pub fn open(home: &Path, options: &[String]) -> Result<Overlay2> {
        if !options.is_empty() {
            return Err(Error::Unsupported(format!(
                "overlay2 supports no --storage-opt yet (got {}); remove them",
                options.join(", ")
            )));
        }
        checks::before_home()?;
        let home = Self::make_home(home)?;
        let status = checks::on_home(&home)?;
        Ok(Overlay2 { home, status })
    }

    /// Creates the home and its `l/` and `.tmp/` dirs, and returns its real path (mount
    /// options and mountinfo need absolute, canonical paths).
    fn make_home(home: &Path) -> Result<PathBuf> {
        for dir in [home.to_path_buf(), home.join(LINK_DIR), home.join(TMP_DIR)] {
            std::fs::create_dir_all(&dir).ctx_path("creating", &dir)?;
        }
        std::fs::canonicalize(home).ctx_path("resolving", home)
    }

    fn layer_dir(&self, id: &str) -> PathBuf {
        self.home.join(id)
    }

    fn not_found(&self, id: &str) -> Error {
        Error::NotFound(format!(
            "layer {id} does not exist in {}",
            self.home.display()
        ))
    }

    /// The layer's dir, which must exist.
    fn existing_layer(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        let dir = self.layer_dir(id);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(dir),
            Ok(_) => Err(Error::Corrupt(format!(
                "{} is not a directory",
                dir.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(self.not_found(id)),
            Err(e) => Err(Error::io(format!("inspecting {}", dir.display()), e)),
        }
    }

    /// The layer's short name, from its `link` file.
    fn short_name(&self, id: &str) -> Result<String> {
        let path = self.existing_layer(id)?.join("link");
        let text = std::fs::read_to_string(&path).ctx_path("reading", &path)?;
        check_short(&text).map_err(|()| {
            Error::Corrupt(format!(
                "{} holds {text:?}, not a short name",
                path.display()
            ))
        })?;
        Ok(text)
    }

    /// The short names of the layer's parents, topmost first, from its `lower` file.
    fn lower_shorts(&self, id: &str) -> Result<Vec<String>> {
        let path = self.existing_layer(id)?.join("lower");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        text.split(':')
            .map(|entry| match entry.strip_prefix("l/") {
                Some(short) if check_short(short).is_ok() => Ok(short.to_string()),
                _ => Err(Error::Corrupt(format!(
                    "{} holds {entry:?}, not an l/<short name> entry",
                    path.display()
                ))),
            })
            .collect()
    }

    fn short_link(&self, short: &str) -> PathBuf {
        self.home.join(LINK_DIR).join(short)
    }

    /// The diff dir an `l/` link points at, read (not followed) and checked to be
    /// `../<id>/diff` so a tampered link cannot send us elsewhere.
    fn resolve_short(&self, short: &str) -> Result<PathBuf> {
        let link = self.short_link(short);
        let target = std::fs::read_link(&link).ctx_path("reading link", &link)?;
        let id = target
            .strip_prefix("..")
            .ok()
            .and_then(|rest| rest.to_str())
            .and_then(|rest| rest.strip_suffix("/diff"))
            .filter(|id| check_id(id).is_ok())
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "{} points at {}, not ../<id>/diff",
                    link.display(),
                    target.display()
                ))
            })?;
        Ok(self.layer_dir(id).join("diff"))
    }

    /// Where `id` is presented with its parents.
    fn mount_point(&self, id: &str) -> PathBuf {
        self.layer_dir(id).join("merged")
    }

    fn plan(&self, id: &str) -> Result<Plan> {
        let dir = self.existing_layer(id)?;
        let lowers: Vec<PathBuf> = self
            .lower_shorts(id)?
            .iter()
            .map(|s| self.short_link(s))
            .collect();
        let plan = if dir.join("work").is_dir() {
            let lowers = if lowers.is_empty() {
                vec![dir.join("empty")]
            } else {
                lowers
            };
            Plan::Overlay {
                lowers,
                upper: Some((dir.join("diff"), dir.join("work"))),
            }
        } else if lowers.is_empty() {
            Plan::Bind {
                source: dir.join("diff"),
            }
        } else {
            let own = self.short_link(&self.short_name(id)?);
            Plan::Overlay {
                lowers: std::iter::once(own).chain(lowers).collect(),
                upper: None,
            }
        };
        if let Plan::Overlay { lowers, .. } = &plan {
            mount::check_depth(&format!("layer {id}"), lowers.len())?;
        }
        Ok(plan)
    }

    /// `lower` file entries for a child of `parent`: the parent's link, then its lowers.
    fn child_lowers(&self, parent: &str) -> Result<Vec<String>> {
        let own = self.short_name(parent).map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound(format!(
                "parent layer {parent} does not exist in {}",
                self.home.display()
            )),
            other => other,
        })?;
        Ok(std::iter::once(own)
            .chain(self.lower_shorts(parent)?)
            .collect())
    }

    /// Fills the scratch dir `tmp` as layer `id`, linking `l/<short>` to where it will live.
    /// Returns the short name, whose link the caller removes if publishing fails.
    fn build(&self, tmp: &Path, id: &str, lowers: &[String], writable: bool) -> Result<String> {
        let mut dirs = vec!["diff", "merged"];
        if writable {
            dirs.push("work");
            if lowers.is_empty() {
                dirs.push("empty");
            }
        }
        for d in dirs {
            std::fs::create_dir(tmp.join(d)).ctx_path("creating", &tmp.join(d))?;
        }
        if !lowers.is_empty() {
            let text: Vec<String> = lowers.iter().map(|s| format!("l/{s}")).collect();
            write_synced(tmp, "lower", text.join(":").as_bytes())?;
        }
        let short = self.make_short_link(id)?;
        if let Err(e) = write_synced(tmp, "link", short.as_bytes()) {
            let _ = std::fs::remove_file(self.short_link(&short));
            return Err(e);
        }
        Ok(short)
    }

    /// Creates `l/<new short name> -> ../<id>/diff`, retrying on the (unlikely) name clash.
    fn make_short_link(&self, id: &str) -> Result<String> {
        let target = format!("../{id}/diff");
        for _ in 0..8 {
            let short = random_name();
            match symlink(&target, self.short_link(&short)) {
                Ok(()) => {
                    sync_dir(&self.home.join(LINK_DIR))?;
                    return Ok(short);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::io(
                        format!("creating link {}", self.short_link(&short).display()),
                        e,
                    ))
                }
            }
        }
        Err(Error::Conflict(format!(
            "no free short name in {} after 8 tries",
            self.home.display()
        )))
    }

    /// Renames the built layer into place; an id that appeared meanwhile is a conflict.
    fn publish(&self, tmp: &Path, id: &str) -> Result<()> {
        sync_dir(tmp)?;
        let target = self.layer_dir(id);
        match rustix::fs::renameat_with(
            rustix::fs::CWD,
            tmp,
            rustix::fs::CWD,
            &target,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => sync_dir(&self.home),
            Err(rustix::io::Errno::EXIST) => Err(self.exists(id)),
            Err(e) => Err(Error::io(
                format!("renaming {} to {}", tmp.display(), target.display()),
                e.into(),
            )),
        }
    }

    fn exists(&self, id: &str) -> Error {
        Error::Conflict(format!(
            "layer {id} already exists in {}",
            self.home.display()
        ))
    }

    /// A fresh scratch path under `.tmp/` for `id` (not created).
    fn scratch(&self, what: &str, id: &str) -> PathBuf {
        self.home
            .join(TMP_DIR)
            .join(format!("{what}-{id}-{}", random_name()))
    }
}

impl Driver for Overlay2 {
    fn name(&self) -> &'static str {
        "overlay2"
    }

    fn home(&self) -> &Path {
        &self.home
    }

    fn status(&self) -> Vec<(String, String)> {
        let s = &self.status;
        vec![
            ("Backing Filesystem".into(), s.backing_fs.clone()),
            ("Supports d_type".into(), s.d_type.to_string()),
            ("Native Overlay Diff".into(), s.native_diff.to_string()),
            ("userxattr".into(), s.userxattr.to_string()),
        ]
    }

    fn create(&self, id: &str, parent: Option<&str>, kind: LayerKind) -> Result<()> {
        check_id(id)?;
        if std::fs::symlink_metadata(self.layer_dir(id)).is_ok() {
            return Err(self.exists(id));
        }
        let lowers = match parent {
            Some(p) => self.child_lowers(p)?,
            None => Vec::new(),
        };
        // No depth limit here: a layer on any number of parents can be created and filled
        // (its diff dir is written directly); only mounting it meets the kernel's limit.
        let tmp = self.scratch("create", id);
        std::fs::create_dir(&tmp).ctx_path("creating", &tmp)?;
        let writable = kind == LayerKind::Writable;
        let result = self.build(&tmp, id, &lowers, writable).and_then(|short| {
            self.publish(&tmp, id).inspect_err(|_| {
                let _ = std::fs::remove_file(self.short_link(&short));
            })
        });
        if result.is_err() {
            let _ = crate::fs::remove_tree(&tmp);
        }
        result
    }

    fn remove(&self, id: &str) -> Result<()> {
        check_id(id)?;
        let dir = self.layer_dir(id);
        if std::fs::symlink_metadata(&dir).is_err() {
            return Ok(());
        }
        for point in crate::mountinfo::mounts_under(&dir)? {
            mount::unmount_all(&point)?;
        }
        let short = self.short_name(id).ok();
        // Renamed away first, so the id vanishes at once and a crash leaves only .tmp litter.
        let doomed = self.scratch("remove", id);
        match std::fs::rename(&dir, &doomed) {
            // Another process (its recovery sweeping the same orphan) got there first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            other => other.ctx(|| format!("moving {} aside to remove it", dir.display()))?,
        }
        if let Some(short) = short {
            if self.resolve_short(&short).ok() == Some(dir.join("diff")) {
                let link = self.short_link(&short);
                match std::fs::remove_file(&link) {
                    // Dangling once the dir moved: another process's cleanup may take it.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    other => other.ctx_path("removing", &link)?,
                }
            }
        }
        crate::fs::remove_tree(&doomed)
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.home).ctx_path("listing", &self.home)? {
            let entry = entry.ctx_path("listing", &self.home)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != LINK_DIR && !name.starts_with('.') && entry.path().is_dir() {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn mounts(&self, id: &str) -> Result<Vec<Mount>> {
        Ok(vec![self.plan(id)?.to_mount()])
    }

    fn mount(&self, id: &str, durability: Durability) -> Result<PathBuf> {
        self.existing_layer(id)?;
        let target = self.mount_point(id);
        if crate::mountinfo::is_mount_point(&target)? {
            return Ok(target);
        }
        let volatile = durability == Durability::Volatile;
        mount::perform(&self.plan(id)?, &target, volatile)?;
        Ok(target)
    }

    fn unmount(&self, id: &str) -> Result<()> {
        check_id(id)?;
        mount::unmount_all(&self.mount_point(id))
    }

    fn is_mounted(&self, id: &str) -> Result<bool> {
        check_id(id)?;
        Ok(crate::mountinfo::is_mount_point(&self.mount_point(id))?)
    }

    fn dirs(&self, id: &str) -> LayerDirs {
        LayerDirs {
            diff: self.home.join(id).join("diff"),
            mount_point: self.mount_point(id),
            format: DiffFormat::Overlay { xattrs: XATTRS },
        }
    }

    fn diff_view(&self, id: &str, parent: Option<&str>) -> Result<DiffView> {
        let shorts = self.lower_shorts(id)?;
        let recorded = shorts.first();
        let matches = match parent {
            None => recorded.is_none(),
            Some(p) => recorded.is_some_and(|r| self.short_name(p).ok().as_ref() == Some(r)),
        };
        if !matches {
            return Err(Error::Conflict(format!(
                "layer {id} in {} is not a child of {}",
                self.home.display(),
                parent.map_or("nothing (it has a parent)".to_string(), |p| format!(
                    "layer {p}"
                ))
            )));
        }
        let lowers = shorts
            .iter()
            .map(|s| self.resolve_short(s))
            .collect::<Result<_>>()?;
        Ok(DiffView::Overlay {
            upper: self.existing_layer(id)?.join("diff"),
            lowers,
            xattrs: XATTRS,
        })
    }

    fn usage(&self, id: &str) -> Result<Usage> {
        crate::fs::disk_usage(&self.existing_layer(id)?.join("diff"))
    }

    fn maintenance(&self) -> Option<&dyn Maintenance> {
        Some(self)
    }
}

impl Maintenance for Overlay2 {
    /// Removes dangling `l/` links and everything in `.tmp/`. Creates run without the store
    /// lock, and one in flight has exactly such a not-yet-valid link and `.tmp/` dir: callers
    /// must call this only when no layer is being created (see [`Maintenance::cleanup`]).
    fn cleanup(&self) -> Result<()> {
        let links = self.home.join(LINK_DIR);
        for entry in std::fs::read_dir(&links).ctx_path("listing", &links)? {
            let entry = entry.ctx_path("listing", &links)?;
            let short = entry.file_name().to_string_lossy().into_owned();
            let live = self
                .resolve_short(&short)
                .map(|diff| diff.is_dir())
                .unwrap_or(false);
            if !live && entry.file_type().is_ok_and(|t| t.is_symlink()) {
                match std::fs::remove_file(entry.path()) {
                    // The layer's own `remove` in another process (after its commit, outside
                    // the lock) took the link first.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    other => other.ctx_path("removing", &entry.path())?,
                }
            }
        }
        let tmp = self.home.join(TMP_DIR);
        for point in crate::mountinfo::mounts_under(&tmp)? {
            mount::unmount_all(&point)?;
        }
        for entry in std::fs::read_dir(&tmp).ctx_path("listing", &tmp)? {
            let path = entry.ctx_path("listing", &tmp)?.path();
            crate::fs::remove_tree(&path)?;
        }
        Ok(())
    }

    fn check_layer(&self, id: &str, parent: Option<&str>) -> Result<Vec<String>> {
        self.check_records(id, parent)
    }

    fn repair_layer(&self, id: &str, parent: Option<&str>) -> Result<()> {
        self.repair_records(id, parent)
    }

    fn leftovers(&self) -> Result<Vec<(String, String)>> {
        self.cleanup_candidates()
    }
}

fn check_short(short: &str) -> std::result::Result<(), ()> {
    let ok = short.len() == SHORT_LEN
        && short
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    ok.then_some(()).ok_or(())
}

/// A random 26-character name of A-Z and 0-9, like Docker's short links.
fn random_name() -> String {
    const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut name = String::with_capacity(SHORT_LEN);
    let mut buf = [0u8; 64];
    while name.len() < SHORT_LEN {
        getrandom::fill(&mut buf).expect("the kernel's random source is available");
        // 252 = 7 * 36: dropping bytes above it keeps every letter equally likely.
        for b in buf
            .iter()
            .filter(|&&b| b < 252)
            .take(SHORT_LEN - name.len())
        {
            name.push(ALPHABET[usize::from(b % 36)] as char);
        }
    }
    name
}

/// Writes and fsyncs the new file `dir/name`, in a staging dir whose own fsync and rename
/// publish it (no rename of its own needed: nothing sees the dir before).
fn write_synced(dir: &Path, name: &str, contents: &[u8]) -> Result<()> {
    Ok(atomic::write_new(
        dir,
        name,
        contents,
        atomic::Durability::Synced,
    )?)
}

/// Replaces `dir/name` so a crash leaves the old contents or the new, never a torn file.
fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> Result<()> {
    Ok(atomic::write_atomic(
        dir,
        name,
        contents,
        atomic::Durability::Synced,
    )?)
}
