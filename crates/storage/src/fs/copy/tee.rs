//! Reading a regular file's content while copying it: every chunk read from the source is
//! written to the copy before it is handed to the reader, so a copy that also hashes or
//! archives the content reads each byte once. Holes stay holes in the copy and read as zeros
//! without touching the disk.

use std::io::{self, Read};
use std::os::fd::OwnedFd;

use rustix::fs::{self as rfs, SeekFrom};
use rustix::io::Errno;

/// Large enough to keep syscalls rare, small enough to stay in cache between the read, the
/// write and the consumer's copy.
const CHUNK: usize = 256 * 1024;

/// Streams the first `size` bytes of `from`, writing them at the same offsets in `to`.
pub(super) struct Tee<'a> {
    from: &'a OwnedFd,
    to: &'a OwnedFd,
    size: u64,
    /// File offset of the next chunk to fetch.
    off: u64,
    /// End of the data extent `off` is in (0 when not known).
    data_end: u64,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl<'a> Tee<'a> {
    pub(super) fn new(from: &'a OwnedFd, to: &'a OwnedFd, size: u64) -> Self {
        Tee {
            from,
            to,
            size,
            off: 0,
            data_end: 0,
            buf: vec![0; CHUNK],
            pos: 0,
            len: 0,
        }
    }

    /// Copies whatever the consumer did not read and gives the copy its full length (a
    /// trailing hole is never written).
    pub(super) fn finish(mut self) -> io::Result<()> {
        while self.fill()? {
            self.pos = self.len;
        }
        rfs::ftruncate(self.to, self.size)?;
        Ok(())
    }

    /// Fetches the next chunk into `buf`; false at the end of the file.
    fn fill(&mut self) -> io::Result<bool> {
        if self.off >= self.size {
            return Ok(false);
        }
        if self.off >= self.data_end {
            match self.next_data()? {
                Some(start) if start == self.off => {}
                // A hole up to `start` (or the end): zeros, nothing read or written.
                hole_end => {
                    let end = hole_end.unwrap_or(self.size).min(self.size);
                    let n = ((end - self.off) as usize).min(CHUNK);
                    self.buf[..n].fill(0);
                    return Ok(self.advance(n));
                }
            }
        }
        let want = ((self.data_end - self.off) as usize).min(CHUNK);
        let n = rustix::io::pread(self.from, &mut self.buf[..want], self.off)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being copied",
            ));
        }
        let mut done = 0;
        while done < n {
            done += rustix::io::pwrite(self.to, &self.buf[done..n], self.off + done as u64)?;
        }
        Ok(self.advance(n))
    }

    fn advance(&mut self, n: usize) -> bool {
        self.pos = 0;
        self.len = n;
        self.off += n as u64;
        true
    }

    /// The start of the data extent at or after `off` (setting `data_end` when it is `off`),
    /// or None if only a hole remains.
    fn next_data(&mut self) -> io::Result<Option<u64>> {
        let start = match rfs::seek(self.from, SeekFrom::Data(self.off)) {
            Ok(d) => d,
            Err(Errno::NXIO) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if start == self.off {
            self.data_end = rfs::seek(self.from, SeekFrom::Hole(start))?.min(self.size);
        }
        Ok(Some(start))
    }
}

impl Read for Tee<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len && !self.fill()? {
            return Ok(0);
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
