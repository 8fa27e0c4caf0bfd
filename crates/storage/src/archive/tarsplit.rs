//! Tar-split records: what it takes, besides the files of a layer, to rebuild the very tar
//! the layer was applied from, byte for byte (Docker's tar-split, in our own compact form).
//!
//! While a tar is applied, [`Capture`] sits between the decompressed stream and the `tar`
//! reader and copies every byte that is not regular-file content (headers, PAX and GNU
//! extension entries, padding, the end-of-archive blocks and whatever follows them, sparse
//! files' data) into the record as raw segments; the content of a regular file is recorded
//! as a reference (its path in the layer and its size). [`reassemble`] replays the record,
//! reading each referenced file from the layer dir, so file data is never stored twice.
//!
//! Format: a zstd stream of `MAGIC`, then segments, each a tag byte followed by LEB128
//! varints: `RAW len bytes`, `FILE path_len path size`, and a final `END tar_size`. Raw bytes
//! are buffered up to [`PENDING_MAX`] only, so memory stays flat whatever the layer size.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};

use crate::error::{Error, IoContext, Result};
use crate::fs::Root;

const MAGIC: &[u8; 8] = b"STSPLIT1";
const END: u8 = 0;
const RAW: u8 = 1;
const FILE: u8 = 2;
/// Raw bytes gathered before they are written out as one segment.
const PENDING_MAX: usize = 64 * 1024;
/// zstd level: the record is mostly tar headers, which compress well even at a fast level.
const ZSTD_LEVEL: i32 = 3;
const COPY_BUFFER: usize = 1 << 20;

/// Writes a record as the applier streams the tar through [`Capture`].
pub(crate) struct Recorder<'w> {
    enc: zstd::stream::write::Encoder<'static, &'w mut dyn Write>,
    pending: Vec<u8>,
    /// Offset in the uncompressed tar of the next byte to come through.
    pos: u64,
    /// Bytes of the current file's content still to come (not recorded).
    content_left: u64,
    /// The first failure to write the record, reported instead of the read error it causes.
    error: Option<io::Error>,
}

pub(crate) type SharedRecorder<'w> = Rc<RefCell<Recorder<'w>>>;

impl<'w> Recorder<'w> {
    pub(crate) fn new(out: &'w mut dyn Write) -> Result<Recorder<'w>> {
        let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)
            .map_err(|e| Error::io("starting the tar-split record", e))?;
        enc.write_all(MAGIC)
            .map_err(|e| Error::io("writing the tar-split record", e))?;
        Ok(Recorder {
            enc,
            pending: Vec::with_capacity(PENDING_MAX),
            pos: 0,
            content_left: 0,
            error: None,
        })
    }

    /// Bytes `data` went past, in stream order.
    fn observe(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.pos += data.len() as u64;
        if self.content_left > 0 {
            let skip = (self.content_left.min(data.len() as u64)) as usize;
            self.content_left -= skip as u64;
            data = &data[skip..];
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() >= PENDING_MAX {
            self.flush_raw()?;
        }
        Ok(())
    }

    fn flush_raw(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.enc.write_all(&[RAW])?;
        write_varint(&mut self.enc, self.pending.len() as u64)?;
        self.enc.write_all(&self.pending)?;
        self.pending.clear();
        Ok(())
    }

    /// The next `size` bytes, starting at `file_pos`, are the content of `rel` in the layer.
    pub(crate) fn content(&mut self, rel: &Path, size: u64, file_pos: u64) -> Result<()> {
        if self.pos != file_pos || self.content_left != 0 {
            return Err(Error::Archive(format!(
                "tar-split: {} starts at byte {file_pos} but the stream is at {} (internal error)",
                rel.display(),
                self.pos
            )));
        }
        let path = rel.as_os_str().as_bytes();
        let write = |enc: &mut dyn Write| -> io::Result<()> {
            enc.write_all(&[FILE])?;
            write_varint(enc, path.len() as u64)?;
            enc.write_all(path)?;
            write_varint(enc, size)
        };
        self.flush_raw()
            .and_then(|()| write(&mut self.enc))
            .map_err(|e| Error::io("writing the tar-split record", e))?;
        self.content_left = size;
        Ok(())
    }

    /// A failure to write the record met while reading, if any.
    pub(crate) fn take_error(&mut self) -> Option<Error> {
        self.error
            .take()
            .map(|e| Error::io("writing the tar-split record", e))
    }

    /// Ends the record of a `tar_size`-byte stream and flushes it to the writer.
    pub(crate) fn finish(mut self, tar_size: u64) -> Result<()> {
        if self.pos != tar_size || self.content_left != 0 {
            return Err(Error::Archive(format!(
                "tar-split: recorded {} of {tar_size} bytes (internal error)",
                self.pos
            )));
        }
        let ctx = |e| Error::io("writing the tar-split record", e);
        self.flush_raw().map_err(ctx)?;
        self.enc.write_all(&[END]).map_err(ctx)?;
        write_varint(&mut self.enc, tar_size).map_err(ctx)?;
        self.enc.finish().and_then(|w| w.flush()).map_err(ctx)
    }
}

/// The reader the `tar` crate reads through: passes bytes on and shows them to the recorder.
/// The `tar` crate reads exactly what it parses (no read-ahead), so the recorder's position
/// is the tar reader's position.
pub(crate) struct Capture<'w, R> {
    inner: R,
    recorder: Option<SharedRecorder<'w>>,
}

impl<'w, R: Read> Capture<'w, R> {
    pub(crate) fn new(inner: R, recorder: Option<SharedRecorder<'w>>) -> Self {
        Capture { inner, recorder }
    }
    pub(crate) fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Capture<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(rec) = &self.recorder {
            let mut rec = rec.borrow_mut();
            if let Err(e) = rec.observe(&buf[..n]) {
                let shown = io::Error::other(format!("writing the tar-split record: {e}"));
                rec.error.get_or_insert(e);
                return Err(shown);
            }
        }
        Ok(n)
    }
}

/// Rebuilds, into `out`, the uncompressed tar a layer was applied from, from its tar-split
/// `record` and the files inside `root` (the layer's diff dir), which are opened without
/// following any symlink. A file changed since (size, type, gone) is an error naming it.
/// Returns the bytes written; the caller checks their digest against the diffID.
pub fn reassemble(record: &mut dyn Read, root: &Root, out: &mut dyn Write) -> Result<u64> {
    let mut dec = zstd::stream::read::Decoder::new(record)
        .map_err(|e| Error::io("starting to read a tar-split record", e))?;
    let corrupt = |what: &str| {
        Error::Corrupt(format!(
            "the tar-split record of layer dir {} is {what}; remove the image and load it again",
            root.path().display()
        ))
    };
    let mut magic = [0u8; 8];
    dec.read_exact(&mut magic)
        .map_err(|_| corrupt("truncated"))?;
    if &magic != MAGIC {
        return Err(corrupt("not a tar-split record"));
    }
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut written = 0u64;
    loop {
        let mut tag = [0u8];
        dec.read_exact(&mut tag).map_err(|_| corrupt("truncated"))?;
        let varint = |dec: &mut dyn Read| read_varint(dec).map_err(|_| corrupt("truncated"));
        match tag[0] {
            RAW => {
                let len = varint(&mut dec)?;
                let copied = copy_exact(&mut (&mut dec).take(len), out, &mut buf)
                    .ctx(|| "writing a layer tar".to_string())?;
                if copied != len {
                    return Err(corrupt("truncated"));
                }
                written += len;
            }
            FILE => {
                let path_len = varint(&mut dec)?;
                if path_len > 64 * 1024 {
                    return Err(corrupt("damaged (a path over 64 KiB)"));
                }
                let mut path = vec![0u8; path_len as usize];
                dec.read_exact(&mut path)
                    .map_err(|_| corrupt("truncated"))?;
                let size = varint(&mut dec)?;
                let rel = Path::new(std::ffi::OsStr::from_bytes(&path));
                written += copy_file(root, rel, size, out, &mut buf)?;
            }
            END => {
                let size = varint(&mut dec)?;
                if size != written {
                    return Err(corrupt("inconsistent (its size does not add up)"));
                }
                return Ok(written);
            }
            _ => return Err(corrupt("damaged (unknown segment)")),
        }
    }
}

/// Copies the `size` bytes of `rel` (a regular file, reached without following symlinks).
fn copy_file(
    root: &Root,
    rel: &Path,
    size: u64,
    out: &mut dyn Write,
    buf: &mut [u8],
) -> Result<u64> {
    let modified = |what: String| {
        Error::Corrupt(format!(
            "layer {} was modified after it was loaded: {} {what}; remove the images that use \
             it and load them again",
            root.path().display(),
            root.display(rel)
        ))
    };
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rfs::openat2(root, rel, flags, Mode::empty(), how) {
        Ok(fd) => fd,
        Err(e) => return Err(modified(format!("cannot be opened ({e})"))),
    };
    let st = rfs::fstat(&fd).ctx(|| format!("stat {}", root.display(rel)))?;
    if rfs::FileType::from_raw_mode(st.st_mode) != rfs::FileType::RegularFile {
        return Err(modified("is no longer a regular file".into()));
    }
    if st.st_size as u64 != size {
        return Err(modified(format!(
            "is {} bytes, {size} when loaded",
            st.st_size
        )));
    }
    let mut file = std::fs::File::from(fd).take(size);
    let copied =
        copy_exact(&mut file, out, buf).ctx(|| format!("reading {}", root.display(rel)))?;
    if copied != size {
        return Err(modified(format!("gave {copied} of its {size} bytes")));
    }
    Ok(size)
}

fn copy_exact(from: &mut dyn Read, to: &mut dyn Write, buf: &mut [u8]) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

fn write_varint(w: &mut dyn Write, mut v: u64) -> io::Result<()> {
    let mut bytes = [0u8; 10];
    let mut i = 0;
    loop {
        let low = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            bytes[i] = low;
            return w.write_all(&bytes[..=i]);
        }
        bytes[i] = low | 0x80;
        i += 1;
    }
}

fn read_varint(r: &mut dyn Read) -> io::Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let mut b = [0u8];
        r.read_exact(&mut b)?;
        v |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(io::Error::other("varint too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, v).unwrap();
            assert_eq!(read_varint(&mut out.as_slice()).unwrap(), v);
        }
    }
}
