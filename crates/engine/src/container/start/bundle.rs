//! Step 4 of a start: the container's `/etc` files and its OCI bundle
//! (`containers/<id>/bundle/config.json`), with what the hooks prepared in the spec.

use std::path::{Path, PathBuf};

use strata_runtime::NetworkMode;

use super::super::{files, spec, Container, ContainerConfig};
use super::hooks::Prepared;
use crate::error::Result;

/// Writes the bundle of `c` on `rootfs`; its directory.
pub(super) fn write(
    root: &Path,
    dir: &Path,
    c: &Container,
    config: &ContainerConfig,
    rootfs: &Path,
    prepared: Prepared,
) -> Result<PathBuf> {
    files::write_network_files(dir, config, &c.id)?;
    let mut spec = spec::build(root, dir, c, config, rootfs)?;
    if let Some(netns) = prepared.network_namespace {
        spec.network = NetworkMode::Path(netns);
    }
    let bundle = dir.join("bundle");
    match std::fs::create_dir(&bundle) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(
                strata_storage::Error::io(format!("creating {}", bundle.display()), e).into(),
            )
        }
        _ => {}
    }
    strata_runtime::write_bundle(&spec.to_oci()?, &bundle)?;
    Ok(bundle)
}
