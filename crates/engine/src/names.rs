//! Names of writable layers: validated like Docker's container names, or generated from the
//! image they are made from (`busybox-working-1`, as buildah names working containers).

use strata_image::Image;

use crate::error::{Error, Result};

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn validate(name: &str) -> Result<&str> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        Ok(name)
    } else {
        Err(Error::InvalidName {
            name: name.into(),
            why: "names are 1-128 of [a-zA-Z0-9_.-], starting with a letter or digit",
        })
    }
}

/// `<last path component of the image's first tag, or its short ID>-working-<n>`, the first
/// `n` for which `taken` says no.
pub fn generate(image: &Image, taken: impl Fn(&str) -> bool) -> String {
    let base = base(image);
    (1..)
        .map(|n| format!("{base}-working-{n}"))
        .find(|n| !taken(n))
        .expect("some n is free")
}

/// The last path component of the image's first tag, or its short ID.
pub fn base(image: &Image) -> &str {
    match image.tags.first() {
        Some(tag) => tag.name.rsplit('/').next().unwrap_or("layer"),
        None => image.short_id(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for ok in ["a", "web-1", "x.y_z", "A9"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "a/b", "a b", "../x"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}
