//! Docker image references, `[registry[:port]/]path[:tag]`, with Docker's grammar and its
//! familiar display (`busybox:latest`, not `docker.io/library/busybox:latest`).

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A named, tagged image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Repository, as given: `busybox`, `example.com:5000/team/app`.
    pub name: String,
    pub tag: String,
}

const MAX_NAME: usize = 255;
const MAX_TAG: usize = 128;

impl FromStr for Reference {
    type Err = Error;

    fn from_str(input: &str) -> Result<Reference, Error> {
        let bad = |why: &str| Error::InvalidReference {
            input: input.into(),
            why: why.into(),
        };
        if input.contains('@') {
            return Err(bad(
                "digest references (@sha256:...) are not supported here; use NAME[:TAG]",
            ));
        }
        let (name, tag) = match input.rfind(':') {
            Some(i) if !input[i + 1..].contains('/') => (&input[..i], &input[i + 1..]),
            _ => (input, "latest"),
        };
        if name.is_empty() {
            return Err(bad("the repository name is empty"));
        }
        if name.len() > MAX_NAME {
            return Err(bad("the repository name is longer than 255 characters"));
        }
        if !valid_tag(tag) {
            return Err(bad(
                "a tag is 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
            ));
        }
        let mut components = name.split('/').peekable();
        let first = components.peek().copied().unwrap_or_default();
        let has_domain = name.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        if has_domain {
            components.next();
            if !valid_domain(first) {
                return Err(bad(
                    "the registry part must be a host name with an optional :port",
                ));
            }
        }
        for component in components {
            if !valid_path_component(component) {
                return Err(bad(
                    "repository names are lowercase letters and digits, separated by '.', '_', '__', '-' or '/'",
                ));
            }
        }
        Ok(Reference {
            name: familiar(name),
            tag: tag.to_string(),
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// Docker's familiar form of a repository name: `docker.io/library/busybox` and
/// `library/busybox` are `busybox`, `docker.io/me/app` is `me/app`; so that every spelling
/// finds the same tag.
fn familiar(name: &str) -> String {
    let rest = ["docker.io/", "index.docker.io/"]
        .iter()
        .find_map(|d| name.strip_prefix(d))
        .unwrap_or(name);
    match rest.strip_prefix("library/") {
        Some(official) if !official.contains('/') => official.to_string(),
        _ => rest.to_string(),
    }
}

fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    first_ok
        && tag.len() <= MAX_TAG
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    port_ok && host.split('.').all(label_ok)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_references_parse_with_default_tag() {
        for (input, name, tag) in [
            ("busybox", "busybox", "latest"),
            ("busybox:1.36", "busybox", "1.36"),
            ("library/busybox:v1_x-y", "busybox", "v1_x-y"),
            ("docker.io/library/busybox", "busybox", "latest"),
            ("index.docker.io/me/app:1", "me/app", "1"),
            ("library/a/b", "library/a/b", "latest"),
            ("localhost:5000/app", "localhost:5000/app", "latest"),
            (
                "registry.example.com:5000/team/app:2",
                "registry.example.com:5000/team/app",
                "2",
            ),
            ("a__b.c-d---e", "a__b.c-d---e", "latest"),
        ] {
            let r: Reference = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((r.name.as_str(), r.tag.as_str()), (name, tag), "{input}");
        }
        assert_eq!(
            "busybox".parse::<Reference>().unwrap().to_string(),
            "busybox:latest"
        );
    }

    #[test]
    fn invalid_references_are_refused_with_the_rule() {
        for input in [
            "",
            "Bad:Name",
            "UPPER",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "name:",
            "name:.tag",
            "name:-tag",
            "a/b@sha256:00",
            "name:tag:extra/x",
            "bad host:5000/x",
        ] {
            let err = input.parse::<Reference>().expect_err(input);
            assert!(
                err.to_string().contains("invalid reference format"),
                "{input}: {err}"
            );
        }
        let long_tag = format!("x:{}", "t".repeat(129));
        assert!(long_tag.parse::<Reference>().is_err());
    }
}
