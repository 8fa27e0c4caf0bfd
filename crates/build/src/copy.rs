//! COPY and ADD sources: resolved inside their root (the context, with `RESOLVE_BENEATH`
//! so a `..` or a symlink leading out is an error, or a stage's root filesystem), walked
//! fd-relative without following any symlink below the top, and fed to a [`Sink`]: the
//! digest that keys the cache (names, types, modes, sizes, link targets and content, never
//! mtimes or the context's owners) or the writer into the step's new layer.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags, Stat};
use sha2::{Digest, Sha256};
use strata_sys::root::{self as sroot, Root};

use crate::ignore::Ignore;

/// One source, opened.
pub struct Source {
    /// As written (for messages).
    pub shown: String,
    /// Relative to its root, `/`-separated (for `.dockerignore`).
    pub rel: String,
    pub fd: OwnedFd,
    pub stat: Stat,
}

impl Source {
    pub fn is_dir(&self) -> bool {
        sroot::is_dir(&self.stat)
    }

    pub fn base_name(&self) -> OsString {
        Path::new(&self.rel)
            .file_name()
            .map(OsStr::to_os_string)
            .unwrap_or_else(|| ".".into())
    }
}

/// Where sources are read from.
pub struct SourceRoot<'a> {
    pub root: &'a Root,
    pub ignore: Option<&'a Ignore>,
    /// The build context: links may not lead out (an image's absolute links are its own).
    pub beneath: bool,
    /// "build context" or "stage x", for messages.
    pub what: String,
}

/// `..` clamped or refused: `None` when the path climbs above the root.
fn clean(path: &str) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            Component::ParentDir => {
                out.pop()?;
            }
            _ => {}
        }
    }
    Some(out.join("/"))
}

impl SourceRoot<'_> {
    /// The sources `pattern` names (a path, or a glob over the root's files).
    pub fn resolve(&self, pattern: &str) -> Result<Vec<Source>, String> {
        let Some(rel) = clean(pattern) else {
            return Err(format!(
                "forbidden path outside the {}: {pattern}",
                self.what
            ));
        };
        if !rel.contains(['*', '?', '[']) {
            return Ok(vec![self.open(pattern, &rel)?]);
        }
        let re = regex::Regex::new(&crate::ignore::to_regex(&rel).replace("(.*/)?", "[^/]*/?"))
            .map_err(|e| format!("bad pattern {pattern}: {e}"))?;
        let mut found = Vec::new();
        let top = self
            .root
            .open_dir(Path::new(""))
            .map_err(|e| e.to_string())?;
        glob_walk(
            top.as_fd(),
            String::new(),
            &re,
            rel.matches('/').count(),
            &mut found,
        );
        found.sort();
        let mut out = Vec::new();
        for f in found {
            if self.ignore.is_some_and(|i| i.excluded(&f)) {
                continue;
            }
            out.push(self.open(&f, &f)?);
        }
        if out.is_empty() {
            return Err(format!(
                "no source files were specified: {pattern} matches nothing in the {}",
                self.what
            ));
        }
        Ok(out)
    }

    fn open(&self, shown: &str, rel: &str) -> Result<Source, String> {
        let missing = || {
            format!(
                "file not found in {} or excluded by .dockerignore: {shown}: no such file or directory",
                self.what
            )
        };
        if !rel.is_empty() && self.ignore.is_some_and(|i| i.excluded(rel)) {
            return Err(missing());
        }
        let path = if rel.is_empty() { "." } else { rel };
        let how = if self.beneath {
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS
        } else {
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
        };
        let fd = rustix::fs::openat2(
            self.root,
            path,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            how,
        )
        .map_err(|e| match e {
            rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR => missing(),
            rustix::io::Errno::XDEV => format!(
                "forbidden path outside the {}: {shown} (a symlink leads out of it)",
                self.what
            ),
            e => format!("opening {shown} in the {}: {e}", self.what),
        })?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| format!("stat {shown}: {e}"))?;
        let flags = if sroot::is_dir(&stat) {
            OFlags::RDONLY | OFlags::DIRECTORY
        } else {
            OFlags::RDONLY
        };
        let fd = rustix::fs::openat2(self.root, path, flags | OFlags::CLOEXEC, Mode::empty(), how)
            .map_err(|e| format!("opening {shown} in the {}: {e}", self.what))?;
        Ok(Source {
            shown: shown.to_string(),
            rel: rel.to_string(),
            fd,
            stat,
        })
    }
}

fn glob_walk(
    dir: BorrowedFd<'_>,
    prefix: String,
    re: &regex::Regex,
    depth: usize,
    out: &mut Vec<String>,
) {
    let Ok(entries) = sroot::read_dir(dir) else {
        return;
    };
    for e in entries {
        let name = e.name.to_string_lossy();
        let rel = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        if re.is_match(&rel) {
            out.push(rel.clone());
        }
        if sroot::is_dir(&e.stat)
            && prefix.matches('/').count() + usize::from(!prefix.is_empty()) < depth
        {
            if let Ok(sub) = sroot::open_dir_at(dir, &e.name) {
                glob_walk(sub.as_fd(), rel, re, depth, out);
            }
        }
    }
}

/// What an entry is, as a sink sees it.
pub enum Content<'a> {
    Dir,
    File(&'a mut File),
    Symlink(OsString),
}

/// Receives the entries of a walk, parents first. `dest` is relative to the destination.
pub trait Sink {
    fn entry(&mut self, dest: &Path, mode: u32, content: Content<'_>) -> Result<(), String>;
}

/// Feeds `source` to `sink`: a directory's contents under `dest`, anything else as `dest`.
pub fn walk(
    source: &Source,
    dest: &Path,
    ignore: Option<&Ignore>,
    sink: &mut dyn Sink,
) -> Result<(), String> {
    let mode = source.stat.st_mode & 0o7777;
    if source.is_dir() {
        sink.entry(dest, mode, Content::Dir)?;
        return walk_dir(source.fd.as_fd(), &source.rel, dest, ignore, sink);
    }
    match sroot::file_type(&source.stat) {
        rustix::fs::FileType::RegularFile => {
            let fd = rustix::io::dup(&source.fd).map_err(|e| format!("{}: {e}", source.shown))?;
            // The dup shares the offset: an earlier walk (the digest) read it to the end.
            rustix::fs::seek(&fd, rustix::fs::SeekFrom::Start(0))
                .map_err(|e| format!("{}: {e}", source.shown))?;
            sink.entry(dest, mode, Content::File(&mut File::from(fd)))
        }
        _ => Err(format!("{} is not a file or directory", source.shown)),
    }
}

fn walk_dir(
    dir: BorrowedFd<'_>,
    rel: &str,
    dest: &Path,
    ignore: Option<&Ignore>,
    sink: &mut dyn Sink,
) -> Result<(), String> {
    let mut entries = sroot::read_dir(dir).map_err(|e| format!("listing {rel}: {e}"))?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for e in entries {
        let name = e.name.to_string_lossy();
        let child_rel = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let child_dest = dest.join(&e.name);
        let excluded = ignore.is_some_and(|i| i.excluded(&child_rel));
        let is_dir = sroot::is_dir(&e.stat);
        if excluded && !(is_dir && ignore.is_some_and(Ignore::has_exceptions)) {
            continue;
        }
        let mode = e.stat.st_mode & 0o7777;
        match sroot::file_type(&e.stat) {
            rustix::fs::FileType::Directory => {
                let sub = sroot::open_dir_at(dir, &e.name).map_err(|er| format!("opening {child_rel}: {er}"))?;
                if !excluded {
                    sink.entry(&child_dest, mode, Content::Dir)?;
                }
                walk_dir(sub.as_fd(), &child_rel, &child_dest, ignore, sink)?;
            }
            rustix::fs::FileType::RegularFile => {
                let fd = sroot::open_file_at(dir, &e.name).map_err(|er| format!("opening {child_rel}: {er}"))?;
                sink.entry(&child_dest, mode, Content::File(&mut File::from(fd)))?;
            }
            rustix::fs::FileType::Symlink => {
                let target = sroot::read_link_at(dir, &e.name).map_err(|er| format!("reading link {child_rel}: {er}"))?;
                sink.entry(&child_dest, 0o777, Content::Symlink(target))?;
            }
            _ => return Err(format!("{child_rel} is a device, FIFO or socket: COPY takes files, directories and symlinks")),
        }
    }
    Ok(())
}

/// Hashes what a walk gives, never mtimes.
#[derive(Default)]
pub struct DigestSink {
    hasher: Sha256,
}

impl DigestSink {
    pub fn finish(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

impl Sink for DigestSink {
    fn entry(&mut self, dest: &Path, mode: u32, content: Content<'_>) -> Result<(), String> {
        let h = &mut self.hasher;
        h.update(dest.as_os_str().as_encoded_bytes());
        h.update([0]);
        h.update(format!("{mode:o}").as_bytes());
        match content {
            Content::Dir => h.update(b"\0d\0"),
            Content::Symlink(t) => {
                h.update(b"\0l\0");
                h.update(t.as_encoded_bytes());
            }
            Content::File(f) => {
                h.update(b"\0f\0");
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = f
                        .read(&mut buf)
                        .map_err(|e| format!("reading {}: {e}", dest.display()))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            }
        }
        h.update([0xff]);
        Ok(())
    }
}

/// Writes what a walk gives under `base` in the destination root, owned by `owner`, with
/// every mode replaced by `chmod` when given.
pub struct WriteSink<'a> {
    pub root: &'a Root,
    pub owner: (u32, u32),
    pub chmod: Option<u32>,
}

impl Sink for WriteSink<'_> {
    fn entry(&mut self, dest: &Path, mode: u32, content: Content<'_>) -> Result<(), String> {
        let shown = || format!("/{}", dest.display());
        let mode = self.chmod.unwrap_or(mode);
        let (uid, gid) = self.owner;
        let fail = |what: &str, e: &dyn std::fmt::Display| format!("{what} {}: {e}", shown());
        let Some((_, name)) = sroot::split_name(dest) else {
            // The destination root itself: only its mode and owner.
            if let Content::Dir = content {
                return Ok(());
            }
            return Err(format!("cannot copy a file onto {}", shown()));
        };
        let (parent, _) = self
            .root
            .parent(dest, true)
            .map_err(|e| fail("creating the parent of", &e))?;
        let existing = sroot::lstat_at(parent.as_fd(), name).map_err(|e| fail("stat", &e))?;
        match content {
            Content::Dir => {
                if existing.as_ref().is_some_and(|s| !sroot::is_dir(s)) {
                    sroot::remove_all_at(parent.as_fd(), name)
                        .map_err(|e| fail("replacing", &e))?;
                }
                let fd = self
                    .root
                    .create_dir_all(dest, 0o755)
                    .map_err(|e| fail("creating", &e))?;
                rustix::fs::fchown(&fd, Some(uid.into_uid()), Some(gid.into_gid()))
                    .map_err(|e| fail("chown", &e))?;
                rustix::fs::fchmod(&fd, Mode::from_bits_truncate(mode))
                    .map_err(|e| fail("chmod", &e))?;
            }
            Content::File(src) => {
                if existing.is_some() {
                    sroot::remove_all_at(parent.as_fd(), name)
                        .map_err(|e| fail("replacing", &e))?;
                }
                let mut out = sroot::create_file_at(parent.as_fd(), name, 0o600)
                    .map_err(|e| fail("creating", &e))?;
                io::copy(src, &mut out).map_err(|e| fail("writing", &e))?;
                rustix::fs::fchown(&out, Some(uid.into_uid()), Some(gid.into_gid()))
                    .map_err(|e| fail("chown", &e))?;
                rustix::fs::fchmod(&out, Mode::from_bits_truncate(mode))
                    .map_err(|e| fail("chmod", &e))?;
                out.flush().map_err(|e| fail("writing", &e))?;
            }
            Content::Symlink(target) => {
                if existing.is_some() {
                    sroot::remove_all_at(parent.as_fd(), name)
                        .map_err(|e| fail("replacing", &e))?;
                }
                rustix::fs::symlinkat(target.as_os_str(), &parent, name)
                    .map_err(|e| fail("creating link", &e))?;
                rustix::fs::chownat(
                    &parent,
                    name,
                    Some(uid.into_uid()),
                    Some(gid.into_gid()),
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| fail("chown", &e))?;
            }
        }
        Ok(())
    }
}

trait Ids {
    fn into_uid(self) -> rustix::fs::Uid;
    fn into_gid(self) -> rustix::fs::Gid;
}

impl Ids for u32 {
    fn into_uid(self) -> rustix::fs::Uid {
        rustix::fs::Uid::from_raw(self)
    }
    fn into_gid(self) -> rustix::fs::Gid {
        rustix::fs::Gid::from_raw(self)
    }
}

/// `--chown=user[:group]` as IDs, names looked up in the destination's `/etc/passwd` and
/// `/etc/group` (a user alone also gives its group, as Docker does when it is a name... and
/// the same number when numeric).
pub fn owner(spec: &str, root: &Root) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read(root, "etc/passwd");
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => lookup(&passwd, user, 2)
            .map(|(u, line)| {
                (
                    u,
                    line.split(':')
                        .nth(3)
                        .and_then(|g| g.parse().ok())
                        .unwrap_or(u),
                )
            })
            .ok_or_else(|| {
                format!("unable to find user {user}: no matching entries in passwd file")
            })?,
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(&read(root, "etc/group"), g, 2)
                .map(|(g, _)| g)
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        },
    };
    Ok((uid, gid))
}

fn read(root: &Root, rel: &str) -> String {
    let mut text = String::new();
    if let Ok(fd) = root.open_in(Path::new(rel), OFlags::RDONLY) {
        let _ = File::from(fd).read_to_string(&mut text);
    }
    text
}

fn lookup<'t>(file: &'t str, name: &str, field: usize) -> Option<(u32, &'t str)> {
    file.lines()
        .find(|l| l.split(':').next() == Some(name))
        .and_then(|l| l.split(':').nth(field)?.parse().ok().map(|id| (id, l)))
}

/// The destination as a path relative to the root, and whether it names a directory.
pub fn dest_path(dest: &str, workdir: &str) -> (PathBuf, bool) {
    let is_dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let abs = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{}/{dest}", workdir.trim_end_matches('/'))
    };
    let rel = clean(&abs).unwrap_or_default();
    (PathBuf::from(rel), is_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_stay_inside_the_context() {
        let tmp = tempfile::tempdir().unwrap();
        let c = tmp.path();
        std::fs::create_dir(c.join("d")).unwrap();
        std::fs::write(c.join("d/a.txt"), "a").unwrap();
        std::fs::write(c.join("b.txt"), "b").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", c.join("out")).unwrap();
        std::os::unix::fs::symlink("../..", c.join("up")).unwrap();
        std::os::unix::fs::symlink("d/a.txt", c.join("in")).unwrap();
        let root = Root::open(c).unwrap();
        let src = SourceRoot {
            root: &root,
            ignore: None,
            beneath: true,
            what: "build context".into(),
        };
        for bad in ["../x", "out", "up/etc"] {
            let e = src.resolve(bad).err().unwrap();
            assert!(e.contains("outside the build context"), "{bad}: {e}");
        }
        assert!(src
            .resolve("/nope")
            .err()
            .unwrap()
            .contains("file not found"));
        assert_eq!(src.resolve("in").unwrap()[0].stat.st_size, 1);
        let names: Vec<_> = src
            .resolve("*.txt")
            .unwrap()
            .into_iter()
            .map(|s| s.rel)
            .collect();
        assert_eq!(names, ["b.txt"]);
        let names: Vec<_> = src
            .resolve("d/*")
            .unwrap()
            .into_iter()
            .map(|s| s.rel)
            .collect();
        assert_eq!(names, ["d/a.txt"]);
    }

    #[test]
    fn digest_ignores_mtimes_not_content() {
        let tmp = tempfile::tempdir().unwrap();
        let c = tmp.path();
        std::fs::create_dir(c.join("d")).unwrap();
        std::fs::write(c.join("d/a"), "a").unwrap();
        let root = Root::open(c).unwrap();
        let src = SourceRoot {
            root: &root,
            ignore: None,
            beneath: true,
            what: "ctx".into(),
        };
        let digest = || {
            let s = &src.resolve("d").unwrap()[0];
            let mut sink = DigestSink::default();
            walk(s, Path::new("x"), None, &mut sink).unwrap();
            sink.finish()
        };
        let first = digest();
        std::fs::File::open(c.join("d/a"))
            .unwrap()
            .set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(digest(), first);
        std::fs::write(c.join("d/a"), "b").unwrap();
        assert_ne!(digest(), first);
    }

    #[test]
    fn destinations_follow_the_workdir() {
        assert_eq!(dest_path("x", "/w"), (PathBuf::from("w/x"), false));
        assert_eq!(dest_path("/a/b/", "/w"), (PathBuf::from("a/b"), true));
        assert_eq!(dest_path(".", "/"), (PathBuf::new(), true));
    }
}
