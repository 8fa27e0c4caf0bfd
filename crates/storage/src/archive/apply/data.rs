//! Regular file content, copied from the entry into the fresh file with a hole wherever a
//! whole aligned block is zero. GNU sparse entries deliver their holes as zeros, and `docker
//! export` (Go's archive/tar) sends a sparse file as a plain entry full of zeros: either way
//! the file comes out sparse with the same content. The tar-split record is unaffected: it
//! refers to the file, whose holes read back as the zeros they were.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::Applier;
use crate::error::{Error, IoContext, Result};

/// Big enough that large files stream in few syscalls, small enough for the memory budget.
const COPY_BUFFER: usize = 1 << 20;
/// Granularity of hole detection: the page and usual filesystem block size; a shorter zero
/// run could not become a hole anyway.
const HOLE_BLOCK: usize = 4096;
/// Compared against with `==`, which is a `memcmp`: fast even unoptimized, and it stops at
/// the first non-zero byte, so data blocks cost next to nothing to check.
static ZEROS: [u8; HOLE_BLOCK] = [0; HOLE_BLOCK];

impl Applier<'_, '_> {
    pub(super) fn copy_data<R: Read>(
        &mut self,
        rel: &Path,
        entry: &mut tar::Entry<'_, R>,
        file: &File,
    ) -> Result<()> {
        let header = entry.header();
        let expected = match header
            .as_gnu()
            .filter(|_| header.entry_type().is_gnu_sparse())
        {
            Some(gnu) => gnu
                .real_size()
                .map_err(|e| self.read_error("a sparse header", e))?,
            None => entry.size(),
        };
        if self.buf.is_empty() {
            self.buf = vec![0; COPY_BUFFER];
        }
        let mut out = SparseWriter::new(file);
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(&format!("entry {}", rel.display()), e)),
            };
            out.write(&self.buf[..n])
                .ctx(|| format!("writing {}", self.root.display(rel)))?;
        }
        if out.pos != expected {
            return Err(Error::Archive(format!(
                "{} is truncated: {} of {expected} bytes in the {} stream",
                rel.display(),
                out.pos,
                self.compression.name()
            )));
        }
        out.finish()
            .ctx(|| format!("sizing {}", self.root.display(rel)))
    }
}

/// Writes a stream into an empty file at increasing offsets, skipping all-zero blocks (aligned
/// on file offsets): bytes never written read back as zeros.
struct SparseWriter<'f> {
    file: &'f File,
    /// Offset of the next byte of the stream.
    pos: u64,
    /// End of the last byte written: the file's length until [`SparseWriter::finish`].
    written: u64,
}

impl<'f> SparseWriter<'f> {
    fn new(file: &'f File) -> Self {
        SparseWriter {
            file,
            pos: 0,
            written: 0,
        }
    }

    /// Writes `chunk` (the next bytes of the stream) in one `pwrite` per run of data blocks.
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let mut run: Option<usize> = None; // start of the current data run in `chunk`
        let mut i = 0;
        while i < chunk.len() {
            let offset = self.pos + i as u64;
            let to_boundary = HOLE_BLOCK - (offset % HOLE_BLOCK as u64) as usize;
            let end = chunk.len().min(i + to_boundary);
            let block = &chunk[i..end];
            if block == &ZEROS[..block.len()] {
                if let Some(start) = run.take() {
                    self.write_at(&chunk[start..i], start)?;
                }
            } else if run.is_none() {
                run = Some(i);
            }
            i = end;
        }
        if let Some(start) = run {
            self.write_at(&chunk[start..], start)?;
        }
        self.pos += chunk.len() as u64;
        Ok(())
    }

    fn write_at(&mut self, data: &[u8], start_in_chunk: usize) -> io::Result<()> {
        let offset = self.pos + start_in_chunk as u64;
        self.file.write_all_at(data, offset)?;
        self.written = offset + data.len() as u64;
        Ok(())
    }

    /// Extends the file over trailing zeros that were skipped.
    fn finish(self) -> io::Result<()> {
        if self.written < self.pos {
            self.file.set_len(self.pos)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::{SparseWriter, HOLE_BLOCK};

    /// Writes `stream` in chunks of `chunk` bytes; returns the file's content and blocks used.
    fn write(stream: &[u8], chunk: usize) -> (Vec<u8>, u64) {
        let file = tempfile::tempfile().unwrap();
        let mut out = SparseWriter::new(&file);
        for piece in stream.chunks(chunk) {
            out.write(piece).unwrap();
        }
        out.finish().unwrap();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut content).unwrap();
        (content, file.metadata().unwrap().blocks())
    }

    #[test]
    fn content_is_kept_whatever_the_chunking() {
        let mut stream = vec![0u8; 64 * HOLE_BLOCK + 100];
        stream[5] = 1; // data in the first block
        stream[10 * HOLE_BLOCK - 1] = 2; // last byte of a block
        stream[10 * HOLE_BLOCK] = 3; // first byte of the next
        stream[40 * HOLE_BLOCK + 7..41 * HOLE_BLOCK + 9].fill(4); // a run across blocks
        for chunk in [1000, HOLE_BLOCK, 3 * HOLE_BLOCK + 1, stream.len()] {
            let (content, _) = write(&stream, chunk);
            assert!(content == stream, "chunks of {chunk}");
        }
        let (_, zeros_end) = write(&stream[..60 * HOLE_BLOCK], HOLE_BLOCK);
        assert!(
            zeros_end * 512 <= 16 * HOLE_BLOCK as u64,
            "zeros were written"
        );
    }

    #[test]
    fn all_zero_stream_makes_a_hole_of_the_right_length() {
        let (content, blocks) = write(&vec![0u8; 1 << 20], 1 << 16);
        assert_eq!(content.len(), 1 << 20);
        assert!(content.iter().all(|&b| b == 0));
        assert_eq!(blocks, 0);
    }
}
