//! Applying a layer tar to a layer directory: every entry is created by us, fd-relative inside
//! the layer ([`crate::fs::Root`]), never by the `tar` crate's `unpack` (which turns device
//! nodes and FIFOs into empty files and would take `trusted.overlay.*` xattrs from the
//! archive). Whiteouts are converted to the layer's [`DiffFormat`] on the way.
//!
//! The uncompressed stream is hashed as it is read and drained past the end-of-archive
//! marker, so the digest is the layer's diffID exactly as Docker computes it.

use std::cell::RefCell;
use std::io::{BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, Timespec};
use rustix::io::Errno;
use tar::EntryType;

use super::decompress::{self, Compression};
use super::header_limit::HeaderLimit;
use super::tarsplit::{Capture, Recorder, SharedRecorder};

mod data;
mod epoch;
mod meta;
mod whiteouts;
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::fs::{self, Node, Privileges, Root, Skipped};
use crate::layout::{DiffFormat, WHITEOUT_PREFIX};
use epoch::Epoch;
use meta::Meta;

/// What applying a layer tar produced.
#[derive(Clone, Debug)]
pub struct ApplyReport {
    /// sha256 of the uncompressed tar stream: the layer's diffID.
    pub diff_id: Digest,
    /// Bytes of the uncompressed tar stream.
    pub tar_size: u64,
    /// Tar entries applied (whiteouts included).
    pub entries: u64,
}

/// Applies the layer tar `input` (plain, gzip or zstd) into `target`, a layer directory in
/// `format`. Every path is resolved inside `target`; nothing is written outside it.
pub fn apply(target: &Path, format: DiffFormat, input: &mut dyn Read) -> Result<ApplyReport> {
    apply_with(target, format, input, None)
}

/// Like [`apply`], and writes to `tar_split` a compact record (zstd) of everything in the
/// uncompressed stream that is not regular-file content, so that [`super::reassemble`] can
/// later rebuild the exact bytes from it and the layer's files. The record is streamed:
/// memory stays flat whatever the layer size.
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

/// Extracts the user's tar `input` (plain, gzip or zstd) into the directory `root`, as
/// `docker cp` does: like [`apply`] (every path resolved inside `root`), except that names
/// starting with `.wh.` are ordinary files, never whiteouts, and that every entry is owned
/// by `owner` when one is given.
pub fn extract(
    root: &Root,
    input: &mut dyn Read,
    owner: Option<(u32, u32)>,
) -> Result<ApplyReport> {
    apply_in(root, DiffFormat::FullCopy, input, None, Some(owner))
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
    let mut archive = tar::Archive::new(HeaderLimit::new(capture));
    let _writeback = fs::writeback::Writeback::start(root.as_fd());
    let mut applier = Applier::new(root, format, compression, recorder);
    applier.plain = plain;
    if format == DiffFormat::FullCopy && plain.is_none() {
        // Only a full-copy opaque directory needs to tell the parent's files from this layer's.
        applier.epoch = Some(Epoch::start(root)?);
    }
    for entry in archive
        .entries()
        .map_err(|e| applier.read_error("the first entry", e))?
    {
        let mut entry = entry.map_err(|e| applier.read_error("the next entry header", e))?;
        applier.entry(&mut entry)?;
    }
    applier.finish()?;
    let mut rest = archive.into_inner().into_inner();
    decompress::drain(&mut rest)
        .map_err(|e| applier.read_error("the data after the end-of-archive marker", e))?;
    let (diff_id, tar_size) = rest.into_inner().into_inner().finish();
    Ok(ApplyReport {
        diff_id,
        tar_size,
        entries: applier.entries,
    })
}

struct Applier<'r, 'w> {
    root: &'r Root,
    /// Records the tar-split of the stream, if asked.
    recorder: Option<SharedRecorder<'w>>,
    format: DiffFormat,
    compression: Compression,
    /// The parent directory of the previous entry: archives list siblings together.
    parent_cache: Option<(PathBuf, Rc<OwnedFd>)>,
    /// When this apply began, for full-copy opaque directories (see [`epoch`]).
    epoch: Option<Epoch>,
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
            epoch: None,
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
        Ok(())
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
        let file = self.replacing(dir.as_fd(), rel, || {
            fs::create_file_at(dir.as_fd(), name, 0o600)
        })?;
        self.record_content(rel, entry)?;
        if let Err(e) = self.copy_data(rel, entry, &file) {
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

    /// A hard link: the target is an earlier entry of this layer (or its lowers in full-copy
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
        if let Some(epoch) = &mut self.epoch {
            epoch.linking(target_dir.as_fd(), target_name, rel);
        }
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
