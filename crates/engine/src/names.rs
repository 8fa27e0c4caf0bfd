//! Names of containers, volumes and writable layers: validated like Docker's container names, or
//! generated — `adjective_surname` for containers, as Docker does, and `<image>-working-<n>`
//! for the writable layers `strata mount` makes, as buildah names working containers.

use strata_image::Image;

use crate::error::{Error, Result};

/// Whether `s` has the shape of a container ID (64 lower-case hex digits), which names a
/// container's writable layer too.
pub(crate) fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

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

const ADJECTIVES: [&str; 50] = [
    "admiring",
    "adoring",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "confident",
    "cool",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elegant",
    "epic",
    "festive",
    "focused",
    "friendly",
    "frosty",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "happy",
    "hopeful",
    "hungry",
    "jolly",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "modest",
    "nifty",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "vibrant",
];

const SURNAMES: [&str; 50] = [
    "agnesi",
    "albattani",
    "allen",
    "archimedes",
    "babbage",
    "bardeen",
    "bell",
    "bhabha",
    "blackwell",
    "bohr",
    "booth",
    "brahmagupta",
    "cannon",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euclid",
    "euler",
    "fermat",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "goldberg",
    "goodall",
    "hamilton",
    "hawking",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "knuth",
    "lamport",
    "lovelace",
    "meitner",
    "mendel",
    "newton",
    "noether",
    "pascal",
    "ritchie",
    "shannon",
    "swartz",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "wilson",
    "wozniak",
    "yonath",
];

/// A Docker-style `adjective_surname` from `random` (any random number), with a digit
/// appended once `attempt` > 0 (Docker retries the same way when a name is taken).
pub fn generate_container_name(random: u64, attempt: u32) -> String {
    let adjective = ADJECTIVES[(random % 50) as usize];
    let surname = SURNAMES[((random / 50) % 50) as usize];
    // Docker's one exception: Steve Wozniak is not boring.
    let adjective = if (adjective, surname) == ("boring", "wozniak") {
        "brave"
    } else {
        adjective
    };
    match attempt {
        0 => format!("{adjective}_{surname}"),
        n => format!(
            "{adjective}_{surname}{}",
            (random / 2500) % 10 + u64::from(n)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_container_names_are_valid_and_varied() {
        let names: std::collections::HashSet<String> =
            (0..2500).map(|r| generate_container_name(r, 0)).collect();
        assert!(names.len() > 2000, "{}", names.len());
        for n in &names {
            assert!(validate(n).is_ok(), "{n}");
            assert!(!n.contains("boring_wozniak"));
        }
        assert!(generate_container_name(7, 1)
            .chars()
            .last()
            .unwrap()
            .is_ascii_digit());
    }

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
