//! Export of a layer's changes as an uncompressed OCI layer tar, deterministic: the same
//! content always gives the same bytes (and so the same diffID).
//!
//! Order: depth first, a directory before its contents, siblings sorted bytewise by the name
//! they have in the tar (so `.wh.x` sorts as `.wh.x`); directories end in `/` as Docker writes
//! them. Headers carry mode, uid, gid, size and mtime in whole seconds; no atime, ctime, user
//! or group names, which would make equal trees give different bytes. Xattrs go in PAX
//! `SCHILY.xattr.<name>` records, except overlayfs' own (`trusted.overlay.*`, or the layer's
//! [`DiffFormat::private_xattr_prefix`]). The first path
//! of a multiply-linked inode is written as a file, later ones as hard links to it.
//!
//! [`export_copying`] writes the same tar for an overlay upper dir's copy while making the
//! copy, reading each file once.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::FileType;
use tar::{EntryType, Header};

use crate::error::{Error, IoContext, Result};
use crate::fs::{self, copy::CopyObserver, copy::CopyOptions, EntryMeta};
use crate::layout::{
    is_whiteout, ChangeKind, DiffFormat, DiffView, OverlayXattrs, OPAQUE_MARKER, WHITEOUT_PREFIX,
};
use crate::walk::{self, DiffSink};

/// Writes the changes in `view` as an uncompressed OCI layer tar to `out`.
pub fn export(view: &DiffView, out: &mut dyn Write) -> Result<()> {
    let mut tar = TarOut::new(out, view.format());
    match view {
        // Only the upper dir is read: its content is exactly the layer's changes.
        DiffView::Overlay { upper, xattrs, .. } => {
            let root = fs::open_dir_path(upper)?;
            overlay_dir(&mut tar, root.as_fd(), Path::new(""), upper, *xattrs)?;
        }
        DiffView::FullCopy { layer, parent } => {
            walk::naive_diff(layer, parent.as_deref(), &mut tar)?
        }
    }
    tar.builder
        .finish()
        .ctx(|| "writing the end of the layer tar".to_string())
}

/// Copies the overlay upper dir `upper` into the empty dir `dst` as a lower layer (as
/// [`fs::copy::copy_tree_with`] with `overlay_upper`) and writes to `out` the tar that
/// [`export`] gives for `dst` afterwards, reading each file once. The two are equal only when
/// the copy keeps everything: call it with full [`fs::Privileges`]. `xattrs`: the namespace
/// of the upper's overlay markers.
pub fn export_copying(
    upper: &Path,
    dst: &Path,
    xattrs: OverlayXattrs,
    out: &mut dyn Write,
) -> Result<()> {
    let mut tar = TarOut::new(out, DiffFormat::Overlay { xattrs });
    let options = CopyOptions {
        overlay_upper: true,
    };
    fs::copy::copy_tree_observed(upper, dst, options, &mut tar)?;
    tar.builder
        .finish()
        .ctx(|| "writing the end of the layer tar".to_string())
}

/// The tar of an upper dir, entry by entry as it is copied: what [`overlay_dir`] writes, from
/// the same sort order and the same stat and xattrs the copy gets.
impl CopyObserver for TarOut<'_> {
    fn order(&self, e: &fs::Entry) -> Vec<u8> {
        tar_name(e).into_vec()
    }

    fn entry(&mut self, node: &EntryMeta, data: Option<&mut dyn Read>) -> io::Result<()> {
        let name = node.rel.file_name().unwrap_or_default();
        if is_whiteout(&node.stat) {
            let parent = node.rel.parent().unwrap_or(Path::new(""));
            return self.whiteout_io(&parent.join(whiteout_name(name)));
        }
        self.entry_from(node, data.map_or(Data::None, Data::Reader))?;
        let opaque = node
            .xattrs
            .iter()
            .any(|(k, v)| k == self.opaque_xattr() && v == b"y");
        if fs::is_dir(&node.stat) && opaque {
            self.whiteout_io(&node.rel.join(OPAQUE_MARKER))?;
        }
        Ok(())
    }
}

/// The name `e` has in a layer tar, by which siblings are sorted.
fn tar_name(e: &fs::Entry) -> OsString {
    if is_whiteout(&e.stat) {
        whiteout_name(&e.name)
    } else {
        e.name.clone()
    }
}

fn overlay_dir(
    tar: &mut TarOut<'_>,
    dir: BorrowedFd<'_>,
    rel: &Path,
    upper: &Path,
    xattrs: OverlayXattrs,
) -> Result<()> {
    let here = |p: &Path| format!("exporting {}/{}", upper.display(), p.display());
    let mut entries = fs::read_dir(dir).ctx(|| here(rel))?;
    // Sort by the name each entry will have in the tar.
    entries.sort_by_cached_key(|e| tar_name(e).into_vec());
    for e in &entries {
        let child = rel.join(&e.name);
        if is_whiteout(&e.stat) {
            tar.whiteout(&rel.join(whiteout_name(&e.name)), here(&child))?;
            continue;
        }
        let node = fs::entry_meta(dir, e, child.clone()).ctx(|| here(&child))?;
        tar.entry(&node, Some((dir, &e.name)))
            .map_err(|e| ctx_err(e, here(&child)))?;
        if fs::is_dir(&e.stat) {
            if fs::is_opaque(dir, &e.name, xattrs).ctx(|| here(&child))? {
                tar.whiteout(&child.join(OPAQUE_MARKER), here(&child))?;
            }
            let sub = fs::open_dir_at(dir, &e.name).ctx(|| here(&child))?;
            overlay_dir(tar, sub.as_fd(), &child, upper, xattrs)?;
        }
    }
    Ok(())
}

fn whiteout_name(name: &OsStr) -> OsString {
    let mut n = OsString::from(WHITEOUT_PREFIX);
    n.push(name);
    n
}

fn ctx_err(e: io::Error, what: String) -> Error {
    Error::io(what, e)
}

/// The tar being written, and the inodes already in it.
pub(super) struct TarOut<'a> {
    pub(super) builder: tar::Builder<&'a mut dyn Write>,
    links: HashMap<(u64, u64), PathBuf>,
    /// The form of what is archived: which overlay xattrs are markers, not content.
    format: DiffFormat,
}

impl DiffSink for TarOut<'_> {
    fn present(
        &mut self,
        _: ChangeKind,
        node: &EntryMeta,
        src: Option<(BorrowedFd<'_>, &OsStr)>,
    ) -> Result<()> {
        self.entry(node, src)
            .map_err(|e| ctx_err(e, format!("exporting {}", node.rel.display())))
    }

    fn deleted(&mut self, rel: &Path) -> Result<()> {
        let name = rel.file_name().unwrap_or_default();
        let parent = rel.parent().unwrap_or(Path::new(""));
        self.whiteout(
            &parent.join(whiteout_name(name)),
            format!("exporting deletion of {}", rel.display()),
        )
    }
}

impl<'a> TarOut<'a> {
    pub(super) fn new(out: &'a mut dyn Write, format: DiffFormat) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Complete);
        TarOut {
            builder,
            links: HashMap::new(),
            format,
        }
    }

    /// The opaque marker's xattr in an overlay upper being copied.
    fn opaque_xattr(&self) -> &'static str {
        match self.format {
            DiffFormat::Overlay { xattrs } => xattrs.opaque(),
            DiffFormat::FullCopy => OverlayXattrs::Trusted.opaque(),
        }
    }

    /// An empty regular file with mode 0, owner 0:0 and mtime 0: a whiteout or opaque marker.
    /// Every numeric field is set: `Header::new_gnu` leaves them blank, which strict readers
    /// (the Rust `tar` crate among them) refuse as "not a number".
    fn whiteout(&mut self, path: &Path, what: String) -> Result<()> {
        self.whiteout_io(path).map_err(|e| ctx_err(e, what))
    }

    fn whiteout_io(&mut self, path: &Path) -> io::Result<()> {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        h.set_mtime(0);
        self.builder.append_data(&mut h, path, io::empty())
    }

    /// Writes `node`; `src` (its dir and name) is needed to read a regular file's content.
    pub(super) fn entry(
        &mut self,
        node: &EntryMeta,
        src: Option<(BorrowedFd<'_>, &OsStr)>,
    ) -> io::Result<()> {
        self.entry_from(node, src.map_or(Data::None, |(d, n)| Data::At(d, n)))
    }

    /// Writes `node`, a regular file's content coming from `data`.
    fn entry_from(&mut self, node: &EntryMeta, data: Data<'_>) -> io::Result<()> {
        let st = &node.stat;
        let ft = fs::file_type(st);
        if ft == FileType::Socket {
            return Ok(()); // Sockets cannot be archived (as Docker).
        }
        self.xattrs(node)?;
        let mut h = Header::new_gnu();
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(st.st_uid as u64);
        h.set_gid(st.st_gid as u64);
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        let key = fs::inode_key(st);
        if ft != FileType::Directory && st.st_nlink > 1 {
            if let Some(first) = self.links.get(&key) {
                h.set_entry_type(EntryType::Link);
                let first = first.clone();
                return self.builder.append_link(&mut h, &node.rel, first);
            }
            self.links.insert(key, node.rel.clone());
        }
        match ft {
            FileType::Directory => {
                h.set_entry_type(EntryType::Directory);
                let mut p = node.rel.clone().into_os_string();
                p.push("/");
                self.builder.append_data(&mut h, p, io::empty())
            }
            FileType::Symlink => {
                h.set_entry_type(EntryType::Symlink);
                let target = node.link.clone().unwrap_or_default();
                self.builder.append_link(&mut h, &node.rel, target)
            }
            FileType::RegularFile => {
                let size = st.st_size as u64;
                h.set_entry_type(EntryType::Regular);
                h.set_size(size);
                let file;
                let inner: &mut dyn Read = match data {
                    Data::At(dir, name) => {
                        file = std::fs::File::from(fs::open_file_at(dir, name)?);
                        &mut &file
                    }
                    Data::Reader(r) => r,
                    Data::None => return Err(io::Error::other("no source for a file")),
                };
                let inner = inner.take(size);
                self.builder
                    .append_data(&mut h, &node.rel, Exact { inner, left: size })
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                h.set_entry_type(match ft {
                    FileType::CharacterDevice => EntryType::Char,
                    FileType::BlockDevice => EntryType::Block,
                    _ => EntryType::Fifo,
                });
                let rdev = st.st_rdev as _;
                h.set_device_major(rustix::fs::major(rdev))?;
                h.set_device_minor(rustix::fs::minor(rdev))?;
                self.builder.append_data(&mut h, &node.rel, io::empty())
            }
            _ => Ok(()),
        }
    }

    /// A PAX extended header with the node's xattrs, if it has any worth recording.
    fn xattrs(&mut self, node: &EntryMeta) -> io::Result<()> {
        let mut data = Vec::new();
        for (key, value) in &node.xattrs {
            if key
                .as_bytes()
                .starts_with(self.format.private_xattr_prefix().as_bytes())
            {
                continue;
            }
            let mut k = b"SCHILY.xattr.".to_vec();
            k.extend_from_slice(key.as_bytes());
            pax_record(&mut data, &k, value);
        }
        if data.is_empty() {
            return Ok(());
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        // The name of an extended header is informative only; keep it short and fixed.
        h.set_path("PaxHeader")?;
        h.set_cksum();
        self.builder.append(&h, &data[..])
    }
}

/// Appends one PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + rest.to_string().len();
    if len.to_string().len() > rest.to_string().len() {
        len += 1;
    }
    out.extend_from_slice(format!("{len} ").as_bytes());
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Where a regular file's content comes from.
enum Data<'a> {
    /// The entry `name` in the directory.
    At(BorrowedFd<'a>, &'a OsStr),
    Reader(&'a mut dyn Read),
    None,
}

/// Reads exactly `left` bytes, failing rather than writing a short entry if the file shrank.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being exported",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for (k, v) in [
            ("a", 3usize),
            ("SCHILY.xattr.user.x", 90),
            ("k", 5),
            ("k", 94),
        ] {
            let mut out = Vec::new();
            pax_record(&mut out, k.as_bytes(), &vec![b'v'; v]);
            let sp = out.iter().position(|b| *b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&out[..sp]).unwrap().parse().unwrap();
            assert_eq!(len, out.len(), "{k} {v}");
        }
    }
}
