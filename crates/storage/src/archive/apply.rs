//! Applying a layer tar to a layer directory: every entry is created by us, fd-relative inside
//! the layer ([`crate::fs::Root`]), never by the `tar` crate's `unpack` (which turns device
//! nodes and FIFOs into empty files and would take `trusted.overlay.*` xattrs from the
//! archive). Whiteouts are converted to the layer's [`DiffFormat`] on the way.
//!
//! The uncompressed stream is hashed as it is read and drained past the end-of-archive
//! marker, so the digest is the layer's diffID exactly as Docker computes it.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, Timespec};
use rustix::io::Errno;
use tar::EntryType;

use super::decompress::{self, Compression};
use super::tarsplit::{Capture, Recorder, SharedRecorder};
use super::whiteout::{OVERLAY_XATTR_PREFIX, WHITEOUT_PREFIX};
use super::ApplyReport;

mod whiteouts;
use crate::digest::HashingReader;
use crate::driver::DiffFormat;
use crate::error::{Error, IoContext, Result};
use crate::fs::{self, Node, Privileges, Root, Skipped};

/// Big enough that large files stream in few syscalls, small enough for the memory budget.
const COPY_BUFFER: usize = 1 << 20;
const XATTR_PAX_PREFIX: &str = "SCHILY.xattr.";

/// See [`super::apply`].
pub fn apply(target: &Path, format: DiffFormat, input: &mut dyn Read) -> Result<ApplyReport> {
    apply_with(target, format, input, None)
}

/// See [`super::apply_recording`].
pub fn apply_recording(
    target: &Path,
    format: DiffFormat,
    input: &mut dyn Read,
    tar_split: &mut dyn Write,
) -> Result<ApplyReport> {
    let recorder = Rc::new(RefCell::new(Recorder::new(tar_split)?));
    let result = apply_with(target, format, input, Some(recorder.clone()));
    // A failure to write the record surfaces as a read error of the tar: report its cause.
    if let Some(e) = recorder.borrow_mut().take_error() {
        return Err(e);
    }
    let report = result?;
    let recorder = Rc::into_inner(recorder).expect("the applier is gone");
    recorder.into_inner().finish(report.tar_size)?;
    Ok(report)
}

/// See [`super::extract`]: a user's tar, whiteout names kept as plain files.
pub fn extract(
    root: &Root,
    input: &mut dyn Read,
    owner: Option<(u32, u32)>,
) -> Result<ApplyReport> {
    apply_in(root, DiffFormat::Naive, input, None, Some(owner))
}

fn apply_with<'w>(
    target: &Path,
    format: DiffFormat,
    input: &mut dyn Read,
    recorder: Option<SharedRecorder<'w>>,
) -> Result<ApplyReport> {
    let root = Root::open(target)?;
    apply_in(&root, format, input, recorder, None)
}

/// `plain`: `Some(owner)` to extract a user's tar (no whiteouts; every owner replaced by
/// `owner` if given) rather than apply a layer.
fn apply_in<'w>(
    root: &Root,
    format: DiffFormat,
    input: &mut dyn Read,
    recorder: Option<SharedRecorder<'w>>,
    plain: Option<Option<(u32, u32)>>,
) -> Result<ApplyReport> {
    let (compression, stream) = decompress::open(input)?;
    let hashing = HashingReader::new(stream);
    let capture = Capture::new(
        BufReader::with_capacity(256 * 1024, hashing),
        recorder.clone(),
    );
    let mut archive = tar::Archive::new(capture);
    let mut applier = Applier::new(root, format, compression, recorder);
    applier.plain = plain;
    for entry in archive
        .entries()
        .map_err(|e| applier.read_error("the first entry", e))?
    {
        let mut entry = entry.map_err(|e| applier.read_error("the next entry header", e))?;
        applier.entry(&mut entry)?;
    }
    applier.finish()?;
    let mut rest = archive.into_inner();
    decompress::drain(&mut rest)
        .map_err(|e| applier.read_error("the data after the end-of-archive marker", e))?;
    let (diff_id, tar_size) = rest.into_inner().into_inner().finish();
    Ok(ApplyReport {
        diff_id,
        tar_size,
        entries: applier.entries,
    })
}

/// Owner, mode, times and xattrs of one entry, PAX overrides applied.
#[derive(Clone)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Timespec,
    xattrs: Vec<(String, Vec<u8>)>,
}

struct Applier<'r, 'w> {
    root: &'r Root,
    /// Records the tar-split of the stream, if asked.
    recorder: Option<SharedRecorder<'w>>,
    format: DiffFormat,
    compression: Compression,
    /// The parent directory of the previous entry: archives list siblings together.
    parent_cache: Option<(PathBuf, Rc<OwnedFd>)>,
    /// Paths this apply created (and their ancestors); only kept for Naive opaque dirs.
    created: HashSet<PathBuf>,
    /// Directory mtimes (and, unprivileged, modes), set at the end since creating children
    /// changes the mtime, and needs write permission.
    dir_meta: Vec<(PathBuf, Timespec, Option<u32>)>,
    privileges: Privileges,
    /// What an unprivileged apply left out, for one warning at the end.
    skipped: Skipped,
    entries: u64,
    buf: Vec<u8>,
    /// `Some`: extracting a user's tar (`cp`): whiteout names are plain files, and the owner
    /// of every entry is replaced by the inner value if there is one.
    plain: Option<Option<(u32, u32)>>,
}

impl<'r, 'w> Applier<'r, 'w> {
    fn new(
        root: &'r Root,
        format: DiffFormat,
        compression: Compression,
        recorder: Option<SharedRecorder<'w>>,
    ) -> Self {
        Applier {
            root,
            recorder,
            format,
            compression,
            parent_cache: None,
            created: HashSet::new(),
            dir_meta: Vec::new(),
            privileges: Privileges::current(),
            skipped: Skipped::default(),
            entries: 0,
            buf: Vec::new(),
            plain: None,
        }
    }

    fn read_error(&self, what: &str, e: std::io::Error) -> Error {
        let kind = self.compression.name();
        Error::Archive(format!(
            "reading {what} from the {kind} stream: {e} (truncated or corrupt)"
        ))
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        self.entries += 1;
        let raw = entry
            .path()
            .map_err(|e| self.read_error("an entry path", e))?
            .into_owned();
        let rel = fs::normalize(&raw)?;
        if self.plain.is_none()
            && rel
                .file_name()
                .is_some_and(|n| n.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()))
        {
            return self.whiteout(&rel, entry.header());
        }
        let meta = self.meta(entry, &raw)?;
        if rel.as_os_str().is_empty() {
            return self.root_dir(kind, &raw, &meta);
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.file(&rel, entry, &meta)?
            }
            EntryType::Directory => self.dir(&rel, &meta)?,
            EntryType::Symlink => self.symlink(&rel, &link_name(entry, &raw)?, &meta)?,
            EntryType::Link => self.hardlink(&rel, &link_name(entry, &raw)?)?,
            EntryType::Char | EntryType::Block if !self.privileges.mknod => {
                self.skipped.devices.insert(rel);
                return Ok(());
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.special(&rel, kind, entry.header(), &meta)?
            }
            other => {
                return Err(Error::Archive(format!(
                    "entry {}: unsupported entry type {other:?}",
                    raw.display()
                )))
            }
        }
        self.record(&rel);
        Ok(())
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, raw: &Path) -> Result<Meta> {
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
                if name.starts_with(OVERLAY_XATTR_PREFIX) {
                    tracing::warn!(entry = %raw.display(), xattr = name, "ignoring overlay xattr from the archive");
                } else {
                    meta.xattrs
                        .push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        Ok(meta)
    }

    /// The parent directory of `rel` (created if missing), from the one-entry cache if it
    /// is the same as the previous entry's.
    fn parent(&mut self, rel: &Path) -> Result<Rc<OwnedFd>> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        if let Some((path, fd)) = &self.parent_cache {
            if path == parent {
                return Ok(fd.clone());
            }
        }
        let fd = Rc::new(self.root.create_dir_all(parent, 0o755)?);
        self.parent_cache = Some((parent.to_path_buf(), fd.clone()));
        Ok(fd)
    }

    /// Runs `create`; if the name is taken, removes what is there (a later entry wins) and
    /// runs it again.
    fn replacing<T>(
        &mut self,
        dir: BorrowedFd<'_>,
        rel: &Path,
        mut create: impl FnMut() -> rustix::io::Result<T>,
    ) -> Result<T> {
        let result = match create() {
            Err(Errno::EXIST) => {
                self.remove_at(dir, rel)?;
                create()
            }
            other => other,
        };
        result.ctx(|| format!("creating {}", self.root.display(rel)))
    }

    fn remove_at(&mut self, dir: BorrowedFd<'_>, rel: &Path) -> Result<()> {
        // The cached parent may have been reached through what is removed here (directly or
        // via a symlink): removals are rare, so forget it.
        self.parent_cache = None;
        let name = rel.file_name().unwrap_or_default();
        fs::remove_all_at(dir, name).ctx(|| format!("replacing {}", self.root.display(rel)))
    }

    fn file<R: Read>(
        &mut self,
        rel: &Path,
        entry: &mut tar::Entry<'_, R>,
        meta: &Meta,
    ) -> Result<()> {
        let dir = self.parent(rel)?;
        let name = rel.file_name().unwrap_or_default();
        let mut file = self.replacing(dir.as_fd(), rel, || {
            fs::create_file_at(dir.as_fd(), name, 0o600)
        })?;
        self.record_content(rel, entry)?;
        if let Err(e) = self.copy_data(rel, entry, &mut file) {
            let _ = rfs::unlinkat(&*dir, name, AtFlags::empty());
            return Err(e);
        }
        self.set_meta(Node::Open(file.as_fd()), rel, meta)
    }

    /// Tells the recorder that the entry's data is `rel`'s content, which the layer keeps:
    /// the record refers to it instead of copying it. A sparse entry's data is not the file's
    /// bytes as stored, so it stays raw in the record.
    fn record_content<R: Read>(&self, rel: &Path, entry: &tar::Entry<'_, R>) -> Result<()> {
        let Some(recorder) = &self.recorder else {
            return Ok(());
        };
        if entry.header().entry_type().is_gnu_sparse() || entry.size() == 0 {
            return Ok(());
        }
        recorder
            .borrow_mut()
            .content(rel, entry.size(), entry.raw_file_position())
    }

    fn copy_data<R: Read>(
        &mut self,
        rel: &Path,
        entry: &mut tar::Entry<'_, R>,
        file: &mut std::fs::File,
    ) -> Result<()> {
        let header = entry.header();
        let sparse = header.entry_type().is_gnu_sparse();
        let expected = match header.as_gnu().filter(|_| sparse) {
            Some(gnu) => gnu
                .real_size()
                .map_err(|e| self.read_error("a sparse header", e))?,
            None => entry.size(),
        };
        if self.buf.is_empty() {
            self.buf = vec![0; COPY_BUFFER];
        }
        let mut done = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(&format!("entry {}", rel.display()), e)),
            };
            let chunk = &self.buf[..n];
            // Holes of a sparse entry arrive as zeros: skip over them to keep the file sparse.
            if sparse && chunk.iter().all(|&b| b == 0) {
                file.seek(SeekFrom::Current(n as i64))
            } else {
                file.write_all(chunk).map(|_| 0)
            }
            .ctx(|| format!("writing {}", self.root.display(rel)))?;
            done += n as u64;
        }
        if done != expected {
            return Err(Error::Archive(format!(
                "{} is truncated: {done} of {expected} bytes in the {} stream",
                rel.display(),
                self.compression.name()
            )));
        }
        if sparse {
            file.set_len(expected)
                .ctx(|| format!("sizing {}", self.root.display(rel)))?;
        }
        Ok(())
    }

    fn dir(&mut self, rel: &Path, meta: &Meta) -> Result<()> {
        let parent = self.parent(rel)?;
        let (dir, name) = (parent.as_fd(), rel.file_name().unwrap_or_default());
        let make = || match rfs::mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EXIST) => fs::open_dir_at(dir, name),
            Err(e) => Err(e),
        };
        // An existing directory is kept (and its metadata updated); anything else is replaced.
        let fd = match make() {
            Err(Errno::NOTDIR | Errno::LOOP) => {
                self.remove_at(dir, rel)?;
                make()
            }
            other => other,
        }
        .ctx(|| format!("creating directory {}", self.root.display(rel)))?;
        self.set_dir_meta(fd.as_fd(), rel, meta)
    }

    fn root_dir(&mut self, kind: EntryType, raw: &Path, meta: &Meta) -> Result<()> {
        if kind != EntryType::Directory {
            return Err(Error::Archive(format!(
                "entry {} names the layer root but is a {kind:?}, not a directory",
                raw.display()
            )));
        }
        let fd = self.root.open_dir(Path::new(""))?;
        self.set_dir_meta(fd.as_fd(), Path::new(""), meta)
    }

    /// Unprivileged, a directory stays writable by its owner (us) until the end: without
    /// `CAP_DAC_OVERRIDE` its entries could not be created under a mode like 0555.
    fn set_dir_meta(&mut self, fd: BorrowedFd<'_>, rel: &Path, meta: &Meta) -> Result<()> {
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

    fn symlink(&mut self, rel: &Path, target: &Path, meta: &Meta) -> Result<()> {
        if target.as_os_str().is_empty() {
            return Err(Error::Archive(format!(
                "symlink {} has an empty target",
                rel.display()
            )));
        }
        let dir = self.parent(rel)?;
        let name = rel.file_name().unwrap_or_default();
        self.replacing(dir.as_fd(), rel, || {
            rfs::symlinkat(target, dir.as_fd(), name)
        })?;
        self.set_meta(
            Node::Symlink {
                dir: dir.as_fd(),
                name,
            },
            rel,
            meta,
        )
    }

    /// A hard link: the target is an earlier entry of this layer (or its lowers in Naive
    /// form), resolved inside the root; the link itself is never followed.
    fn hardlink(&mut self, rel: &Path, raw_target: &Path) -> Result<()> {
        let target = fs::normalize(raw_target)?;
        let Some(target_name) = target.file_name() else {
            return Err(Error::Archive(format!(
                "hard link {} points at the layer root",
                rel.display()
            )));
        };
        if target_name
            .as_bytes()
            .starts_with(WHITEOUT_PREFIX.as_bytes())
        {
            return Err(Error::Archive(format!(
                "hard link {} points at the whiteout {}",
                rel.display(),
                target.display()
            )));
        }
        if target == rel {
            return Ok(());
        }
        if self.skipped.devices.contains(&target) {
            // A second name of a device node not created: not created either.
            self.skipped.devices.insert(rel.to_path_buf());
            return Ok(());
        }
        let (target_dir, _) = self.root.parent(&target, false)?;
        let dir = self.parent(rel)?;
        let name = rel.file_name().unwrap_or_default();
        self.replacing(dir.as_fd(), rel, || {
            rfs::linkat(
                &target_dir,
                target_name,
                dir.as_fd(),
                name,
                AtFlags::empty(),
            )
        })
    }

    fn special(
        &mut self,
        rel: &Path,
        kind: EntryType,
        header: &tar::Header,
        meta: &Meta,
    ) -> Result<()> {
        let bad =
            |e: std::io::Error| Error::Archive(format!("device entry {}: {e}", rel.display()));
        let file_type = match kind {
            EntryType::Char => FileType::CharacterDevice,
            EntryType::Block => FileType::BlockDevice,
            _ => FileType::Fifo,
        };
        // A FIFO has no device number; some writers (Python's tarfile) leave the fields blank.
        let (major, minor) = if file_type == FileType::Fifo {
            (0, 0)
        } else {
            (
                header.device_major().map_err(bad)?.unwrap_or(0),
                header.device_minor().map_err(bad)?.unwrap_or(0),
            )
        };
        let dir = self.parent(rel)?;
        let name = rel.file_name().unwrap_or_default();
        let dev = rfs::makedev(major, minor);
        self.replacing(dir.as_fd(), rel, || {
            rfs::mknodat(
                dir.as_fd(),
                name,
                file_type,
                Mode::from_bits_truncate(0o600),
                dev,
            )
        })?;
        let fd = fs::open_path_at(dir.as_fd(), name)
            .ctx(|| format!("opening {}", self.root.display(rel)))?;
        self.set_meta(Node::Path(fd.as_fd()), rel, meta)
    }

    fn set_meta(&mut self, node: Node<'_>, rel: &Path, meta: &Meta) -> Result<()> {
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

    fn record(&mut self, rel: &Path) {
        if self.format != DiffFormat::Naive {
            return;
        }
        let mut path = rel;
        while !path.as_os_str().is_empty() && self.created.insert(path.to_path_buf()) {
            path = path.parent().unwrap_or(Path::new(""));
        }
    }

    /// Sets the directory mtimes (and late modes) collected on the way, now that no child
    /// will change them, and says what an unprivileged apply left out.
    fn finish(&mut self) -> Result<()> {
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

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, raw: &Path) -> Result<PathBuf> {
    match entry.link_name() {
        Ok(Some(target)) => Ok(target.into_owned()),
        Ok(None) => Err(Error::Archive(format!(
            "link {} has no target",
            raw.display()
        ))),
        Err(e) => Err(Error::Archive(format!("link {}: {e}", raw.display()))),
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
