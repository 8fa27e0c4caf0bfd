//! Compression of a layer tar, detected from its first bytes (never from a media type, which
//! registries and `docker save` tarballs get wrong): gzip, zstd or plain tar. Anything else is
//! refused with a message naming what was seen.

use std::io::{self, Cursor, Read};

use crate::error::{Error, Result};

/// How a layer tar is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const BLOCK: usize = 512;
/// Formats we recognise only to name them in the refusal.
const UNSUPPORTED: &[(&[u8], &str)] = &[
    (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz"),
    (b"BZh", "bzip2"),
    (&[0x04, 0x22, 0x4d, 0x18], "lz4"),
    (b"PK\x03\x04", "zip"),
    (&[0x5d, 0x00, 0x00], "lzma"),
];

/// Reads the start of `input`, decides its compression, and returns a reader of the
/// uncompressed tar stream (the peeked bytes included).
pub fn open<'a>(input: &'a mut dyn Read) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let head = read_head(input)?;
    let compression = detect(&head)?;
    let whole = Cursor::new(head).chain(input);
    let reader: Box<dyn Read + 'a> = match compression {
        // Multi-member: Go's gzip reader (which computed the diffID) reads them all.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(whole)
                .map_err(|e| Error::Archive(format!("starting zstd decompression: {e}")))?,
        ),
        Compression::None => Box::new(whole),
    };
    Ok((compression, reader))
}

fn read_head(input: &mut dyn Read) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(BLOCK);
    input
        .take(BLOCK as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::Archive(format!("reading the start of the layer archive: {e}")))?;
    if head.is_empty() {
        return Err(Error::Archive(
            "the layer archive is empty (0 bytes)".into(),
        ));
    }
    Ok(head)
}

/// Decides the compression from the first (up to 512) bytes.
pub fn detect(head: &[u8]) -> Result<Compression> {
    if head.starts_with(GZIP_MAGIC) {
        return Ok(Compression::Gzip);
    }
    if head.starts_with(ZSTD_MAGIC) {
        return Ok(Compression::Zstd);
    }
    let shown = hex::encode(&head[..head.len().min(8)]);
    if let Some((_, name)) = UNSUPPORTED
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
    {
        return Err(Error::Archive(format!(
            "the layer is {name}-compressed (starts with {shown}); supported: plain tar, gzip, zstd"
        )));
    }
    if head.len() < BLOCK {
        return Err(Error::Archive(format!(
            "{} bytes starting with {shown} is neither a tar (too short) nor gzip or zstd",
            head.len()
        )));
    }
    if is_tar_header(head) {
        return Ok(Compression::None);
    }
    if &head[257..262] == b"ustar" {
        return Err(Error::Archive(
            "the first tar header is corrupt (checksum mismatch)".into(),
        ));
    }
    Err(Error::Archive(format!(
        "unrecognised layer format (starts with {shown}): not a tar header, gzip or zstd"
    )))
}

/// A valid first tar block: all zeros (an empty archive) or a header whose checksum matches.
fn is_tar_header(block: &[u8]) -> bool {
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .take_while(|c| *c != '\0')
        .collect::<String>()
        .trim()
        .to_string();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    sum == stored
}

/// Reads `reader` to its end, discarding the bytes (they are still hashed by whatever wraps
/// the stream). Used after the tar end-of-archive marker.
pub fn drain(reader: &mut dyn Read) -> io::Result<u64> {
    io::copy(reader, &mut io::sink())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_magic_and_names_the_unsupported() {
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]).unwrap(), Compression::Gzip);
        assert_eq!(
            detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]).unwrap(),
            Compression::Zstd
        );
        assert_eq!(detect(&[0u8; 512]).unwrap(), Compression::None);
        let xz = detect(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0])
            .unwrap_err()
            .to_string();
        assert!(xz.contains("xz") && xz.contains("supported"), "{xz}");
        let junk = detect(&[b'j'; 600]).unwrap_err().to_string();
        assert!(junk.contains("6a6a6a"), "{junk}");
    }

    #[test]
    fn accepts_a_real_tar_header() {
        let mut header = tar::Header::new_gnu();
        header.set_path("a").unwrap();
        header.set_size(0);
        header.set_cksum();
        assert!(is_tar_header(header.as_bytes()));
        let mut bad = header.as_bytes().to_vec();
        bad[0] ^= 1;
        assert!(!is_tar_header(&bad));
    }

    #[test]
    fn empty_input_is_an_error() {
        let err = open(&mut std::io::empty()).err().unwrap().to_string();
        assert!(err.contains("empty"), "{err}");
    }
}
