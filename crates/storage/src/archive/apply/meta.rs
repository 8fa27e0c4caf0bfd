//! Entry metadata: owner, mode, times and xattrs read from a tar header and its PAX records,
//! and set on what apply created. Directory times (and, unprivileged, restrictive modes) wait
//! for [`Applier::finish`], since creating children would change them.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::Timespec;
use rustix::io::Errno;

use super::Applier;
use crate::error::{Error, IoContext, Result};
use crate::fs::{self, Node};

const XATTR_PAX_PREFIX: &str = "SCHILY.xattr.";

/// Owner, mode, times and xattrs of one entry, PAX overrides applied.
#[derive(Clone)]
pub(super) struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Timespec,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Applier<'_, '_> {
    pub(super) fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, raw: &Path) -> Result<Meta> {
        let bad = |e: std::io::Error| Error::Archive(format!("entry {}: {e}", raw.display()));
        let header = entry.header();
        let id =
            |v: u64| u32::try_from(v).map_err(|_| bad(std::io::Error::other("owner id too large")));
        let mut meta = Meta {
            uid: id(header.uid().map_err(bad)?)?,
            gid: id(header.gid().map_err(bad)?)?,
            mode: header.mode().map_err(bad)? & 0o7777,
            mtime: Timespec {
                tv_sec: header.mtime().map_err(bad)? as i64,
                tv_nsec: 0,
            },
            xattrs: Vec::new(),
        };
        // `cp` without `-a`: every entry belongs to the given owner.
        if let Some(Some((uid, gid))) = self.plain {
            (meta.uid, meta.gid) = (uid, gid);
        }
        let Some(pax) = entry.pax_extensions().map_err(bad)? else {
            return Ok(meta);
        };
        for ext in pax {
            let ext = ext.map_err(bad)?;
            let Ok(key) = ext.key() else { continue };
            if key == "mtime" {
                meta.mtime = parse_pax_time(ext.value_bytes()).unwrap_or(meta.mtime);
            } else if let Some(name) = key.strip_prefix(XATTR_PAX_PREFIX) {
                if name.starts_with(self.format.private_xattr_prefix()) {
                    tracing::warn!(entry = %raw.display(), xattr = name, "ignoring overlay xattr from the archive");
                } else {
                    meta.xattrs
                        .push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        Ok(meta)
    }

    /// Unprivileged, a directory stays writable by its owner (us) until the end: without
    /// `CAP_DAC_OVERRIDE` its entries could not be created under a mode like 0555.
    pub(super) fn set_dir_meta(
        &mut self,
        fd: BorrowedFd<'_>,
        rel: &Path,
        meta: &Meta,
    ) -> Result<()> {
        let late_mode = (!self.privileges.chown && meta.mode & 0o700 != 0o700).then_some(meta.mode);
        if late_mode.is_some() {
            let now = Meta {
                mode: meta.mode | 0o700,
                ..meta.clone()
            };
            self.set_owner_mode_xattrs(Node::Open(fd), rel, &now)?;
        } else {
            self.set_owner_mode_xattrs(Node::Open(fd), rel, meta)?;
        }
        self.dir_meta
            .push((rel.to_path_buf(), meta.mtime, late_mode));
        Ok(())
    }

    pub(super) fn set_meta(&mut self, node: Node<'_>, rel: &Path, meta: &Meta) -> Result<()> {
        self.set_owner_mode_xattrs(node, rel, meta)?;
        node.set_times(meta.mtime, meta.mtime)
            .ctx(|| format!("setting times of {}", self.root.display(rel)))
    }

    /// chown first: it clears setuid/setgid, which chmod then sets.
    fn set_owner_mode_xattrs(&mut self, node: Node<'_>, rel: &Path, meta: &Meta) -> Result<()> {
        if self.privileges.chown {
            node.chown(meta.uid, meta.gid).ctx(|| {
                format!(
                    "setting owner {}:{} of {}",
                    meta.uid,
                    meta.gid,
                    self.root.display(rel)
                )
            })?;
        }
        node.chmod(meta.mode)
            .ctx(|| format!("setting mode of {}", self.root.display(rel)))?;
        if matches!(node, Node::Symlink { .. }) {
            return Ok(());
        }
        for (name, value) in &meta.xattrs {
            if !self.privileges.may_set_xattr(name.as_bytes()) {
                self.skipped.xattrs += 1;
                continue;
            }
            match node.set_xattr(name, value) {
                Ok(()) => {}
                // As Docker: a filesystem without that namespace is not a reason to fail.
                Err(e @ (Errno::OPNOTSUPP | Errno::PERM)) => {
                    tracing::warn!(path = %rel.display(), xattr = %name, "xattr not applied: {e}")
                }
                Err(e) => {
                    return Err(Error::io(
                        format!("setting xattr {name} on {}", self.root.display(rel)),
                        e.into(),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Sets the directory mtimes (and late modes) collected on the way, now that no child
    /// will change them, and says what an unprivileged apply left out.
    pub(super) fn finish(&mut self) -> Result<()> {
        self.skipped.warn(&format!(
            "applying a layer tar into {}",
            self.root.path().display()
        ));
        // Deepest first: a late mode may take away the permission to reach what is below.
        let mut dirs = std::mem::take(&mut self.dir_meta);
        dirs.reverse();
        for (rel, mtime, late_mode) in dirs {
            let fd = match fs::split_name(&rel) {
                None => self.root.open_dir(&rel)?,
                Some((parent, name)) => {
                    let dir = self.root.open_dir(parent)?;
                    match fs::open_dir_at(dir.as_fd(), name) {
                        Ok(fd) => fd,
                        // Replaced by a later entry or removed by a whiteout.
                        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                        Err(e) => {
                            return Err(Error::io(
                                format!("opening {}", self.root.display(&rel)),
                                e.into(),
                            ))
                        }
                    }
                }
            };
            let node = Node::Open(fd.as_fd());
            if let Some(mode) = late_mode {
                node.chmod(mode)
                    .ctx(|| format!("setting mode of {}", self.root.display(&rel)))?;
            }
            node.set_times(mtime, mtime)
                .ctx(|| format!("setting times of {}", self.root.display(&rel)))?;
        }
        Ok(())
    }
}

/// A PAX time, `seconds[.fraction]`.
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let tv_sec = secs.parse::<i64>().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let tv_nsec = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse::<i64>().ok()?
    };
    // A negative time with a fraction counts the fraction towards zero.
    let (tv_sec, tv_nsec) = if tv_sec < 0 && tv_nsec > 0 {
        (tv_sec - 1, 1_000_000_000 - tv_nsec)
    } else {
        (tv_sec, tv_nsec)
    };
    Some(Timespec { tv_sec, tv_nsec })
}

#[cfg(test)]
mod tests {
    use super::parse_pax_time;

    #[test]
    fn pax_times_keep_their_fraction() {
        let t = |s: &str| parse_pax_time(s.as_bytes()).map(|t| (t.tv_sec, t.tv_nsec));
        assert_eq!(t("1400000003.5"), Some((1_400_000_003, 500_000_000)));
        assert_eq!(t("12"), Some((12, 0)));
        assert_eq!(t("1.1234567891"), Some((1, 123_456_789)));
        assert_eq!(t("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(t("x"), None);
    }
}
