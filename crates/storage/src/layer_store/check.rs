//! `strata check` of the layer store: rows against driver dirs, parent chains, the driver's
//! own records (overlay2 `link`/`lower`/`l/`), staging and tar-split leftovers, mount counts
//! against the kernel's mount table, and (unless quick) every layer's content against its
//! diffID. [`LayerStore::repair`] fixes what needs no user decision, starting with exactly
//! what recovery at open does, so a store recovery has run on checks clean here unless
//! something recovery cannot know about is wrong.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::staging::{in_use, live_builders, INFLIGHT};
use super::{db, Layer, LayerStore, RwLayer, TAR_SPLIT_DIR, TAR_SPLIT_SUFFIX};
use crate::error::{Error, IoContext, Result};
use crate::mountinfo;
use crate::Digest;

/// One thing found wrong.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// A short stable name of the kind of problem (`orphan-dir`, `layer-content`, ...).
    pub kind: &'static str,
    /// The object concerned: `layer sha256:...`, `writable layer NAME`, a path, ...
    pub object: String,
    pub detail: String,
    /// `None` when `--repair` fixes it; else what the user has to do.
    pub remedy: Option<String>,
}

impl Problem {
    pub fn new(kind: &'static str, object: impl Into<String>, detail: impl Into<String>) -> Self {
        Problem {
            kind,
            object: object.into(),
            detail: detail.into(),
            remedy: None,
        }
    }

    /// A problem `--repair` cannot fix without losing data: `remedy` says what to do.
    pub fn needs(mut self, remedy: impl Into<String>) -> Self {
        self.remedy = Some(remedy.into());
        self
    }

    pub fn repairable(&self) -> bool {
        self.remedy.is_none()
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.kind, self.object, self.detail)?;
        match &self.remedy {
            None => write!(f, " [--repair fixes this]"),
            Some(r) => write!(f, " [not repairable: {r}]"),
        }
    }
}

const LOST_LAYER: &str =
    "its content is lost: remove the images and containers that use it (strata rmi -f, strata rm -f) and load, import or commit them again";

impl LayerStore {
    /// Every problem of the layer store, the content re-hash included unless `quick`.
    /// Structural checks run under the store lock (a consistent picture); the re-hash runs
    /// without it, so other commands are not held up by it.
    pub fn check(&self, quick: bool) -> Result<Vec<Problem>> {
        let (mut problems, layers, present) = {
            let _guard = self.lock()?;
            self.check_structure()?
        };
        if !quick {
            for layer in layers.iter().filter(|l| present.contains(&l.storage_id)) {
                problems.extend(self.check_content(layer)?);
            }
        }
        Ok(problems)
    }

    fn check_structure(&self) -> Result<(Vec<Problem>, Vec<Layer>, HashSet<String>)> {
        let (layers, rws) = {
            let conn = self.conn();
            (db::layers(&conn)?, db::rws(&conn)?)
        };
        let by_chain: HashMap<_, _> = layers.iter().map(|l| (&l.chain_id, l)).collect();
        let on_disk: HashSet<String> = self.driver.list()?.into_iter().collect();
        let claimed: HashSet<String> = layers
            .iter()
            .map(|l| l.storage_id.clone())
            .chain(rws.iter().map(|r| r.storage_id.clone()))
            .collect();
        let home = self.driver.home().to_path_buf();
        let mut problems = Vec::new();
        let mut orphans: Vec<_> = on_disk.difference(&claimed).collect();
        orphans.sort();
        for id in orphans {
            if !in_use(&self.tmp.join(format!("{id}{INFLIGHT}")))? {
                problems.push(Problem::new(
                    "orphan-dir",
                    home.join(id).display().to_string(),
                    "no layer or writable layer row claims this directory (a create or remove interrupted by a crash)",
                ));
            }
        }
        for l in &layers {
            let object = format!("layer {}", l.chain_id);
            if !on_disk.contains(&l.storage_id) {
                let dir = home.join(&l.storage_id);
                let why = format!("its directory {} is missing", dir.display());
                problems.push(Problem::new("missing-dir", &object, why).needs(LOST_LAYER));
            }
            if let Some(p) = l.parent.as_ref().filter(|p| !by_chain.contains_key(p)) {
                let why = format!("its parent layer {p} has no row");
                problems.push(Problem::new("broken-parent", &object, why).needs(LOST_LAYER));
            }
        }
        for rw in &rws {
            problems.extend(check_rw_rows(rw, &on_disk, &by_chain, &home));
        }
        problems.extend(self.check_driver_records(&layers, &rws, &by_chain, &on_disk)?);
        problems.extend(self.check_leftovers(&claimed)?);
        problems.extend(self.check_mounts(&rws)?);
        Ok((problems, layers, on_disk))
    }

    /// The driver's own records of every layer whose dir and parent exist.
    fn check_driver_records(
        &self,
        layers: &[Layer],
        rws: &[RwLayer],
        by_chain: &HashMap<&Digest, &Layer>,
        on_disk: &HashSet<String>,
    ) -> Result<Vec<Problem>> {
        let mut problems = Vec::new();
        let entries = layers
            .iter()
            .map(|l| (format!("layer {}", l.chain_id), &l.storage_id, &l.parent))
            .chain(rws.iter().map(|r| {
                (
                    format!("writable layer {}", r.name),
                    &r.storage_id,
                    &r.parent,
                )
            }));
        for (object, sid, parent) in entries {
            let parent_sid = match parent {
                Some(p) => match by_chain.get(p) {
                    Some(pl) => Some(pl.storage_id.as_str()),
                    None => continue, // broken-parent, reported above
                },
                None => None,
            };
            if !on_disk.contains(sid) {
                continue;
            }
            let Some(maintenance) = self.driver.maintenance() else {
                continue;
            };
            for why in maintenance.check_layer(sid, parent_sid)? {
                let object = format!("{object} ({})", self.driver.home().join(sid).display());
                problems.push(Problem::new("driver-records", object, why));
            }
        }
        Ok(problems)
    }

    /// Tar-split records no row claims, `tmp/` entries no live process holds, and driver
    /// scratch (only when no layer is being built: a build in flight looks the same).
    fn check_leftovers(&self, claimed: &HashSet<String>) -> Result<Vec<Problem>> {
        let mut problems = Vec::new();
        let splits = self.root.join(TAR_SPLIT_DIR);
        for entry in std::fs::read_dir(&splits).ctx_path("listing", &splits)? {
            let path = entry.ctx_path("listing", &splits)?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let id = name.strip_suffix(TAR_SPLIT_SUFFIX).unwrap_or(name);
            if !claimed.contains(id) && !in_use(&self.tmp.join(format!("{id}{INFLIGHT}")))? {
                problems.push(Problem::new(
                    "orphan-tar-split",
                    path.display().to_string(),
                    "tar-split record of no layer",
                ));
            }
        }
        for entry in std::fs::read_dir(&self.tmp).ctx_path("listing", &self.tmp)? {
            let entry = entry.ctx_path("listing", &self.tmp)?;
            let path = entry.path();
            let is_dir = entry.file_type().ctx_path("stat", &path)?.is_dir();
            if is_dir || !in_use(&path)? {
                problems.push(Problem::new(
                    "staging-leftover",
                    path.display().to_string(),
                    "staging entry no live process holds",
                ));
            }
        }
        if live_builders(&self.tmp)? == 0 {
            let leftovers = match self.driver.maintenance() {
                Some(m) => m.leftovers()?,
                None => Vec::new(),
            };
            for (rel, why) in leftovers {
                let path = self.driver.home().join(rel);
                problems.push(Problem::new(
                    "driver-leftover",
                    path.display().to_string(),
                    why,
                ));
            }
        }
        Ok(problems)
    }

    /// Mount counts against the kernel, and mounts under the root nothing accounts for.
    fn check_mounts(&self, rws: &[RwLayer]) -> Result<Vec<Problem>> {
        let mut problems = Vec::new();
        let mut accounted = HashSet::new();
        // A full-copy layer is presented as its own directory: no kernel mount to compare.
        for rw in rws {
            let dirs = self.driver.dirs(&rw.storage_id);
            if dirs.format.is_overlay() {
                let point = dirs.mount_point;
                let mounted = self.driver.is_mounted(&rw.storage_id)?;
                let object = format!("writable layer {}", rw.name);
                if rw.mount_count > 0 && !mounted {
                    let why = format!(
                        "recorded as mounted {} times, but {} is not mounted",
                        rw.mount_count,
                        point.display()
                    );
                    problems.push(Problem::new("mount-count", object, why));
                } else if rw.mount_count == 0 && mounted {
                    let why = format!(
                        "{} is mounted, but no one holds a mount of it (count 0)",
                        point.display()
                    );
                    problems.push(Problem::new("leftover-mount", object, why));
                }
                accounted.insert(canonical(&point));
            }
        }
        for point in self.stray_mounts(&accounted)? {
            problems.push(Problem::new(
                "leftover-mount",
                point.display().to_string(),
                "mounted inside the store, but no writable layer accounts for it",
            ));
        }
        Ok(problems)
    }

    /// Mount points strictly inside the root that are not in `accounted`.
    fn stray_mounts(&self, accounted: &HashSet<PathBuf>) -> Result<Vec<PathBuf>> {
        let root = canonical(&self.root);
        Ok(mountinfo::mounts_under(&root)?
            .into_iter()
            .filter(|m| *m != root && !accounted.contains(m))
            .collect())
    }

    /// Re-hashes the layer's tar (its exact bytes from the tar-split record, or the export)
    /// against its diffID.
    fn check_content(&self, layer: &Layer) -> Result<Vec<Problem>> {
        match self.layer_tar(&layer.chain_id, &mut std::io::sink()) {
            Ok(_) => Ok(Vec::new()),
            // Removed since the structural pass: nothing left to check.
            Err(Error::NotFound(_)) if db::find_layer(&self.conn(), &layer.chain_id)?.is_none() => {
                Ok(Vec::new())
            }
            Err(e) => Ok(vec![Problem::new(
                "layer-content",
                format!("layer {}", layer.chain_id),
                format!(
                    "re-hashing its content (diffID {}, {}): {e}",
                    layer.diff_id,
                    self.driver.home().join(&layer.storage_id).display()
                ),
            )
            .needs(
                "the layer's files were changed or lost: remove the images and containers that use it (strata rmi -f, strata rm -f) and load, import or commit them again",
            )]),
        }
    }

    /// Layers whose reference count differs from their users: children, writable layers
    /// on them, and what `held` counts in the caller's own tables (images with the layer on
    /// top), all read in one transaction under the store lock. With `fix`, each count is
    /// set to its users (the problems returned are then the ones fixed).
    pub fn check_refs<E: From<Error> + From<strata_meta::Error>>(
        &self,
        held: impl FnOnce(&rusqlite::Connection) -> Result<HashMap<Digest, u64>, E>,
        fix: bool,
    ) -> Result<Vec<Problem>, E> {
        self.db.write(|tx| {
            let layers = db::layers(tx)?;
            let mut users = held(tx)?;
            let parents = layers.iter().filter_map(|l| l.parent.clone());
            let rw_parents = db::rws(tx)?.into_iter().filter_map(|r| r.parent);
            for p in parents.chain(rw_parents) {
                *users.entry(p).or_default() += 1;
            }
            let mut problems = Vec::new();
            for l in &layers {
                let n = users.get(&l.chain_id).copied().unwrap_or(0);
                if n == l.refs {
                    continue;
                }
                problems.push(Problem::new(
                    "ref-count",
                    format!("layer {}", l.chain_id),
                    format!(
                        "{} references recorded, {n} users (child layers, images, writable layers)",
                        l.refs
                    ),
                ));
                if fix {
                    db::set_refs(tx, &l.chain_id, n)?;
                }
            }
            Ok(problems)
        })
    }

    /// Fixes what `check` calls repairable: recovery's sweep (orphans, tar-splits, staging,
    /// driver scratch, mount counts), then the driver's records (parents first), then
    /// mounts nothing accounts for. Returns what it did, one line each.
    pub fn repair(&self) -> Result<Vec<String>> {
        let report = self.recover()?;
        let mut done = describe_recovery(&report);
        let _guard = self.lock()?;
        let (layers, rws) = {
            let conn = self.conn();
            (db::layers(&conn)?, db::rws(&conn)?)
        };
        let sid_of: HashMap<_, _> = layers
            .iter()
            .map(|l| (&l.chain_id, l.storage_id.as_str()))
            .collect();
        let on_disk: HashSet<String> = self.driver.list()?.into_iter().collect();
        // Rows are in creation order, and a parent is always made before its children.
        let entries = layers
            .iter()
            .map(|l| (&l.storage_id, &l.parent))
            .chain(rws.iter().map(|r| (&r.storage_id, &r.parent)));
        for (sid, parent) in entries {
            let parent_sid = match parent {
                Some(p) => match sid_of.get(p) {
                    Some(s) => Some(*s),
                    None => continue,
                },
                None => None,
            };
            let Some(maintenance) = self.driver.maintenance() else {
                continue;
            };
            if on_disk.contains(sid) && !maintenance.check_layer(sid, parent_sid)?.is_empty() {
                maintenance.repair_layer(sid, parent_sid)?;
                done.push(format!(
                    "rebuilt the link and lower records of {}",
                    self.driver.home().join(sid).display()
                ));
            }
        }
        let accounted: HashSet<PathBuf> = rws
            .iter()
            .map(|r| self.driver.dirs(&r.storage_id))
            .filter(|dirs| dirs.format.is_overlay())
            .map(|dirs| canonical(&dirs.mount_point))
            .collect();
        for point in self.stray_mounts(&accounted)? {
            unmount(&point)?;
            done.push(format!("unmounted {}", point.display()));
        }
        Ok(done)
    }
}

fn check_rw_rows(
    rw: &RwLayer,
    on_disk: &HashSet<String>,
    by_chain: &HashMap<&Digest, &Layer>,
    home: &Path,
) -> Vec<Problem> {
    let object = format!("writable layer {}", rw.name);
    let remedy = format!("its changes are lost: remove it (strata rm -f {})", rw.name);
    let mut problems = Vec::new();
    if !on_disk.contains(&rw.storage_id) {
        let why = format!(
            "its directory {} is missing",
            home.join(&rw.storage_id).display()
        );
        problems.push(Problem::new("missing-dir", &object, why).needs(&remedy));
    }
    if let Some(p) = rw.parent.as_ref().filter(|p| !by_chain.contains_key(p)) {
        let why = format!("its parent layer {p} has no row");
        problems.push(Problem::new("broken-parent", &object, why).needs(&remedy));
    }
    problems
}

fn describe_recovery(r: &super::RecoveryReport) -> Vec<String> {
    [
        (r.orphan_dirs_removed, "orphan layer directories removed"),
        (
            r.orphan_tar_splits_removed,
            "orphan tar-split records removed",
        ),
        (r.tmp_entries_removed, "staging leftovers removed"),
        (r.mount_counts_reset, "mount counts reset (not mounted)"),
        (
            r.stray_mounts_unmounted,
            "writable layers with no mount holder unmounted",
        ),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect()
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Unmounts every mount stacked on `point` (lazily if busy: nothing of ours may keep it).
fn unmount(point: &Path) -> Result<()> {
    use rustix::mount::{unmount, UnmountFlags};
    while mountinfo::is_mount_point(point)? {
        match unmount(point, UnmountFlags::empty()) {
            Ok(()) => {}
            Err(rustix::io::Errno::BUSY) => {
                unmount(point, UnmountFlags::DETACH).ctx_path("unmounting (detached)", point)?
            }
            Err(e) => {
                return Err(Error::io(
                    format!("unmounting {}", point.display()),
                    e.into(),
                ))
            }
        }
    }
    Ok(())
}
