//! Random ids from the kernel's random source (`getrandom`).

use crate::error::{Error, Result};

/// `bytes` random bytes as `2 * bytes` lowercase hex digits: a container, volume or storage
/// id nobody else will pick. `what` names the id in the error ("a container ID").
pub fn random_hex(bytes: usize, what: &str) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    fill(&mut buf, what)?;
    Ok(hex::encode(buf))
}

/// A random `u64` (to pick a generated name); `what` names it in the error.
pub fn random_u64(what: &str) -> Result<u64> {
    let mut buf = [0u8; 8];
    fill(&mut buf, what)?;
    Ok(u64::from_le_bytes(buf))
}

/// Fills `buf` with random bytes; `what` names their use in the error.
pub fn fill(buf: &mut [u8], what: &str) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        Error::io(
            format!("reading random bytes for {what}"),
            std::io::Error::other(e.to_string()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_of_the_asked_length_and_differ() {
        let a = random_hex(32, "a test").unwrap();
        let b = random_hex(32, "a test").unwrap();
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert_eq!(random_hex(16, "a test").unwrap().len(), 32);
    }
}
