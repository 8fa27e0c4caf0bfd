//! A streaming tar writer with deterministic headers (mode 0644/0755, owner 0, mtime 0, no
//! user names), so that saving the same images twice gives the same bytes. Members whose
//! content is written by a callback (a layer from the store) must know their size first.

use std::io::Write;

use strata_storage::error::IoContext;

use crate::error::{Error, Result};

pub(crate) struct TarOut<'a> {
    out: &'a mut dyn Write,
}

impl<'a> TarOut<'a> {
    pub(crate) fn new(out: &'a mut dyn Write) -> TarOut<'a> {
        TarOut { out }
    }

    pub(crate) fn dir(&mut self, name: &str) -> Result<()> {
        self.header(name, 0, tar::EntryType::Directory)
    }

    pub(crate) fn file(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.header(name, bytes.len() as u64, tar::EntryType::Regular)?;
        self.out
            .write_all(bytes)
            .ctx(|| format!("writing {name}"))?;
        self.pad(bytes.len() as u64)
    }

    /// A member of `size` bytes that `write` produces; it must write exactly that many.
    pub(crate) fn stream(
        &mut self,
        name: &str,
        size: u64,
        write: impl FnOnce(&mut dyn Write) -> Result<u64>,
    ) -> Result<()> {
        self.header(name, size, tar::EntryType::Regular)?;
        let written = write(&mut *self.out)?;
        if written != size {
            return Err(Error::Archive(format!(
                "{name}: {written} bytes written where the store recorded {size}; the output \
                 is unusable"
            )));
        }
        self.pad(size)
    }

    /// The end-of-archive marker (two zero blocks), and a flush.
    pub(crate) fn finish_ref(&mut self) -> Result<()> {
        self.out
            .write_all(&[0; 1024])
            .and_then(|()| self.out.flush())
            .ctx(|| "finishing the archive".to_string())
            .map_err(Error::from)
    }

    fn header(&mut self, name: &str, size: u64, kind: tar::EntryType) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_path(name)
            .ctx(|| format!("archive member name {name}"))?;
        h.set_size(size);
        h.set_entry_type(kind);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        self.out
            .write_all(h.as_bytes())
            .ctx(|| format!("writing the header of {name}"))
            .map_err(Error::from)
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        let rem = (512 - size % 512) % 512;
        self.out
            .write_all(&[0; 512][..rem as usize])
            .ctx(|| "writing tar padding".to_string())
            .map_err(Error::from)
    }
}
