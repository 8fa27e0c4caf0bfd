//! Named volumes at container start: `-v NAME:/path` is `<root>/volumes/NAME/_data`,
//! created on first use, and filled with what the image has at `/path` while it is empty
//! (as Docker does for a new volume; `volume create` and anonymous volumes make it empty).
//! The volumes' own records are in `crate::volumes`; which containers use a volume is
//! answered here, from the containers' configs.
//!
//! The image's directory is opened inside the container's root filesystem with
//! `RESOLVE_IN_ROOT`, so a symlink in the image cannot point the copy at the host; `cp -a`
//! then copies below that descriptor without following symlinks, keeping owners, modes,
//! times and xattrs. The volume appears only when filled (staging dir, then rename).

use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::IoContext;
use rustix::fs::OFlags;

use super::{parse_volume, store, Container, Containers, Listing};
use crate::error::{Error, Result};
use crate::volumes::Volumes;
use crate::Stores;

impl<'e> Containers<'e> {
    /// The volume verbs, told which containers use a volume.
    pub(crate) fn volumes(&self) -> Volumes<'e> {
        Volumes::new(self.stores, users_on)
    }

    /// Names of the containers whose config mounts volume `name`.
    pub fn using_volume(&self, name: &str) -> Result<Vec<String>> {
        let containers = self.list(Listing::All)?;
        Ok(users_among(self, &containers, name))
    }
}

/// Names of the containers whose config mounts volume `name`, read on `conn` (inside the
/// store transaction of a volume's removal, so no container is created with it meanwhile).
fn users_on(stores: &Stores, conn: &rusqlite::Connection, name: &str) -> Result<Vec<String>> {
    let containers = store::all(conn)?;
    Ok(users_among(&Containers::new(stores), &containers, name))
}

fn users_among(this: &Containers<'_>, containers: &[Container], name: &str) -> Vec<String> {
    let mut users = Vec::new();
    for c in containers {
        let Ok(config) = this.config(c) else {
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

/// `<root>/volumes/<name>/_data`, created and populated from `rootfs` at `destination` if
/// it does not exist yet.
pub fn ensure(root: &Path, name: &str, rootfs: &Path, destination: &str) -> Result<PathBuf> {
    let dir = root.join("volumes").join(name);
    let data = dir.join("_data");
    if data.is_dir() && (!is_empty_dir(&data) || !image_has_content(rootfs, destination)) {
        return Ok(data);
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o701)
        .create(&dir)
        .ctx_path("creating volume directory", &dir)?;
    let staging = dir.join(format!(".tmp-data-{}", std::process::id()));
    if staging.exists() {
        strata_storage::fs::remove_tree(&staging)?;
    }
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&staging)
        .ctx_path("creating", &staging)?;
    // Onto an empty `_data` the rename replaces it; onto one a container filled (or
    // mounted) meanwhile it fails, and that one is kept.
    let filled = populate(rootfs, destination, &staging).and_then(|()| {
        std::fs::rename(&staging, &data)
            .ctx(|| format!("renaming {} to {}", staging.display(), data.display()))
    });
    if let Err(e) = filled {
        let _ = strata_storage::fs::remove_tree(&staging);
        // Another container may have created it at the same time: theirs is as good.
        if data.is_dir() {
            return Ok(data);
        }
        return Err(e);
    }
    Ok(data)
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

/// Whether the image has a non-empty directory at `destination` (resolved inside `rootfs`).
fn image_has_content(rootfs: &Path, destination: &str) -> bool {
    let rel = Path::new(destination.trim_start_matches('/'));
    if rel.as_os_str().is_empty() {
        return false;
    }
    let Ok(root) = strata_storage::fs::Root::open(rootfs) else {
        return false;
    };
    match root.open_in(rel, OFlags::DIRECTORY | OFlags::RDONLY) {
        Ok(fd) => !strata_storage::fs::names(rustix::fd::AsFd::as_fd(&fd))
            .unwrap_or_default()
            .is_empty(),
        Err(_) => false,
    }
}

/// Copies the image's `destination` directory (if any) into `staging`.
fn populate(rootfs: &Path, destination: &str, staging: &Path) -> Result<()> {
    let root = strata_storage::fs::Root::open(rootfs)?;
    let rel = Path::new(destination.trim_start_matches('/'));
    if rel.as_os_str().is_empty() {
        return Ok(());
    }
    let source = match root.open_in(rel, OFlags::DIRECTORY | OFlags::RDONLY) {
        Ok(fd) => fd,
        // Nothing at that path in the image (or not a directory): an empty volume.
        Err(_) => return Ok(()),
    };
    // The mode and owner of the image's directory become the volume's.
    let st = rustix::fs::fstat(&source).ctx_path("stat", &root.path().join(rel))?;
    rustix::fs::chown(
        staging,
        Some(rustix::fs::Uid::from_raw(st.st_uid)),
        Some(rustix::fs::Gid::from_raw(st.st_gid)),
    )
    .ctx_path("chown", staging)?;
    rustix::fs::chmod(
        staging,
        rustix::fs::Mode::from_raw_mode(st.st_mode & 0o7777),
    )
    .ctx_path("chmod", staging)?;
    // Our own fd table, named by pid: cp does not inherit the (close-on-exec) descriptor.
    let from = format!("/proc/{}/fd/{}/.", std::process::id(), source.as_raw_fd());
    let status = Command::new("cp")
        .args(["-a", "--no-target-directory", &from])
        .arg(staging)
        .status()
        .ctx(|| format!("running cp to populate volume {}", staging.display()))?;
    if !status.success() {
        return Err(Error::Invalid(format!(
            "copying the image's {destination} into a new volume failed ({status})"
        )));
    }
    Ok(())
}
