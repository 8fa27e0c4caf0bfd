//! Bounds the tar extension entries that the `tar` crate reads into memory whole: PAX
//! headers (`x`, `g`) and GNU long names and link names (`L`, `K`). Their data describes the
//! next entry, and the crate reads each into one buffer of the size its header claims, so a
//! 1 MiB gzip of a 4 GiB PAX header would cost 4 GiB of memory. This reader follows the
//! stream's block structure (headers, data rounded to 512 bytes, GNU sparse extension
//! blocks, a PAX `size` that overrides the next header's) and fails as soon as such an entry
//! claims more than [`MAX_EXTENSION`], the limit Go's `archive/tar` uses.

use std::io::{self, Read};

/// The largest PAX header or GNU long name accepted: 1 MiB.
pub(crate) const MAX_EXTENSION: u64 = 1 << 20;

const BLOCK: usize = 512;

pub(crate) struct HeaderLimit<R> {
    inner: R,
    block: Vec<u8>,
    state: State,
    /// The data of the PAX header being read (at most [`MAX_EXTENSION`]).
    pax: Vec<u8>,
    /// A PAX `size` for the next entry that is not itself an extension.
    pending_size: Option<u64>,
    /// The data size of a GNU sparse entry whose extension blocks are being read.
    pending_data: u64,
}

enum State {
    Header,
    SparseExtension,
    Data { left: u64, pax: bool },
}

impl<R: Read> HeaderLimit<R> {
    pub(crate) fn new(inner: R) -> Self {
        HeaderLimit {
            inner,
            block: Vec::with_capacity(BLOCK),
            state: State::Header,
            pax: Vec::new(),
            pending_size: None,
            pending_data: 0,
        }
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    fn feed(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match &mut self.state {
                State::Data { left, pax } => {
                    let n = (*left).min(data.len() as u64) as usize;
                    if *pax {
                        self.pax.extend_from_slice(&data[..n]);
                    }
                    *left -= n as u64;
                    data = &data[n..];
                    if *left == 0 {
                        if *pax {
                            self.pending_size = pax_size(&self.pax).or(self.pending_size);
                            self.pax.clear();
                        }
                        self.state = State::Header;
                    }
                }
                State::Header | State::SparseExtension => {
                    let n = (BLOCK - self.block.len()).min(data.len());
                    self.block.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if self.block.len() == BLOCK {
                        self.end_of_block()?;
                        self.block.clear();
                    }
                }
            }
        }
        Ok(())
    }

    fn end_of_block(&mut self) -> io::Result<()> {
        let b = &self.block;
        if let State::SparseExtension = self.state {
            // Byte 504 says whether another extension block follows.
            if b[504] == 0 {
                self.state = self.after_header_state(self.pending_data, false);
            }
            return Ok(());
        }
        if b.iter().all(|&x| x == 0) {
            return Ok(()); // end-of-archive block (or padding): stay on headers
        }
        let kind = b[156];
        let Some(size) = entry_size(&b[124..136]) else {
            return Ok(()); // the tar crate reports the bad header itself
        };
        let extension = matches!(kind, b'x' | b'g' | b'L' | b'K');
        if extension && size > MAX_EXTENSION {
            let what = match kind {
                b'x' | b'g' => "PAX extended header",
                _ => "GNU long name",
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a {what} of {size} bytes (more than the {MAX_EXTENSION} accepted): refusing it"
                ),
            ));
        }
        let size = match extension {
            true => size,
            false => self.pending_size.take().unwrap_or(size),
        };
        // GNU sparse: byte 482 says extension blocks of the sparse map follow the header.
        if kind == b'S' && b[482] != 0 {
            self.pending_data = size;
            self.state = State::SparseExtension;
            return Ok(());
        }
        self.state = self.after_header_state(size, kind == b'x');
        Ok(())
    }

    fn after_header_state(&self, size: u64, pax: bool) -> State {
        match size.div_ceil(BLOCK as u64) * BLOCK as u64 {
            0 => State::Header,
            padded => State::Data { left: padded, pax },
        }
    }
}

impl<R: Read> Read for HeaderLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.feed(&buf[..n])?;
        Ok(n)
    }
}

/// A header's size field: octal, or GNU base-256 when the high bit of the first byte is set.
fn entry_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

/// The `size` record of PAX header data (`LEN key=value\n` records), if any.
fn pax_size(mut data: &[u8]) -> Option<u64> {
    let mut found = None;
    while !data.is_empty() {
        let space = data.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&data[..space]).ok()?.parse().ok()?;
        if len <= space || len > data.len() {
            return found;
        }
        let record = &data[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(value) = record.strip_prefix(b"size=") {
            found = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        }
        data = &data[len..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> io::Result<u64> {
        let mut r = HeaderLimit::new(bytes);
        io::copy(&mut r, &mut io::sink())
    }

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_path("x").unwrap();
        h.set_cksum();
        h
    }

    #[test]
    fn huge_extension_headers_are_refused_before_their_data() {
        for kind in [
            tar::EntryType::XHeader,
            tar::EntryType::XGlobalHeader,
            tar::EntryType::GNULongName,
            tar::EntryType::GNULongLink,
        ] {
            let h = header(kind, MAX_EXTENSION + 1);
            let err = read_all(h.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("refusing"), "{err}");
        }
    }

    #[test]
    fn ordinary_archives_pass_including_pax_sizes_and_big_files() {
        let mut b = tar::Builder::new(Vec::new());
        let big = vec![7u8; 3 * MAX_EXTENSION as usize];
        let mut h = header(tar::EntryType::Regular, big.len() as u64);
        b.append_data(&mut h, "big", &big[..]).unwrap();
        b.append_pax_extensions([("size", &b"5"[..]), ("path", &b"p"[..])])
            .unwrap();
        // The ustar header says 0; the PAX size (5) is what follows.
        let mut h = header(tar::EntryType::Regular, 0);
        h.set_cksum();
        let mut bytes = b.into_inner().unwrap();
        bytes.truncate(bytes.len() - 1024); // the end-of-archive blocks
        bytes.extend_from_slice(h.as_bytes());
        bytes.extend_from_slice(&[1u8; 5]);
        bytes.extend_from_slice(&[0u8; 507]);
        // A header whose 'x' size would be huge only if the 5 bytes were misread as a header.
        bytes.extend_from_slice(header(tar::EntryType::Regular, 1).as_bytes());
        bytes.extend_from_slice(&[0u8; 512 + 1024]);
        read_all(&bytes).unwrap();
        let mut a = tar::Archive::new(&bytes[..]);
        assert_eq!(a.entries().unwrap().count(), 3);
    }

    #[test]
    fn sizes_parse_in_octal_and_base_256() {
        assert_eq!(entry_size(b"00000001000\0"), Some(512));
        let mut f = [0u8; 12];
        f[0] = 0x80;
        f[11] = 2;
        f[10] = 1;
        assert_eq!(entry_size(&f), Some(258));
        assert_eq!(pax_size(b"9 size=5\n12 path=abc\n"), Some(5));
    }
}
