//! Changes of a layer against its parent, as `docker diff` lists them.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::os::fd::BorrowedFd;
use std::path::Path;

use crate::fs::EntryMeta;
use crate::layout::{ChangeKind, DiffView};
use crate::walk::{naive_diff, DiffSink};

/// One changed path, absolute inside the layer (`/etc/passwd`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path)
    }
}

/// The changes in `view`, sorted by path.
///
/// Overlay form: only the upper dir is walked; whether a path existed below is asked of the
/// matching lower directories (fd-relative, never following symlinks), so the cost follows
/// the size of the layer's changes, not of the image. Full-copy form: both trees are walked.
///
/// Every directory that holds a change and existed in the parent is listed as `C`, as
/// `docker diff` does (`C /etc` for `A /etc/new`); `/` never is. Every added path is listed,
/// children of added directories included; children of deleted ones are not.
///
/// An opaque directory (deleted and re-created in this layer) that existed below is `C`, and
/// each name it hid directly below it is `D`: the same listing a full-copy diff gives, and the
/// one Docker 20.10's overlay2 gives (checked by `bench/docker-parity.sh`).
pub fn changes(view: &DiffView) -> crate::Result<Vec<Change>> {
    let mut found = Found::default();
    match view {
        DiffView::Overlay {
            upper,
            lowers,
            xattrs,
        } => overlay::changes(upper, lowers, *xattrs, &mut found)?,
        DiffView::FullCopy { layer, parent } => naive_diff(layer, parent.as_deref(), &mut found)?,
    }
    Ok(found.finish())
}

/// Changes collected by path (absolute, `/`-rooted).
#[derive(Default)]
struct Found(BTreeMap<String, ChangeKind>);

impl Found {
    fn add(&mut self, rel: &Path, kind: ChangeKind) {
        self.0.insert(abs(rel), kind);
    }

    /// Adds the directories that hold changes, then lists everything in path order.
    fn finish(mut self) -> Vec<Change> {
        let mut parents = Vec::new();
        for path in self.0.keys() {
            let mut p = Path::new(path.as_str()).parent();
            while let Some(dir) = p.filter(|d| *d != Path::new("/")) {
                let dir = dir.to_string_lossy().into_owned();
                if self.0.contains_key(&dir) {
                    break; // Its own parents were or will be handled from it.
                }
                parents.push(dir);
                p = Path::new(parents.last().unwrap()).parent();
            }
        }
        for dir in parents {
            // Not listed itself, so it existed in the parent unchanged.
            self.0.entry(dir).or_insert(ChangeKind::Modified);
        }
        self.0
            .into_iter()
            .map(|(path, kind)| Change { path, kind })
            .collect()
    }
}

fn abs(rel: &Path) -> String {
    format!("/{}", rel.to_string_lossy())
}

impl DiffSink for Found {
    fn present(
        &mut self,
        kind: ChangeKind,
        node: &EntryMeta,
        _: Option<(BorrowedFd<'_>, &OsStr)>,
    ) -> crate::Result<()> {
        self.add(&node.rel, kind);
        Ok(())
    }

    fn deleted(&mut self, rel: &Path) -> crate::Result<()> {
        self.add(rel, ChangeKind::Deleted);
        Ok(())
    }
}

/// The overlay walk: upper only, with the lower directories that match each upper directory.
mod overlay {
    use std::collections::HashSet;
    use std::ffi::OsString;
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
    use std::path::{Path, PathBuf};

    use rustix::fs::Stat;

    use super::{ChangeKind, Found};
    use crate::error::{IoContext, Result};
    use crate::fs::{self, Entry};
    use crate::layout::{is_whiteout, OverlayXattrs};

    pub(super) fn changes(
        upper: &Path,
        lowers: &[PathBuf],
        xattrs: OverlayXattrs,
        found: &mut Found,
    ) -> Result<()> {
        let root = fs::open_dir_path(upper)?;
        let lower_fds = lowers
            .iter()
            .map(|l| fs::open_dir_path(l))
            .collect::<Result<Vec<_>>>()?;
        let mut w = Walk {
            found,
            upper,
            xattrs,
        };
        w.dir(root.as_fd(), &lower_fds, Path::new(""))
    }

    struct Walk<'a> {
        found: &'a mut Found,
        upper: &'a Path,
        /// The namespace of the opaque markers.
        xattrs: OverlayXattrs,
    }

    impl Walk<'_> {
        /// `lowers`: the directories at `rel` in the lower layers that show through, top first.
        fn dir(&mut self, dir: BorrowedFd<'_>, lowers: &[OwnedFd], rel: &Path) -> Result<()> {
            let at = |p: &Path| {
                format!(
                    "listing changes of {}/{}",
                    self.upper.display(),
                    p.display()
                )
            };
            let entries = fs::read_dir(dir).ctx(|| at(rel))?;
            for e in &entries {
                let child = rel.join(&e.name);
                if is_whiteout(&e.stat) {
                    self.found.add(&child, ChangeKind::Deleted);
                    continue;
                }
                let below = find(lowers, &e.name).ctx(|| at(&child))?;
                if !fs::is_dir(&e.stat) {
                    let kind = if below.is_some() {
                        ChangeKind::Modified
                    } else {
                        ChangeKind::Added
                    };
                    self.found.add(&child, kind);
                    continue;
                }
                self.subdir(dir, e, below, lowers, &child)?;
            }
            Ok(())
        }

        fn subdir(
            &mut self,
            dir: BorrowedFd<'_>,
            e: &Entry,
            below: Option<Stat>,
            lowers: &[OwnedFd],
            child: &Path,
        ) -> Result<()> {
            let at = format!("{}/{}", self.upper.display(), child.display());
            let opaque = fs::is_opaque(dir, &e.name, self.xattrs)
                .ctx(|| format!("reading xattrs of {at}"))?;
            let lower_dirs = lower_dirs(lowers, &e.name, self.xattrs)
                .ctx(|| format!("opening the lower directories under {at}"))?;
            match below {
                None => self.found.add(child, ChangeKind::Added),
                Some(_) if opaque => {
                    self.found.add(child, ChangeKind::Modified);
                    self.hidden(dir, e, &lower_dirs, child)?;
                }
                // An unchanged directory is listed only if it holds changes (see `finish`).
                Some(st) if same_dir(&e.stat, &st) => {}
                Some(_) => self.found.add(child, ChangeKind::Modified),
            }
            let sub = fs::open_dir_at(dir, &e.name).ctx(|| format!("opening {at}"))?;
            let shown = if opaque { &[][..] } else { &lower_dirs[..] };
            self.dir(sub.as_fd(), shown, child)
        }

        /// Lists as deleted the names that the opaque `e` hides: those present below it.
        fn hidden(
            &mut self,
            dir: BorrowedFd<'_>,
            e: &Entry,
            lower_dirs: &[OwnedFd],
            child: &Path,
        ) -> Result<()> {
            let at = || {
                format!(
                    "listing what {}/{} hides",
                    self.upper.display(),
                    child.display()
                )
            };
            let sub = fs::open_dir_at(dir, &e.name).ctx(at)?;
            let in_upper: HashSet<OsString> = fs::read_dir(sub.as_fd())
                .ctx(at)?
                .into_iter()
                .map(|e| e.name)
                .collect();
            let mut decided = HashSet::new();
            for lower in lower_dirs {
                for le in fs::read_dir(lower.as_fd()).ctx(at)? {
                    // The topmost lower that has a name decides: a whiteout there means gone.
                    if decided.insert(le.name.clone())
                        && !is_whiteout(&le.stat)
                        && !in_upper.contains(&le.name)
                    {
                        self.found.add(&child.join(&le.name), ChangeKind::Deleted);
                    }
                }
            }
            Ok(())
        }
    }

    /// The first lower that has `name` decides whether it exists below.
    fn find(lowers: &[OwnedFd], name: &std::ffi::OsStr) -> std::io::Result<Option<Stat>> {
        for lower in lowers {
            if let Some(st) = fs::lstat_at(lower.as_fd(), name)? {
                return Ok((!is_whiteout(&st)).then_some(st));
            }
        }
        Ok(None)
    }

    /// The directories `name` in `lowers` that show through: down to the first opaque one, and
    /// not past a non-directory (which hides everything below it).
    fn lower_dirs(
        lowers: &[OwnedFd],
        name: &std::ffi::OsStr,
        xattrs: OverlayXattrs,
    ) -> std::io::Result<Vec<OwnedFd>> {
        let mut out = Vec::new();
        for lower in lowers {
            match fs::lstat_at(lower.as_fd(), name)? {
                None => continue,
                Some(st) if fs::is_dir(&st) => {
                    out.push(fs::open_dir_at(lower.as_fd(), name)?);
                    if fs::is_opaque(lower.as_fd(), name, xattrs)? {
                        break;
                    }
                }
                Some(_) => break,
            }
        }
        Ok(out)
    }

    /// Docker's test for a directory that was only copied up, not changed itself.
    fn same_dir(a: &Stat, b: &Stat) -> bool {
        fs::is_dir(b)
            && a.st_mode == b.st_mode
            && a.st_uid == b.st_uid
            && a.st_gid == b.st_gid
            && a.st_mtime == b.st_mtime
            && a.st_mtime_nsec == b.st_mtime_nsec
    }
}
