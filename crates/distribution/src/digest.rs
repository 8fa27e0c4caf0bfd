//! Content digests (`sha256:<hex>`, also sha384/sha512 as Docker accepts them): hashing
//! while bytes stream past, and the comparison at the end.

use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::reference::validate_digest;
use crate::Error;

/// Hashes bytes with a digest's algorithm and says at the end whether they matched it.
/// Cloneable, so a caller resuming a download can hash the part it already has first.
#[derive(Clone)]
pub struct Verifier {
    expected: String,
    state: State,
}

#[derive(Clone)]
enum State {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Verifier {
    pub fn new(expected: &str) -> Result<Verifier, Error> {
        validate_digest(expected).map_err(|e| Error::InvalidDigest {
            digest: expected.to_string(),
            why: e.to_string(),
        })?;
        let state = match expected.split_once(':').map(|(a, _)| a) {
            Some("sha384") => State::Sha384(Sha384::new()),
            Some("sha512") => State::Sha512(Sha512::new()),
            _ => State::Sha256(Sha256::new()),
        };
        Ok(Verifier {
            expected: expected.to_string(),
            state,
        })
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Sha256(h) => h.update(bytes),
            State::Sha384(h) => h.update(bytes),
            State::Sha512(h) => h.update(bytes),
        }
    }

    pub fn expected(&self) -> &str {
        &self.expected
    }

    /// The digest of what went through, in `algorithm:hex` form.
    pub fn actual(&self) -> String {
        let (algorithm, hex) = match self.state.clone() {
            State::Sha256(h) => ("sha256", hex::encode(h.finalize())),
            State::Sha384(h) => ("sha384", hex::encode(h.finalize())),
            State::Sha512(h) => ("sha512", hex::encode(h.finalize())),
        };
        format!("{algorithm}:{hex}")
    }

    pub fn matches(&self) -> bool {
        self.actual() == self.expected
    }
}

/// `sha256:<hex>` of some bytes: the digest strata gives what it pushes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_by_algorithm() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(sha256_digest(b""), empty);
        let mut v = Verifier::new(empty).unwrap();
        assert!(v.matches());
        v.update(b"x");
        assert!(!v.matches());
        let sha512 = format!("sha512:{}", hex::encode(Sha512::digest(b"abc")));
        let mut v = Verifier::new(&sha512).unwrap();
        v.update(b"abc");
        assert!(v.matches());
        assert!(Verifier::new("sha256:abc").is_err());
        assert!(Verifier::new("md5:0123456789abcdef0123456789abcdef").is_err());
    }
}
