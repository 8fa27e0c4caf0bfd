//! The init layer, like Docker's `<id>-init`: between an image and a container's writable
//! layer, it holds the mount points and files the runtime needs (`/etc/hostname`,
//! `/etc/hosts`, `/etc/resolv.conf` to bind over, `/dev/console`, `/dev/pts`, `/dev/shm`,
//! `/proc`, `/sys`, the `/etc/mtab` link, the `/.dockerenv` marker), so that none of them
//! shows in the container's `diff` or in a `commit`.
//!
//! It is an ordinary read-only layer applied from a tar that is byte-identical every time
//! (fixed owners, modes and times): same tar on the same parent, same chainID, so every
//! container of an image shares one init layer.

use strata_storage::layer_store::{Layer, LayerStore};
use strata_storage::Digest;

use crate::error::{Error, Result};

/// Fixed mtime of every entry (2000-01-01): the tar must not depend on when it is built.
const MTIME: u64 = 946_684_800;

enum Entry {
    Dir(&'static str),
    File(&'static str, u32),
    Link(&'static str, &'static str),
}

/// Parents before children. Existing image directories are listed too so that the applier
/// does not have to invent their modes.
const ENTRIES: &[Entry] = &[
    Entry::File(".dockerenv", 0o755),
    Entry::Dir("dev"),
    Entry::File("dev/console", 0o755),
    Entry::Dir("dev/pts"),
    Entry::Dir("dev/shm"),
    Entry::Dir("etc"),
    Entry::File("etc/hostname", 0o755),
    Entry::File("etc/hosts", 0o755),
    Entry::Link("etc/mtab", "/proc/mounts"),
    Entry::File("etc/resolv.conf", 0o755),
    Entry::Dir("proc"),
    Entry::Dir("sys"),
];

/// The init layer's tar, identical on every call.
pub fn init_tar() -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in ENTRIES {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(0);
        let (path, link) = match entry {
            Entry::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (*p, None)
            }
            Entry::File(p, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                (*p, None)
            }
            Entry::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                (*p, Some(*target))
            }
        };
        let written = match link {
            Some(target) => builder.append_link(&mut h, path, target),
            None => builder.append_data(&mut h, path, std::io::empty()),
        };
        written.map_err(|e| tar_error(path, e))?;
    }
    builder.into_inner().map_err(|e| tar_error("(end)", e))
}

fn tar_error(path: &str, e: std::io::Error) -> Error {
    Error::io(format!("building the init layer tar (entry {path})"), e)
}

/// The init layer on `image_top`, created unless one with its chainID exists. It is kept
/// when its last container goes (with no references: building it again costs a layer
/// creation and a filesystem sync on every `run --rm`), until the image is removed or
/// `prune` reclaims unused layers.
pub fn ensure(layers: &LayerStore, image_top: Option<&Digest>) -> Result<Layer> {
    let tar = init_tar()?;
    let chain = Digest::chain(image_top, &Digest::of_bytes(&tar));
    // Held either way: it has no reference until the container's writable layer is made
    // on it, and a concurrent prune must not take it meanwhile.
    if let Ok(layer) = layers.hold(&chain) {
        return Ok(layer);
    }
    Ok(layers.create_layer(image_top, &mut tar.as_slice())?)
}

/// Removes the init layer on `image_top` if no container uses it (its image is going).
pub fn remove_unused(layers: &LayerStore, image_top: Option<&Digest>) -> Result<()> {
    let chain = Digest::chain(image_top, &Digest::of_bytes(&init_tar()?));
    match layers.remove_if_unused(&chain) {
        Ok(_) | Err(strata_storage::Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tar_is_byte_identical_every_time() {
        let a = init_tar().unwrap();
        assert_eq!(a, init_tar().unwrap());
        let mut archive = tar::Archive::new(a.as_slice());
        let paths: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        for p in [
            ".dockerenv",
            "dev/console",
            "etc/mtab",
            "etc/resolv.conf",
            "sys",
        ] {
            assert!(
                paths.iter().any(|x| x.trim_end_matches('/') == p),
                "{p}: {paths:?}"
            );
        }
    }
}
