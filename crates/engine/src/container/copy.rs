//! `cp`: files in and out of a container (created, running or stopped), with `docker cp`'s
//! rules for trailing `/` and `/.`, file-to-dir and dir-to-dir, `-` tar streams, `-a` and `-L`.
//!
//! Both directions are a tar stream between two trees, as in Docker: one side writes the
//! source with [`archive::archive_tree`] (never following a symlink below the top), the other
//! extracts it with [`archive::extract`] (whiteout names kept as plain files) into a
//! destination directory held open as a [`Root`]. Every container-side path is resolved in
//! the container's merged root: parents with `openat2(RESOLVE_IN_ROOT)`, a final symlink
//! (when followed) by reading it and resolving its target again inside the root, so `/`,
//! `..` or `/etc` in a link mean the container's, never the host's. The extraction itself is
//! rooted at the destination directory, so a hostile tar cannot leave it either.
//!
//! The writable layer is mounted for the copy (one more reference if the container runs)
//! and released after.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::Stat;
use strata_storage::archive::{self, TreeOptions};
use strata_storage::error::IoContext;
use strata_storage::fs::{self as sfs, Root};

use crate::error::{Error, Result};
use crate::Engine;

/// `-a` and `-L`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CopyOptions {
    /// Keep the source's owners (`-a`); otherwise files copied in belong to root and files
    /// copied out to the caller, as Docker does.
    pub archive: bool,
    /// Follow a symlink named as the source (`-L`).
    pub follow: bool,
}

/// The host side of a copy out of a container.
pub enum HostDest<'a> {
    Path(&'a Path),
    /// `-`: the source as a tar stream.
    Stream(&'a mut dyn Write),
}

/// The host side of a copy into a container.
pub enum HostSource<'a> {
    Path(&'a Path),
    /// `-`: a tar stream, extracted into the destination directory.
    Stream(&'a mut dyn Read),
}

/// A path as the user wrote it: cleaned, and whether it ended in `/` or `/.`.
#[derive(Debug, PartialEq)]
struct PathSpec {
    /// Relative, without `.` or `..` (clamped at the root, as `filepath.Clean` of `/x`).
    rel: PathBuf,
    /// Ends in `/` or `/.`: must be a directory (a symlink there is followed).
    dir_only: bool,
    /// Ends in `/.`: the contents of the directory, not the directory itself.
    contents: bool,
}

fn parse_spec(path: &str) -> PathSpec {
    let mut rel = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::ParentDir => {
                rel.pop();
            }
            _ => {}
        }
    }
    let contents = path == "." || path.ends_with("/.");
    PathSpec {
        rel,
        dir_only: contents || path.ends_with('/'),
        contents,
    }
}

/// An entry of a tree: `name` in directory `dir` (kept open), or the tree's top directory.
struct Located {
    dir: OwnedFd,
    name: Option<OsString>,
    /// `None`: does not exist.
    stat: Option<Stat>,
    /// For messages.
    shown: String,
}

impl Located {
    fn is_dir(&self) -> bool {
        self.stat.as_ref().is_some_and(sfs::is_dir)
    }

    /// The tar name the source gets when copied as a whole: its own name.
    fn base(&self) -> PathBuf {
        PathBuf::from(self.name.clone().unwrap_or_else(|| "/".into()))
    }
}

/// How many symlinks a resolution follows before giving up, as the kernel's `ELOOP` limit.
const MAX_LINKS: usize = 40;

/// Resolves `rel` inside `root`; a final symlink is followed (inside the root) if `follow`.
fn resolve_in(root: &Root, rel: &Path, follow: bool) -> Result<Located> {
    let mut rel = rel.to_path_buf();
    for _ in 0..MAX_LINKS {
        let Some((parent, name)) = sfs::split_name(&rel) else {
            let dir = root.open_dir(Path::new(""))?;
            let stat = rustix::fs::fstat(&dir).ctx(|| format!("stat {}", root.display(&rel)))?;
            return Ok(Located {
                dir,
                name: None,
                stat: Some(stat),
                shown: "/".into(),
            });
        };
        let dir = match root.open_dir(parent).map_err(strata_storage::Error::from) {
            Ok(dir) => dir,
            Err(e) if is_missing(&e) => return Err(missing_parent(&rel, e)),
            Err(e) => return Err(e.into()),
        };
        let stat =
            sfs::lstat_at(dir.as_fd(), name).ctx(|| format!("stat {}", root.display(&rel)))?;
        let link = stat.as_ref().map(sfs::file_type) == Some(rustix::fs::FileType::Symlink);
        if !(follow && link) {
            return Ok(Located {
                dir,
                name: Some(name.to_os_string()),
                stat,
                shown: format!("/{}", rel.display()),
            });
        }
        let target = sfs::read_link_at(dir.as_fd(), name)
            .ctx(|| format!("reading symlink {}", root.display(&rel)))?;
        // An absolute target starts again at the container's root; a relative one at the
        // link's directory. `..` is clamped at the root, as the kernel does with IN_ROOT.
        let joined = parent.join(&target);
        rel = parse_spec(&joined.to_string_lossy()).rel;
        if Path::new(&target).is_absolute() {
            rel = parse_spec(&target.to_string_lossy()).rel;
        }
    }
    Err(Error::Invalid(format!(
        "too many levels of symbolic links resolving /{}",
        rel.display()
    )))
}

fn is_missing(e: &strata_storage::Error) -> bool {
    matches!(e, strata_storage::Error::Io { cause, .. }
        if matches!(cause.raw_os_error(), Some(c) if c == rustix::io::Errno::NOENT.raw_os_error() || c == rustix::io::Errno::NOTDIR.raw_os_error()))
}

fn missing_parent(rel: &Path, e: strata_storage::Error) -> Error {
    Error::NotFound(format!(
        "the directory of /{} does not exist (or is not a directory): {e}",
        rel.display()
    ))
}

/// Resolves a host path the way the host does (it is the caller's own filesystem); only a
/// final symlink is left alone unless `follow`.
fn resolve_host(spec_path: &Path, follow: bool) -> Result<Located> {
    let shown = spec_path.display().to_string();
    let absolute = std::path::absolute(spec_path).ctx_path("resolving", spec_path)?;
    let (parent, name) = match (absolute.parent(), absolute.file_name()) {
        (Some(p), Some(n)) if !follow => (p.to_path_buf(), Some(n.to_os_string())),
        _ => match std::fs::canonicalize(&absolute) {
            Ok(real) => match (real.parent(), real.file_name()) {
                (Some(p), Some(n)) => (p.to_path_buf(), Some(n.to_os_string())),
                _ => (real.clone(), None),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let p = absolute.parent().unwrap_or(Path::new("/")).to_path_buf();
                (p, absolute.file_name().map(OsStr::to_os_string))
            }
            Err(e) => return Err(strata_storage::Error::io(format!("resolving {shown}"), e).into()),
        },
    };
    let dir = match sfs::open_dir_path(&parent) {
        Ok(fd) => fd,
        Err(e) if is_missing(&e) => {
            return Err(Error::NotFound(format!(
                "{} does not exist (or is not a directory)",
                parent.display()
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let stat = match &name {
        Some(n) => sfs::lstat_at(dir.as_fd(), n).ctx(|| format!("stat {shown}"))?,
        None => Some(rustix::fs::fstat(&dir).ctx(|| format!("stat {shown}"))?),
    };
    Ok(Located {
        dir,
        name,
        stat,
        shown,
    })
}

/// Where a copy's tar is extracted, and the name its top entry gets there.
struct Target {
    root: Root,
    as_name: PathBuf,
}

/// Docker's rules: an existing directory receives the source (or its contents with `/.`);
/// an existing file is replaced by a file; a missing path is created (a directory source
/// becomes it), but never a missing directory named with a trailing `/`.
fn target(dest: Located, dest_spec: &PathSpec, src: &Located, contents: bool) -> Result<Target> {
    let shown = dest.shown.clone();
    if dest.is_dir() {
        let as_name = if contents { PathBuf::new() } else { src.base() };
        return Ok(Target {
            root: dir_root(dest)?,
            as_name,
        });
    }
    if dest.stat.is_some() {
        if src.is_dir() {
            return Err(Error::Invalid(format!(
                "cannot copy a directory ({}) to a file ({shown})",
                src.shown
            )));
        }
    } else if dest_spec.dir_only && !src.is_dir() {
        return Err(Error::NotFound(format!(
            "destination directory {shown} does not exist; create it first"
        )));
    }
    let Some(name) = dest.name.clone() else {
        return Err(Error::Invalid(format!("{shown} is not a directory")));
    };
    Ok(Target {
        root: Root::from_fd(dest.dir, PathBuf::from(&shown)),
        as_name: PathBuf::from(name),
    })
}

/// The directory `located` names, as a root to extract into.
fn dir_root(located: Located) -> Result<Root> {
    let shown = located.shown;
    let fd = match &located.name {
        Some(n) => sfs::open_dir_at(located.dir.as_fd(), n).ctx(|| format!("opening {shown}"))?,
        None => located.dir,
    };
    Ok(Root::from_fd(fd, PathBuf::from(shown)))
}

/// Streams the tar of `src` (top named `as_name`) into `root` through a pipe: the writer
/// runs on its own thread, so neither side is held in memory.
fn pipe_copy(src: &Located, as_name: &Path, owner: Option<(u32, u32)>, to: &Target) -> Result<()> {
    let (mut reader, mut writer) =
        std::io::pipe().ctx(|| "creating a pipe for the copy".to_string())?;
    let options = TreeOptions { owner };
    std::thread::scope(|s| {
        let written = s.spawn(move || {
            archive::archive_tree(
                src.dir.as_fd(),
                src.name.as_deref(),
                as_name,
                &options,
                &src.shown,
                &mut writer,
            )
        });
        let extracted = archive::extract(&to.root, &mut reader, None);
        drop(reader); // a writer still going gets EPIPE rather than blocking
        let written = written.join().expect("the archiving thread panicked");
        // The writer's own failure explains a truncated stream; otherwise the reader's.
        match (written, extracted) {
            (Err(w), Err(_)) => Err(w.into()),
            (_, Err(e)) => Err(e.into()),
            (Err(w), Ok(_)) => Err(w.into()),
            (Ok(()), Ok(_)) => Ok(()),
        }
    })
}

/// Releases a writable layer mounted for a copy.
struct Mounted<'a> {
    engine: &'a Engine,
    layer: String,
    path: PathBuf,
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.engine.layers.unmount_rw(&self.layer, false) {
            tracing::warn!("unmounting writable layer {} after a copy: {e}", self.layer);
        }
    }
}

impl Engine {
    fn mount_for_copy(&self, container: &str) -> Result<Mounted<'_>> {
        let c = self.container(container)?;
        if c.state == crate::State::Dead {
            return Err(Error::Conflict(format!(
                "container {} is dead (its data is gone); remove it with strata rm",
                c.name
            )));
        }
        let path = self.layers.mount_rw(&c.rw_layer)?;
        Ok(Mounted {
            engine: self,
            layer: c.rw_layer,
            path,
        })
    }

    /// `cp CONTAINER:SRC DEST|-`.
    pub fn copy_from_container(
        &self,
        container: &str,
        src: &str,
        dest: HostDest<'_>,
        options: CopyOptions,
    ) -> Result<()> {
        let mounted = self.mount_for_copy(container)?;
        let root = Root::open(&mounted.path)?;
        let spec = parse_spec(src);
        let source = resolve_in(&root, &spec.rel, options.follow || spec.dir_only)?;
        check_source(&source, &spec, &format!("in container {container}"))?;
        let contents = spec.contents || source.name.is_none();
        match dest {
            HostDest::Stream(out) => {
                let as_name = if contents {
                    PathBuf::new()
                } else {
                    source.base()
                };
                let owner = None; // the stream carries the container's owners, as Docker's
                archive::archive_tree(
                    source.dir.as_fd(),
                    source.name.as_deref(),
                    &as_name,
                    &TreeOptions { owner },
                    &source.shown,
                    out,
                )?;
                Ok(())
            }
            HostDest::Path(path) => {
                let dest_spec = parse_spec(&path.to_string_lossy());
                let dest = resolve_host(path, true)?;
                let to = target(dest, &dest_spec, &source, contents)?;
                let owner = (!options.archive).then(caller_ids);
                pipe_copy(&source, &to.as_name, owner, &to)
            }
        }
    }

    /// `cp SRC|- CONTAINER:DEST`.
    pub fn copy_to_container(
        &self,
        container: &str,
        src: HostSource<'_>,
        dest: &str,
        options: CopyOptions,
    ) -> Result<()> {
        let mounted = self.mount_for_copy(container)?;
        let root = Root::open(&mounted.path)?;
        let dest_spec = parse_spec(dest);
        // The destination is looked up as Docker does, following a final symlink (inside
        // the container): copying to `/link` where `link -> /etc` writes into its /etc.
        let located = resolve_in(&root, &dest_spec.rel, true)?;
        let owner = (!options.archive).then_some((0, 0));
        match src {
            HostSource::Stream(input) => {
                if !located.is_dir() {
                    return Err(Error::Invalid(format!(
                        "destination {dest} in container {container} must be an existing directory to extract a tar stream into"
                    )));
                }
                archive::extract(&dir_root(located)?, input, owner)?;
                Ok(())
            }
            HostSource::Path(path) => {
                let spec = parse_spec(&path.to_string_lossy());
                let source = resolve_host(path, options.follow || spec.dir_only)?;
                check_source(&source, &spec, "on the host")?;
                let contents = spec.contents || source.name.is_none();
                let to = target(located, &dest_spec, &source, contents)?;
                pipe_copy(&source, &to.as_name, owner, &to)
            }
        }
    }
}

/// What `HEAD /containers/{id}/archive` tells about a path (Docker's `PathStat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathStat {
    /// The last component (`/` for the root).
    pub name: String,
    pub size: u64,
    /// The raw `st_mode` (type and permission bits).
    pub mode: u32,
    /// Unix seconds and nanoseconds.
    pub mtime: (i64, u32),
    /// For a symlink: where it leads, resolved inside the container (absolute).
    pub link_target: String,
}

impl Engine {
    /// The stat of `path` in the container (not following a final symlink; its resolved
    /// target in `link_target`), resolved inside its root as `cp` does.
    pub fn container_path_stat(&self, container: &str, path: &str) -> Result<PathStat> {
        let mounted = self.mount_for_copy(container)?;
        let root = Root::open(&mounted.path)?;
        let spec = parse_spec(path);
        let located = resolve_in(&root, &spec.rel, false)?;
        let Some(stat) = located.stat else {
            return Err(Error::NotFound(format!(
                "could not find the file {path} in container {container}"
            )));
        };
        let mut link_target = String::new();
        if sfs::file_type(&stat) == rustix::fs::FileType::Symlink {
            let target = resolve_in(&root, &spec.rel, true)?;
            link_target = target.shown;
        }
        Ok(PathStat {
            name: located
                .name
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "/".into()),
            size: stat.st_size as u64,
            mode: stat.st_mode,
            mtime: (stat.st_mtime, stat.st_mtime_nsec as u32),
            link_target,
        })
    }
}

/// The source exists, and is a directory if it was named with a trailing `/`.
fn check_source(source: &Located, spec: &PathSpec, where_: &str) -> Result<()> {
    if source.stat.is_none() {
        return Err(Error::NotFound(format!(
            "could not find {} {where_}: no such file or directory",
            source.shown
        )));
    }
    if spec.dir_only && !source.is_dir() {
        return Err(Error::Invalid(format!(
            "{} {where_} is not a directory (the path ends with /)",
            source.shown
        )));
    }
    Ok(())
}

fn caller_ids() -> (u32, u32) {
    (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_keep_docker_trailing_forms() {
        let p = parse_spec("/a/b/");
        assert_eq!(
            (p.rel.as_path(), p.dir_only, p.contents),
            (Path::new("a/b"), true, false)
        );
        let p = parse_spec("a/b/.");
        assert_eq!(
            (p.rel.as_path(), p.dir_only, p.contents),
            (Path::new("a/b"), true, true)
        );
        let p = parse_spec("/../../etc/../x");
        assert_eq!((p.rel.as_path(), p.dir_only), (Path::new("x"), false));
        assert_eq!(parse_spec("/").rel, PathBuf::new());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path().join("root");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/marker"), b"inside").unwrap();
        std::os::unix::fs::symlink("/etc", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../etc", r.join("up")).unwrap();
        std::os::unix::fs::symlink("/", r.join("slash")).unwrap();
        let root = Root::open(&r).unwrap();
        for link in ["abs", "up", "slash/etc", "slash/abs", "up/../abs"] {
            let l = resolve_in(&root, &parse_spec(link).rel, true).unwrap();
            assert!(l.is_dir(), "{link}");
            let fd = sfs::open_dir_at(l.dir.as_fd(), l.name.as_deref().unwrap()).unwrap();
            let names = sfs::names(fd.as_fd()).unwrap();
            assert_eq!(names, vec![OsString::from("marker")], "{link}");
        }
        let l = resolve_in(&root, Path::new("abs"), false).unwrap();
        assert!(!l.is_dir());
    }
}
