//! Image references normalised as Docker normalises them (distribution/reference's
//! `ParseNormalizedNamed` followed by `TagNameOnly`): `busybox` is
//! `docker.io/library/busybox:latest`, `localhost/x` and `host:port/ns/name` keep their
//! registry, and errors carry Docker's wording so users see the messages they know.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use regex::Regex;

/// Docker Hub's canonical name, and the host its API actually answers on.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a string is not a reference, worded as Docker words it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    RemoteNameUppercase(String),
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    #[error("repository name must have at least one component")]
    NameEmpty,
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier(String),
    #[error("invalid checksum digest format")]
    DigestInvalidFormat,
    #[error("invalid checksum digest length")]
    DigestInvalidLength,
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
}

/// A normalised reference: always a registry and a repository path, a tag unless only a
/// digest was given, and the digest when one was given (the digest wins when pulling).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

struct Patterns {
    reference: Regex,
    identifier: Regex,
    digest: Regex,
}

/// Docker's grammar (distribution/reference `regexp.go`), composed the same way. Go's `\w`
/// is ASCII-only, hence the explicit classes.
fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let alphanumeric = "[a-z0-9]+";
        let separator = "(?:[._]|__|[-]+)";
        let path_component = format!("{alphanumeric}(?:{separator}{alphanumeric})*");
        let remote_name = format!("{path_component}(?:/{path_component})*");
        let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
        let domain_name = format!(r"{domain_component}(?:\.{domain_component})*");
        let ipv6 = r"\[(?:[a-fA-F0-9:]+)\]";
        let domain = format!("(?:{domain_name}|{ipv6})(?::[0-9]+)?");
        let name = format!("(?:{domain}/)?{remote_name}");
        let tag = "[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}";
        let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}";
        let compile = |re: &str| Regex::new(re).expect("reference grammar compiles");
        Patterns {
            reference: compile(&format!("^({name})(?::({tag}))?(?:@({digest}))?$")),
            identifier: compile("^[a-f0-9]{64}$"),
            digest: compile(&format!("^{digest}$")),
        }
    })
}

/// Docker's `splitDockerDomain`: the first component is a registry only when it looks like
/// a host (a dot, a port, `localhost`, or uppercase letters, which no repository may have).
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    if domain == DOCKER_HUB_LEGACY {
        domain = DOCKER_HUB.to_string();
    }
    if domain == DOCKER_HUB && !remainder.contains('/') {
        remainder = format!("library/{remainder}");
    }
    (domain, remainder)
}

/// go-digest's `Digest.Validate`, for the algorithms Docker registers.
pub(crate) fn validate_digest(digest: &str) -> Result<(), ParseError> {
    let Some((algorithm, encoded)) = digest
        .split_once(':')
        .filter(|(a, e)| !a.is_empty() && !e.is_empty())
    else {
        return Err(ParseError::DigestInvalidFormat);
    };
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ if patterns().digest.is_match(digest) => return Err(ParseError::DigestUnsupported),
        _ => return Err(ParseError::DigestInvalidFormat),
    };
    if encoded.len() != hex_len {
        return Err(ParseError::DigestInvalidLength);
    }
    if !encoded
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ParseError::DigestInvalidFormat);
    }
    Ok(())
}

impl Reference {
    /// Docker's `ParseNormalizedNamed`: no default tag is added.
    pub fn parse_normalized(input: &str) -> Result<Reference, ParseError> {
        let patterns = patterns();
        if patterns.identifier.is_match(input) {
            return Err(ParseError::HexIdentifier(input.to_string()));
        }
        let (domain, remainder) = split_docker_domain(input);
        let remote = remainder
            .split_once(':')
            .map_or(remainder.as_str(), |(r, _)| r);
        if remote.to_lowercase() != remote {
            return Err(ParseError::RemoteNameUppercase(remote.to_string()));
        }
        let full = format!("{domain}/{remainder}");
        let Some(captures) = patterns.reference.captures(&full) else {
            if patterns.reference.is_match(&full.to_lowercase()) {
                return Err(ParseError::NameContainsUppercase);
            }
            return Err(ParseError::InvalidFormat);
        };
        if captures[1].len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ParseError::NameTooLong);
        }
        let digest = captures.get(3).map(|m| m.as_str().to_string());
        if let Some(digest) = &digest {
            validate_digest(digest)?;
        }
        Ok(Reference {
            repository: captures[1][domain.len() + 1..].to_string(),
            registry: domain,
            tag: captures.get(2).map(|m| m.as_str().to_string()),
            digest,
        })
    }

    /// The registry as written (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host and port requests go to: Docker Hub's API lives on its own host.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The repository path inside the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What the manifest endpoint is asked for: the digest when there is one, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// `docker.io/library/busybox`: the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository on another registry (a mirror).
    pub(crate) fn with_registry(&self, registry: &str) -> Reference {
        Reference {
            registry: registry.to_string(),
            ..self.clone()
        }
    }

    /// This name pinned to a digest (`name@sha256:...`), as `RepoDigests` lists it.
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// Docker's `FamiliarString`: `busybox:latest`, `user/app:1`, `host:5000/x:tag`.
    pub fn familiar(&self) -> String {
        let mut name = if self.registry == DOCKER_HUB {
            let path = &self.repository;
            path.strip_prefix("library/")
                .filter(|p| !p.contains('/'))
                .unwrap_or(path)
                .to_string()
        } else {
            self.name()
        };
        self.push_suffix(&mut name);
        name
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
    }
}

/// `ParseNormalizedNamed` then `TagNameOnly`: a reference with neither tag nor digest gets
/// `latest`, as `docker pull NAME` does.
impl FromStr for Reference {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Reference, ParseError> {
        let mut reference = Reference::parse_normalized(input)?;
        if reference.tag.is_none() && reference.digest.is_none() {
            reference.tag = Some("latest".to_string());
        }
        Ok(reference)
    }
}

/// The fully qualified form: `docker.io/library/busybox:latest`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(input: &str) -> String {
        input.parse::<Reference>().unwrap().to_string()
    }

    fn error(input: &str) -> String {
        input.parse::<Reference>().unwrap_err().to_string()
    }

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn docker_hub_names_are_normalised() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(
            full("library/busybox:1.36"),
            "docker.io/library/busybox:1.36"
        );
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            full("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            full("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("a/b/c"), "docker.io/a/b/c:latest");
        // Without a slash a colon is a tag, never a port.
        assert_eq!(full("test.com:5000"), "docker.io/library/test.com:5000");
        let r: Reference = "busybox".parse().unwrap();
        assert_eq!(
            (r.registry(), r.api_host()),
            ("docker.io", "registry-1.docker.io")
        );
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.familiar(), "busybox:latest");
        assert_eq!(
            "user/app:v1".parse::<Reference>().unwrap().familiar(),
            "user/app:v1"
        );
    }

    #[test]
    fn registries_are_kept() {
        assert_eq!(full("localhost/x"), "localhost/x:latest");
        assert_eq!(
            full("localhost:5000/ns/name:tag"),
            "localhost:5000/ns/name:tag"
        );
        assert_eq!(full("127.0.0.1:5000/app"), "127.0.0.1:5000/app:latest");
        assert_eq!(full("example.com/app"), "example.com/app:latest");
        assert_eq!(full("[::1]:5000/app"), "[::1]:5000/app:latest");
        // An uppercase first component can only be a host.
        assert_eq!(full("Example.COM/app"), "Example.COM/app:latest");
        assert_eq!(full("FOO/app"), "FOO/app:latest");
        let r: Reference = "host:5000/ns/name:tag".parse().unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("host:5000", "ns/name", Some("tag"))
        );
        assert_eq!(r.familiar(), "host:5000/ns/name:tag");
        // A port on a name that is not a host is not a registry.
        assert_eq!(full("localhostx/app"), "docker.io/localhostx/app:latest");
    }

    #[test]
    fn digests() {
        let r: Reference = format!("busybox@{DIGEST}").parse().unwrap();
        assert_eq!((r.tag(), r.digest()), (None, Some(DIGEST)));
        assert_eq!(r.manifest_reference(), DIGEST);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{DIGEST}"));
        let r: Reference = format!("busybox:1.36@{DIGEST}").parse().unwrap();
        assert_eq!((r.tag(), r.manifest_reference()), (Some("1.36"), DIGEST));
        assert_eq!(r.familiar(), format!("busybox:1.36@{DIGEST}"));
        assert_eq!(error("busybox@sha256:abc"), "invalid reference format");
        let short = "sha256:0123456789abcdef0123456789abcdef";
        assert_eq!(
            error(&format!("busybox@{short}")),
            "invalid checksum digest length"
        );
        let upper = DIGEST.replace('e', "E");
        assert_eq!(
            error(&format!("busybox@{upper}")),
            "invalid checksum digest format"
        );
        let md5 = "md5:0123456789abcdef0123456789abcdef";
        assert_eq!(
            error(&format!("busybox@{md5}")),
            "unsupported digest algorithm"
        );
    }

    #[test]
    fn docker_errors() {
        assert_eq!(error(""), "invalid reference format");
        assert_eq!(error("::"), "invalid reference format");
        assert_eq!(error("busybox:"), "invalid reference format");
        assert_eq!(error("-busybox"), "invalid reference format");
        assert_eq!(error("a//b"), "invalid reference format");
        assert_eq!(error("busybox:bad tag"), "invalid reference format");
        assert_eq!(
            error(&format!("busybox:{}", "t".repeat(129))),
            "invalid reference format"
        );
        assert_eq!(
            error("Busybox"),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            error("example.com/Team/app:Tag"),
            "invalid reference format: repository name (Team/app) must be lowercase"
        );
        assert_eq!(
            error(&"a".repeat(64).replace('a', "b")),
            format!(
                "invalid repository name ({}), cannot specify 64-byte hexadecimal strings",
                "b".repeat(64)
            )
        );
        let long = format!("example.com/{}", "a".repeat(250));
        assert_eq!(
            error(&long),
            "repository name must not be more than 255 characters"
        );
        // Tags may have uppercase letters; separators may repeat dashes.
        assert_eq!(
            full("app:Latest-1.0_x"),
            "docker.io/library/app:Latest-1.0_x"
        );
        assert_eq!(
            full("my--app__x.y"),
            "docker.io/library/my--app__x.y:latest"
        );
        assert_eq!(error("my___app"), "invalid reference format");
    }
}
