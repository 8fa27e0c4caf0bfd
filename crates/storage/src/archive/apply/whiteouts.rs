//! Whiteout entries (`.wh.<name>`, `.wh..wh..opq`) converted to the layer's on-disk form:
//! overlay's 0/0 char devices and opaque xattr, or real deletions in a full-copy layer.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, FileType, Mode};

use super::Applier;
use crate::error::{Error, IoContext, Result};
use crate::fs::Node;
use crate::layout::{DiffFormat, OPAQUE_MARKER, WHITEOUT_PREFIX};

impl Applier<'_, '_> {
    pub(super) fn whiteout(&mut self, rel: &Path, header: &tar::Header) -> Result<()> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        let name = rel.file_name().unwrap_or_default().as_bytes();
        if name == OPAQUE_MARKER.as_bytes() {
            return self.opaque(parent);
        }
        if name.starts_with(b".wh..wh.") {
            // AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): meaningless outside AUFS.
            tracing::warn!(entry = %rel.display(), "skipping AUFS metadata entry");
            return Ok(());
        }
        let hidden = OsStr::from_bytes(&name[WHITEOUT_PREFIX.len()..]);
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(Error::PathEscape(rel.display().to_string()));
        }
        let hidden_rel = parent.join(hidden);
        match self.format {
            DiffFormat::FullCopy => {
                self.parent_cache = None;
                Ok(self.root.remove_all(&hidden_rel)?)
            }
            DiffFormat::Overlay { .. } => self.overlay_whiteout(&hidden_rel, header),
        }
    }

    /// An overlay whiteout: a 0/0 character device in place of the deleted name.
    fn overlay_whiteout(&mut self, rel: &Path, header: &tar::Header) -> Result<()> {
        let dir = self.parent(rel)?;
        let name = rel.file_name().unwrap_or_default();
        let dev = rfs::makedev(0, 0);
        self.replacing(dir.as_fd(), rel, || {
            rfs::mknodat(
                dir.as_fd(),
                name,
                FileType::CharacterDevice,
                Mode::empty(),
                dev,
            )
        })?;
        if self.privileges.chown {
            let id =
                |v: std::io::Result<u64>| v.ok().and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
            let (uid, gid) = (id(header.uid()), id(header.gid()));
            // chownat without following: the same call a symlink gets.
            Node::Symlink {
                dir: dir.as_fd(),
                name,
            }
            .chown(uid, gid)
            .ctx(|| format!("setting owner of whiteout {}", self.root.display(rel)))?;
        }
        Ok(())
    }

    /// An opaque directory: overlay marks it with an xattr; a full copy really empties it of
    /// everything this apply did not itself put there (in any of its subdirectories too:
    /// overlay hides all the lower content under an opaque directory).
    fn opaque(&mut self, dir_rel: &Path) -> Result<()> {
        let dir = self.root.create_dir_all(dir_rel, 0o755)?;
        match self.format {
            DiffFormat::Overlay { xattrs } => {
                rfs::fsetxattr(&dir, xattrs.opaque(), b"y", rfs::XattrFlags::empty())
                    .ctx(|| format!("marking {} opaque", self.root.display(dir_rel)))
            }
            DiffFormat::FullCopy => {
                self.parent_cache = None;
                let Some(epoch) = &self.epoch else {
                    return Err(Error::Archive(format!(
                        "opaque marker in {}: not a layer apply",
                        self.root.display(dir_rel)
                    )));
                };
                epoch
                    .prune(dir.as_fd(), &mut dir_rel.to_path_buf())
                    .map(drop)
                    .ctx(|| format!("emptying opaque directory {}", self.root.display(dir_rel)))
            }
        }
    }
}
