//! vfs: each layer is a full copy of its parent's tree in `<home>/dir/<id>`. Slow and large,
//! but it needs no privileges and no kernel feature, so it works anywhere (and is the
//! reference the overlay2 driver's behaviour is checked against).
//!
//! A new layer is copied into `<home>/dir/.tmp-<id>-<random>` and renamed into place, so a
//! crash never leaves a half copy under a layer's name (ids never start with `.`, see
//! [`check_id`]); [`Maintenance::cleanup`] sweeps leftovers. Nothing is fsynced here: the caller
//! syncs the filesystem before publishing a layer (see [`Driver::create`]).
//! Read-only layers are marked by an empty file `<home>/ro/<id>`, which only decides whether
//! [`Driver::mounts`] says `ro` or `rw`.

use std::collections::HashSet;

use rustix::fs::{self as rfs, Mode};

use super::*;
use crate::error::IoContext;
use crate::fs::{copy, remove_tree};
use crate::layout::DiffFormat;

/// Prefix of a copy in progress; the leading `.` keeps it apart from every valid id.
const TMP_PREFIX: &str = ".tmp-";

pub struct Vfs {
    home: PathBuf,
}

impl Vfs {
    /// Opens (creating if needed) the vfs driver in `home`. vfs takes no options.
    pub fn open(home: &Path, options: &[String]) -> Result<Vfs> {
        if !options.is_empty() {
            return Err(Error::Unsupported(format!(
                "the vfs storage driver takes no storage options, got {options:?}: remove them"
            )));
        }
        for sub in ["dir", "ro"] {
            std::fs::create_dir_all(home.join(sub)).ctx_path("creating", &home.join(sub))?;
        }
        rfs::chmod(home, Mode::from_raw_mode(0o700)).ctx_path("setting mode of", home)?;
        Ok(Vfs {
            home: home.to_path_buf(),
        })
    }

    fn diff_dir(&self, id: &str) -> PathBuf {
        self.home.join("dir").join(id)
    }

    fn ro_marker(&self, id: &str) -> PathBuf {
        self.home.join("ro").join(id)
    }

    fn existing(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        let dir = self.diff_dir(id);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(dir),
            Ok(_) => Err(Error::Corrupt(format!(
                "vfs layer {} is not a directory",
                dir.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound(format!(
                "vfs layer {id} does not exist in {}",
                self.home.display()
            ))),
            Err(e) => Err(Error::io(
                format!("checking vfs layer {}", dir.display()),
                e,
            )),
        }
    }

    fn copy_into_place(&self, id: &str, parent: Option<&Path>) -> Result<()> {
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd)
            .map_err(|e| Error::io("getting random bytes", std::io::Error::other(e.to_string())))?;
        let tmp = self
            .home
            .join("dir")
            .join(format!("{TMP_PREFIX}{id}-{}", hex::encode(rnd)));
        std::fs::create_dir(&tmp).ctx_path("creating", &tmp)?;
        let result = match parent {
            Some(p) => copy::copy_tree(p, &tmp),
            None => rfs::chmod(&tmp, Mode::from_raw_mode(0o755)).ctx_path("setting mode of", &tmp),
        }
        .and_then(|()| std::fs::rename(&tmp, self.diff_dir(id)).ctx_path("publishing", &tmp));
        if result.is_err() {
            let _ = remove_tree(&tmp);
        }
        result
    }
}

impl Driver for Vfs {
    fn name(&self) -> &'static str {
        "vfs"
    }

    fn home(&self) -> &Path {
        &self.home
    }

    fn status(&self) -> Vec<(String, String)> {
        let fs = match rfs::statfs(&self.home) {
            #[allow(clippy::unnecessary_cast)] // f_type is i32 or i64 by architecture.
            Ok(s) => fs_name(s.f_type as i64),
            Err(e) => format!("unknown ({e})"),
        };
        vec![("Backing Filesystem".into(), fs)]
    }

    fn create(&self, id: &str, parent: Option<&str>, kind: LayerKind) -> Result<()> {
        check_id(id)?;
        let writable = kind == LayerKind::Writable;
        if self.diff_dir(id).symlink_metadata().is_ok() {
            return Err(Error::Conflict(format!("vfs layer {id} already exists")));
        }
        let parent_dir = parent.map(|p| self.existing(p)).transpose()?;
        // The marker first: a crash leaves at worst a marker without a layer, which cleanup removes.
        let marker = self.ro_marker(id);
        if !writable {
            std::fs::write(&marker, b"").ctx_path("creating", &marker)?;
        }
        let result = self.copy_into_place(id, parent_dir.as_deref());
        if result.is_err() && !writable {
            let _ = std::fs::remove_file(&marker);
        }
        result
    }

    fn remove(&self, id: &str) -> Result<()> {
        check_id(id)?;
        remove_tree(&self.diff_dir(id))?;
        match std::fs::remove_file(self.ro_marker(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(
                format!("removing {}", self.ro_marker(id).display()),
                e,
            )),
            _ => Ok(()),
        }
    }

    /// The layer's directory is also where it is presented: nothing is mounted.
    fn dirs(&self, id: &str) -> LayerDirs {
        LayerDirs {
            diff: self.diff_dir(id),
            mount_point: self.diff_dir(id),
            format: DiffFormat::FullCopy,
        }
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let dir = self.home.join("dir");
        for e in std::fs::read_dir(&dir).ctx_path("listing", &dir)? {
            let name = e.ctx_path("listing", &dir)?.file_name();
            if let Some(n) = name.to_str().filter(|n| check_id(n).is_ok()) {
                ids.push(n.to_string());
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn mounts(&self, id: &str) -> Result<Vec<Mount>> {
        let dir = self.existing(id)?;
        let mode = if self.ro_marker(id).exists() {
            "ro"
        } else {
            "rw"
        };
        Ok(vec![Mount {
            fs_type: "bind".into(),
            source: dir.to_string_lossy().into_owned(),
            options: vec!["rbind".into(), mode.into()],
        }])
    }

    /// The layer's directory is already its full tree: nothing to mount.
    fn mount(&self, id: &str, _: Durability) -> Result<PathBuf> {
        self.existing(id)
    }

    fn unmount(&self, id: &str) -> Result<()> {
        check_id(id)
    }

    fn is_mounted(&self, id: &str) -> Result<bool> {
        check_id(id)?;
        Ok(false)
    }

    fn diff_view(&self, id: &str, parent: Option<&str>) -> Result<DiffView> {
        let layer = self.existing(id)?;
        let parent = parent.map(|p| self.existing(p)).transpose()?;
        Ok(DiffView::FullCopy { layer, parent })
    }

    fn usage(&self, id: &str) -> Result<Usage> {
        crate::fs::disk_usage(&self.existing(id)?)
    }

    fn maintenance(&self) -> Option<&dyn Maintenance> {
        Some(self)
    }
}

/// vfs keeps no records of its own to check: only scratch copies and markers to sweep.
impl Maintenance for Vfs {
    fn check_layer(&self, _: &str, _: Option<&str>) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn repair_layer(&self, _: &str, _: Option<&str>) -> Result<()> {
        Ok(())
    }

    fn cleanup(&self) -> Result<()> {
        let dir = self.home.join("dir");
        for e in std::fs::read_dir(&dir).ctx_path("listing", &dir)? {
            let name = e.ctx_path("listing", &dir)?.file_name();
            if name.to_string_lossy().starts_with(TMP_PREFIX) {
                let p = dir.join(&name);
                remove_tree(&p)?;
            }
        }
        let ro = self.home.join("ro");
        let layers: HashSet<String> = self.list()?.into_iter().collect();
        for e in std::fs::read_dir(&ro).ctx_path("listing", &ro)? {
            let name = e.ctx_path("listing", &ro)?.file_name();
            if !layers.contains(&*name.to_string_lossy()) {
                let p = ro.join(&name);
                std::fs::remove_file(&p).ctx_path("removing the stray marker", &p)?;
            }
        }
        Ok(())
    }

    fn leftovers(&self) -> Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        let dir = self.home.join("dir");
        for e in std::fs::read_dir(&dir).ctx_path("listing", &dir)? {
            let name = e.ctx_path("listing", &dir)?.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TMP_PREFIX) {
                found.push((
                    format!("dir/{name}"),
                    "copy of an interrupted create".into(),
                ));
            }
        }
        let ro = self.home.join("ro");
        let layers: HashSet<String> = self.list()?.into_iter().collect();
        for e in std::fs::read_dir(&ro).ctx_path("listing", &ro)? {
            let name = e.ctx_path("listing", &ro)?.file_name();
            let name = name.to_string_lossy();
            if !layers.contains(&*name) {
                found.push((format!("ro/{name}"), "read-only marker of no layer".into()));
            }
        }
        Ok(found)
    }
}

/// The backing filesystem as Docker names it in `docker info`.
fn fs_name(magic: i64) -> String {
    match magic {
        0xEF53 => "extfs".into(),
        0x9123683E => "btrfs".into(),
        0x58465342 => "xfs".into(),
        0x01021994 => "tmpfs".into(),
        0x794c7630 => "overlayfs".into(),
        0x2fc12fc1 => "zfs".into(),
        0xF2F52010 => "f2fs".into(),
        other => format!("<unknown> (0x{other:x})"),
    }
}
