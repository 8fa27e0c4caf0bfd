//! Volumes: `docker volume create/ls/inspect/rm/prune`, and the anonymous volumes of `-v
//! /path` and of an image's `VOLUME`s.
//!
//! A volume is the directory `<root>/volumes/<name>/`: its data in `_data` (what containers
//! mount, filled from the image at first use, see `container::volumes`) and its record in
//! `volume.json` beside it (created time, labels, whether it is anonymous), written
//! atomically. A volume made by `-v NAME:/path` before any `volume create` has no record:
//! it is a volume all the same, created when its directory was. Removal renames the
//! directory out of the way first (`.trash-<name>-<random>`), so a volume is there whole or
//! not at all; leftovers of an interrupted removal are swept at the next listing.
//!
//! Which containers use a volume is read from their configs (`-v` specs): the store lock
//! serialises a removal with a container's creation.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use strata_storage::error::IoContext;

use crate::container::{names, parse_volume};
use crate::error::{Error, Result};
use crate::Engine;
use strata_sys::atomic::{write_atomic, Durability};

/// The only volume driver: directories under the store root.
pub const LOCAL_DRIVER: &str = "local";

const RECORD: &str = "volume.json";

/// What `volume.json` holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Record {
    /// RFC 3339.
    created_at: String,
    labels: BTreeMap<String, String>,
    anonymous: bool,
}

/// A volume as `volume inspect` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Volume {
    pub name: String,
    /// `<root>/volumes/<name>/_data`.
    pub mountpoint: PathBuf,
    /// RFC 3339.
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    /// Made for one container (`-v /path`, an image's VOLUME), removed with `rm -v`.
    pub anonymous: bool,
}

impl Volume {
    /// Docker's `volume inspect` shape.
    pub fn to_docker_json(&self) -> Value {
        json!({
            "CreatedAt": self.created_at,
            "Driver": LOCAL_DRIVER,
            "Labels": self.labels,
            "Mountpoint": self.mountpoint.display().to_string(),
            "Name": self.name,
            "Options": {},
            "Scope": "local",
        })
    }
}

/// What `volume prune` removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VolumePrune {
    pub removed: Vec<String>,
    pub reclaimed_bytes: u64,
}

/// Checks a volume name as Docker does (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
pub fn validate_name(name: &str) -> Result<&str> {
    if name.len() < 2 {
        return Err(Error::InvalidName {
            name: name.into(),
            why: "volume names have at least two characters ([a-zA-Z0-9][a-zA-Z0-9_.-]+)",
        });
    }
    names::validate(name)
}

impl Engine {
    /// `<root>/volumes`.
    pub(crate) fn volumes_dir(&self) -> PathBuf {
        self.layers.root().join("volumes")
    }

    /// `volume create [NAME]`: a new empty volume (a random 64-hex name when `name` is
    /// `None`). Creating a volume that exists returns it unchanged, as Docker does, unless
    /// different labels were asked for.
    pub fn create_volume(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
    ) -> Result<Volume> {
        let name = match name {
            Some(n) => validate_name(n)?.to_string(),
            None => strata_sys::id::random_hex(32, "a volume name")?,
        };
        self.make_volume(&name, labels, false)
    }

    /// Creates volume `name` with its record, unless it exists.
    pub(crate) fn make_volume(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume> {
        if let Some(existing) = self.find_volume(name)? {
            if !labels.is_empty() && labels != existing.labels {
                return Err(Error::Conflict(format!(
                    "volume {name} already exists with other labels; remove it first (volume rm {name}) or pick another name"
                )));
            }
            return Ok(existing);
        }
        let base = self.volumes_dir();
        let dir = base.join(name);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o701)
            .create(&dir)
            .ctx_path("creating volume directory", &dir)?;
        let data = dir.join("_data");
        match std::fs::DirBuilder::new().mode(0o755).create(&data) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(
                    strata_storage::Error::io(format!("creating {}", data.display()), e).into(),
                )
            }
            _ => {}
        }
        let record = Record {
            created_at: now_rfc3339(),
            labels,
            anonymous,
        };
        let bytes = serde_json::to_vec_pretty(&record).expect("a record serialises");
        write_atomic(&dir, RECORD, &bytes, Durability::Synced)?;
        strata_storage::fs::sync_dir(&base)?;
        self.volume(name)
    }

    /// `volume inspect NAME`.
    pub fn volume(&self, name: &str) -> Result<Volume> {
        self.find_volume(name)?.ok_or_else(|| {
            Error::NotFound(format!("no such volume: {name} (see `strata volume ls`)"))
        })
    }

    fn find_volume(&self, name: &str) -> Result<Option<Volume>> {
        if name.starts_with('.') || name.contains('/') || name.is_empty() {
            return Ok(None);
        }
        let dir = self.volumes_dir().join(name);
        let data = dir.join("_data");
        let record_path = dir.join(RECORD);
        let record = match std::fs::read(&record_path) {
            Ok(bytes) => serde_json::from_slice::<Record>(&bytes).map_err(|e| {
                Error::Corrupt(format!(
                    "{}: {e}; remove the volume (strata volume rm {name})",
                    record_path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A volume made by `-v NAME:/path` alone: no record, its dir tells the time.
                let Ok(meta) = std::fs::metadata(&data) else {
                    return Ok(None);
                };
                Record {
                    created_at: meta
                        .modified()
                        .map(|t| {
                            chrono::DateTime::<chrono::Utc>::from(t)
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        })
                        .unwrap_or_default(),
                    ..Default::default()
                }
            }
            Err(e) => {
                return Err(strata_storage::Error::io(
                    format!("reading {}", record_path.display()),
                    e,
                )
                .into())
            }
        };
        Ok(Some(Volume {
            name: name.to_string(),
            mountpoint: data,
            created_at: record.created_at,
            labels: record.labels,
            anonymous: record.anonymous,
        }))
    }

    /// `volume ls`: every volume, by name.
    pub fn volumes(&self) -> Result<Vec<Volume>> {
        let base = self.volumes_dir();
        let entries = match std::fs::read_dir(&base) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(
                    strata_storage::Error::io(format!("listing {}", base.display()), e).into(),
                )
            }
        };
        let mut list = Vec::new();
        for entry in entries {
            let name = entry.ctx_path("listing", &base)?.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".trash-") {
                // An interrupted removal: finish it.
                let _ = strata_storage::fs::remove_tree(&base.join(&*name));
                continue;
            }
            if let Some(v) = self.find_volume(&name)? {
                list.push(v);
            }
        }
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    /// Names of the containers whose config mounts volume `name`.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        let containers = self.containers(true)?;
        Ok(self.users_among(&containers, name))
    }

    fn users_among(&self, containers: &[crate::Container], name: &str) -> Vec<String> {
        let mut users = Vec::new();
        for c in containers {
            let Ok(config) = self.container_config(c) else {
                continue;
            };
            let uses = config
                .volumes
                .iter()
                .filter_map(|spec| parse_volume(spec).ok())
                .any(|v| v.source == name);
            if uses {
                users.push(c.name.clone());
            }
        }
        users
    }

    /// `volume rm [-f] NAME`: refused while a container (running or not) uses it, unless
    /// `force`; a missing volume is an error unless `force`.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        if self.find_volume(name)?.is_none() {
            if force {
                return Ok(());
            }
            return Err(Error::NotFound(format!(
                "no such volume: {name} (see `strata volume ls`)"
            )));
        }
        // Under the store lock: no container can be created with it meanwhile.
        self.db.write(|tx| {
            let containers = crate::container::all_on(tx.sql())?;
            let users = self.users_among(&containers, name);
            if let (Some(first), false) = (users.first(), force) {
                return Err(Error::Conflict(format!(
                    "remove {name}: volume is in use by container {first}{}; remove the container first (strata rm {first}) or use volume rm -f",
                    match users.len() {
                        1 => String::new(),
                        n => format!(" (and {} more)", n - 1),
                    }
                )));
            }
            self.delete_volume_dir(name)
        })
    }

    /// Renames the volume's directory away, then removes it.
    fn delete_volume_dir(&self, name: &str) -> Result<()> {
        let base = self.volumes_dir();
        let dir = base.join(name);
        let trash = base.join(format!(
            ".trash-{name}-{}",
            &strata_sys::id::random_hex(32, "a volume name")?[..12]
        ));
        match std::fs::rename(&dir, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(strata_storage::Error::io(
                    format!("removing volume {name} ({})", dir.display()),
                    e,
                )
                .into())
            }
        }
        strata_storage::fs::sync_dir(&base)?;
        strata_storage::fs::remove_tree(&trash)?;
        Ok(())
    }

    /// `volume prune`: volumes no container uses; anonymous ones only unless `all`, as
    /// Docker 23 and later do. `keep` filters further (labels).
    pub fn prune_volumes(&self, all: bool, keep: &dyn Fn(&Volume) -> bool) -> Result<VolumePrune> {
        let mut report = VolumePrune::default();
        for v in self.volumes()? {
            if (!all && !v.anonymous) || keep(&v) {
                continue;
            }
            let size = dir_size(&v.mountpoint);
            match self.remove_volume(&v.name, false) {
                Ok(()) => {
                    report.removed.push(v.name);
                    report.reclaimed_bytes += size;
                }
                Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// Removes the anonymous volumes among `specs` that no other container uses (`rm -v`).
    pub(crate) fn remove_anonymous_volumes(&self, specs: &[String]) {
        for spec in specs {
            let Ok(v) = parse_volume(spec) else { continue };
            let anonymous = matches!(self.find_volume(&v.source), Ok(Some(vol)) if vol.anonymous);
            if anonymous {
                if let Err(e) = self.remove_volume(&v.source, false) {
                    tracing::warn!("keeping anonymous volume {}: {e}", v.source);
                }
            }
        }
    }
}

/// Bytes of the regular files under `dir` (not following symlinks).
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) if m.is_file() => total += m.len(),
                _ => {}
            }
        }
    }
    total
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_dockers() {
        assert!(validate_name("data").is_ok());
        assert!(validate_name("a_b.c-1").is_ok());
        for bad in ["a", "", "-x", "a/b", ".hidden", "a b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
