//! Manifest kinds by media type, the few fields pulling needs (descriptors, platforms), and
//! platform selection from an index. The raw bytes stay the source of truth: digests are of
//! them, and nothing here re-serialises a manifest.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// What pulls ask for, best first. Schema 1 is accepted only to be refused clearly.
pub(crate) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json;q=0.9, \
    application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1, \
    application/vnd.docker.distribution.manifest.v1+json;q=0.1";

/// Manifests larger than this are refused before they are read in full, as containerd does.
pub const MANIFEST_SIZE_LIMIT: u64 = 4 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An image manifest (OCI or Docker schema 2).
    Image,
    /// An index or manifest list.
    Index,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

/// An image manifest's content: its config and layers in order, lowest first.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Index {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sniff {
    #[serde(default)]
    schema_version: Option<u64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
}

/// The kind of a manifest from its `Content-Type`, or from its own fields when the registry
/// sent a generic type. Schema 1 and unknown types are errors.
pub(crate) fn kind_of(
    what: &str,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<(Kind, String)> {
    let unsupported = |media_type: &str, why: &str| Error::UnsupportedManifest {
        what: what.to_string(),
        media_type: media_type.to_string(),
        why: why.to_string(),
    };
    let content_type =
        content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_ascii_lowercase());
    let sniffed: Option<Sniff> = serde_json::from_slice(bytes).ok();
    let media_type = match content_type.as_deref() {
        Some(
            t @ (OCI_MANIFEST
            | OCI_INDEX
            | DOCKER_MANIFEST
            | DOCKER_MANIFEST_LIST
            | DOCKER_SCHEMA1
            | DOCKER_SCHEMA1_SIGNED),
        ) => t.to_string(),
        _ => match &sniffed {
            Some(s) if s.schema_version == Some(1) => DOCKER_SCHEMA1.to_string(),
            Some(Sniff {
                media_type: Some(t),
                ..
            }) => t.clone(),
            Some(Sniff {
                manifests: Some(_), ..
            }) => OCI_INDEX.to_string(),
            Some(_) => OCI_MANIFEST.to_string(),
            None => {
                return Err(unsupported(
                    content_type.as_deref().unwrap_or(""),
                    "not a JSON manifest",
                ))
            }
        },
    };
    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => Ok((Kind::Image, media_type)),
        OCI_INDEX | DOCKER_MANIFEST_LIST => Ok((Kind::Index, media_type)),
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Err(unsupported(
            &media_type,
            "Docker image manifest version 2, schema 1 is no longer supported (docker removed it too); \
             the image's author should push it again as schema 2 or OCI",
        )),
        other => Err(unsupported(other, "not an image manifest or index")),
    }
}

/// `os/architecture[/variant]`, normalised as containerd normalises platforms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's platform, in Go's (and so the registries') names.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        let variant = (architecture == "arm").then(|| "v7".to_string());
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant,
        }
    }

    /// Parses `--platform` values: `linux/arm64`, `linux/arm/v7`, `linux/x86_64`.
    pub fn parse(input: &str) -> Result<Platform> {
        let bad = |why: &str| Error::InvalidPlatform {
            what: "platform".into(),
            input: input.into(),
            why: why.into(),
        };
        let parts: Vec<&str> = input.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad("expected os/architecture[/variant]"));
        }
        let variant = parts.get(2).map(|v| v.to_ascii_lowercase());
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: parts[1].to_ascii_lowercase(),
            variant,
        }
        .normalized())
    }

    fn normalized(&self) -> Platform {
        let mut variant = self.variant.clone();
        let is =
            |v: &Option<String>, names: &[&str]| v.as_deref().is_some_and(|v| names.contains(&v));
        let architecture = match self.architecture.as_str() {
            "x86_64" | "x86-64" | "amd64" => {
                if is(&variant, &["v1"]) {
                    variant = None;
                }
                "amd64"
            }
            "aarch64" | "arm64" => {
                if is(&variant, &["v8", "8"]) {
                    variant = None;
                }
                "arm64"
            }
            "armhf" | "armel" | "arm" => {
                let default = if self.architecture == "armel" {
                    "v6"
                } else {
                    "v7"
                };
                let v = variant.take().unwrap_or_else(|| default.to_string());
                variant = Some(if v.starts_with('v') {
                    v
                } else {
                    format!("v{v}")
                });
                "arm"
            }
            "i386" | "i686" | "386" => "386",
            other => other,
        };
        Platform {
            os: self.os.to_ascii_lowercase(),
            architecture: architecture.to_string(),
            variant,
        }
    }

    /// Whether an index entry's platform serves this one. A wanted platform without a
    /// variant takes any variant of its architecture.
    pub fn matches(&self, other: &Platform) -> bool {
        let (want, have) = (self.normalized(), other.normalized());
        want.os == have.os
            && want.architecture == have.architecture
            && (self.variant.is_none() && want.architecture != "arm"
                || want.variant == have.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The first entry of an index for `wanted`, skipping entries that are not images
/// (attestations are `unknown/unknown`).
pub(crate) fn select<'a>(
    what: &str,
    index: &'a Index,
    wanted: &Platform,
) -> Result<&'a Descriptor> {
    let found = index
        .manifests
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| wanted.matches(p)));
    found.ok_or_else(|| {
        let available: Vec<String> = index
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .filter(|p| p.os != "unknown")
            .map(|p| p.to_string())
            .collect();
        Error::NoMatchingPlatform {
            what: what.to_string(),
            wanted: wanted.to_string(),
            available: if available.is_empty() {
                "no platforms".into()
            } else {
                available.join(", ")
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn platform_matching() {
        assert!(p("linux/amd64").matches(&p("linux/x86_64")));
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").matches(&p("linux/arm64")));
        assert!(p("linux/arm").matches(&p("linux/arm/v7")));
        assert!(!p("linux/arm/v6").matches(&p("linux/arm/v7")));
        assert!(!p("linux/amd64").matches(&p("linux/arm64")));
        assert!(!p("windows/amd64").matches(&p("linux/amd64")));
        assert_eq!(p("linux/armhf").to_string(), "linux/arm/v7");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn kinds() {
        let image = br#"{"schemaVersion":2,"config":{"digest":"x","size":1},"layers":[]}"#;
        assert_eq!(
            kind_of("m", Some(DOCKER_MANIFEST), image).unwrap(),
            (Kind::Image, DOCKER_MANIFEST.into())
        );
        assert_eq!(
            kind_of("m", Some("application/json"), image).unwrap().0,
            Kind::Image
        );
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(kind_of("m", None, index).unwrap().0, Kind::Index);
        let schema1 = br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        let err = kind_of("m", Some("application/json"), schema1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("schema 1"), "{err}");
        assert!(kind_of("m", Some(DOCKER_SCHEMA1_SIGNED), b"{}").is_err());
        assert!(kind_of("m", Some("text/html"), b"<html>").is_err());
    }

    #[test]
    fn selection() {
        let index: Index = serde_json::from_str(
            r#"{"manifests":[
              {"digest":"a","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
              {"digest":"b","size":1,"platform":{"os":"linux","architecture":"amd64"}},
              {"digest":"c","size":1,"platform":{"os":"unknown","architecture":"unknown"}}]}"#,
        )
        .unwrap();
        assert_eq!(select("i", &index, &p("linux/amd64")).unwrap().digest, "b");
        assert_eq!(select("i", &index, &p("linux/arm64")).unwrap().digest, "a");
        let err = select("i", &index, &p("linux/s390x"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no matching manifest for linux/s390x"),
            "{err}"
        );
        assert!(err.contains("linux/arm64/v8, linux/amd64"), "{err}");
    }
}
