//! Pull primitives: a manifest by tag or digest (content negotiation, the size limit, digest
//! verification), an index resolved to one platform's manifest, and blobs streamed through
//! a reader that verifies size and digest at the end and can resume with a range request.

use std::io::{self, Read};

use ureq::http::{header, Response};
use ureq::{Body, BodyReader};

use crate::client::{check, Client};
use crate::digest::Verifier;
use crate::manifest::{
    self, Descriptor, ImageManifest, Index, Kind, Platform, ACCEPT, MANIFEST_SIZE_LIMIT,
};
use crate::{Error, Reference, Result};

/// A manifest as the registry sent it.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub media_type: String,
    pub kind: Kind,
    /// The digest of `bytes`, verified against what was asked for or announced.
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl Manifest {
    pub fn image(&self, what: &str) -> Result<ImageManifest> {
        self.parse(what)
    }

    pub fn index(&self, what: &str) -> Result<Index> {
        self.parse(what)
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T> {
        serde_json::from_slice(&self.bytes).map_err(|e| Error::Protocol {
            what: what.to_string(),
            message: format!("invalid {} manifest: {e}", self.media_type),
        })
    }
}

/// A reference resolved to one image manifest.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The index or manifest list the tag or digest named, when it named one.
    pub index: Option<Manifest>,
    pub manifest: Manifest,
    pub image: ImageManifest,
    /// The digest the reference resolved to (the index's when there is one), for
    /// `RepoDigests` and `Digest:` lines.
    pub digest: String,
    /// Where the manifest came from, and so where to fetch its blobs: the reference itself,
    /// or the same repository on the registry mirror that answered.
    pub source: Reference,
}

/// Where a resumed download starts: the bytes already held, hashed.
pub struct Resume {
    pub offset: u64,
    /// A [`Verifier`] for the blob's digest that has seen the first `offset` bytes.
    pub verifier: Verifier,
}

fn repo_path(reference: &Reference) -> String {
    format!("/v2/{}", reference.repository())
}

pub(crate) fn pull_scope(reference: &Reference) -> String {
    format!("repository:{}:pull", reference.repository())
}

impl Client {
    /// The manifest `reference` names (its digest if it has one, else its tag), as sent.
    pub fn fetch_manifest(&self, reference: &Reference) -> Result<Manifest> {
        self.fetch_manifest_at(reference, reference.manifest_reference(), None)
    }

    /// `reference`'s repository, manifest `tag_or_digest`; `expected_size` from a descriptor.
    pub fn fetch_manifest_at(
        &self,
        reference: &Reference,
        tag_or_digest: &str,
        expected_size: Option<u64>,
    ) -> Result<Manifest> {
        let what = format!("manifest {}", name_at(reference, tag_or_digest));
        let host = self.host(reference.registry(), reference.api_host())?;
        let url_path = format!("{}/manifests/{tag_or_digest}", repo_path(reference));
        let mut send = |endpoint: &crate::transport::Endpoint, auth: Option<&str>| {
            let mut request = endpoint
                .agent
                .get(format!("{}{url_path}", endpoint.base))
                .header(header::ACCEPT, ACCEPT);
            if let Some(auth) = auth {
                request = request.header(header::AUTHORIZATION, auth);
            }
            request.call()
        };
        let response = check(
            &what,
            self.call(&host, &pull_scope(reference), &what, true, &mut send)?,
        )?;
        read_manifest(&what, response, tag_or_digest, expected_size)
    }

    /// Resolves `reference` to an image manifest, choosing `platform` (the host's when
    /// `None`) from an index. Manifests fetched by digest are verified against it. Docker Hub
    /// images are looked for on the registry mirrors first, as dockerd does; a mirror that
    /// fails is passed over.
    pub fn resolve(&self, reference: &Reference, platform: Option<&Platform>) -> Result<Resolved> {
        if reference.registry() == crate::reference::DOCKER_HUB {
            let transport = &self.options().transport;
            for (_, mirror) in crate::transport::mirrors(transport)? {
                match self.resolve_at(&reference.with_registry(&mirror), platform) {
                    Ok(resolved) => return Ok(resolved),
                    Err(e) => tracing::info!("mirror {mirror} passed over: {e}"),
                }
            }
        }
        self.resolve_at(reference, platform)
    }

    fn resolve_at(&self, reference: &Reference, platform: Option<&Platform>) -> Result<Resolved> {
        let top = self.fetch_manifest(reference)?;
        let what = format!("manifest {reference}");
        if top.kind == Kind::Image {
            let image = top.image(&what)?;
            return Ok(Resolved {
                digest: top.digest.clone(),
                index: None,
                manifest: top,
                image,
                source: reference.clone(),
            });
        }
        let index = top.index(&what)?;
        let host_platform = Platform::host();
        let wanted = platform.unwrap_or(&host_platform);
        let entry: Descriptor = manifest::select(&what, &index, wanted)?.clone();
        let manifest = self.fetch_manifest_at(reference, &entry.digest, Some(entry.size))?;
        if manifest.kind != Kind::Image {
            return Err(Error::UnsupportedManifest {
                what: format!("manifest {}", name_at(reference, &entry.digest)),
                media_type: manifest.media_type,
                why: "an index inside an index is not an image".into(),
            });
        }
        let image = manifest.image(&what)?;
        Ok(Resolved {
            digest: top.digest.clone(),
            index: Some(top),
            manifest,
            image,
            source: reference.clone(),
        })
    }

    /// Streams blob `digest` of `reference`'s repository. The reader fails at the end if the
    /// bytes do not hash to `digest` or (when given) do not number `size`; with `resume`, it
    /// asks for the rest only (its offset must be below the blob's size), and
    /// [`BlobReader::start`] says where the registry started.
    pub fn fetch_blob(
        &self,
        reference: &Reference,
        digest: &str,
        size: Option<u64>,
        resume: Option<Resume>,
    ) -> Result<BlobReader> {
        let what = format!("blob {digest} of {}", reference.name());
        let mut verifier = Verifier::new(digest)?;
        let offset = resume.as_ref().map_or(0, |r| r.offset);
        if let Some(resume) = &resume {
            if resume.verifier.expected() != digest {
                return Err(Error::InvalidDigest {
                    digest: digest.into(),
                    why: "the resume state is for another blob".into(),
                });
            }
        }
        let host = self.host(reference.registry(), reference.api_host())?;
        let url_path = format!("{}/blobs/{digest}", repo_path(reference));
        let mut send = |endpoint: &crate::transport::Endpoint, auth: Option<&str>| {
            let mut request = endpoint.agent.get(format!("{}{url_path}", endpoint.base));
            if offset > 0 {
                request = request.header(header::RANGE, format!("bytes={offset}-"));
            }
            if let Some(auth) = auth {
                request = request.header(header::AUTHORIZATION, auth);
            }
            request.call()
        };
        let response = check(
            &what,
            self.call(&host, &pull_scope(reference), &what, true, &mut send)?,
        )?;
        let start = if response.status().as_u16() == 206 {
            range_start(&what, &response)?
        } else {
            0
        };
        if start != 0 && start != offset {
            return Err(Error::Protocol {
                what,
                message: format!("asked for bytes from {offset}, got them from {start}"),
            });
        }
        if let Some(resume) = resume.filter(|_| start == offset && offset > 0) {
            verifier = resume.verifier;
        }
        let body = response.into_body();
        Ok(BlobReader {
            what,
            body: body.into_reader(),
            verifier,
            position: start,
            start,
            size,
            finished: false,
        })
    }

    /// A small blob (an image config) read whole, at most `limit` bytes, verified.
    pub fn fetch_blob_bytes(
        &self,
        reference: &Reference,
        digest: &str,
        size: Option<u64>,
        limit: u64,
    ) -> Result<Vec<u8>> {
        if let Some(size) = size.filter(|s| *s > limit) {
            return Err(Error::SizeMismatch {
                what: format!("blob {digest} of {}", reference.name()),
                expected: limit,
                actual: size,
            });
        }
        let reader = self.fetch_blob(reference, digest, size, None)?;
        let mut bytes = Vec::new();
        reader
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::from_io(e, &format!("blob {digest}")))?;
        if bytes.len() as u64 > limit {
            return Err(Error::SizeMismatch {
                what: format!("blob {digest} of {}", reference.name()),
                expected: limit,
                actual: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }
}

fn name_at(reference: &Reference, tag_or_digest: &str) -> String {
    let sep = if tag_or_digest.contains(':') {
        '@'
    } else {
        ':'
    };
    format!("{}{sep}{tag_or_digest}", reference.name())
}

fn read_manifest(
    what: &str,
    response: Response<Body>,
    asked: &str,
    expected_size: Option<u64>,
) -> Result<Manifest> {
    let too_large = || Error::ManifestTooLarge {
        what: what.to_string(),
        limit: MANIFEST_SIZE_LIMIT,
    };
    let header_str = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header_str("content-type");
    let announced = header_str("docker-content-digest");
    if response
        .body()
        .content_length()
        .is_some_and(|len| len > MANIFEST_SIZE_LIMIT)
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(MANIFEST_SIZE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Io {
            what: what.to_string(),
            source: e,
        })?;
    if bytes.len() as u64 > MANIFEST_SIZE_LIMIT {
        return Err(too_large());
    }
    if let Some(expected) = expected_size.filter(|s| *s != bytes.len() as u64) {
        return Err(Error::SizeMismatch {
            what: what.to_string(),
            expected,
            actual: bytes.len() as u64,
        });
    }
    // By digest the digest asked for is the truth; by tag, the registry's announcement.
    let expected = if asked.contains(':') {
        Some(asked.to_string())
    } else {
        announced.filter(|d| Verifier::new(d).is_ok())
    };
    let digest = match expected {
        Some(expected) => {
            let mut verifier = Verifier::new(&expected)?;
            verifier.update(&bytes);
            if !verifier.matches() {
                return Err(Error::DigestMismatch {
                    what: what.to_string(),
                    expected,
                    actual: verifier.actual(),
                });
            }
            expected
        }
        None => crate::digest::sha256_digest(&bytes),
    };
    let (kind, media_type) = manifest::kind_of(what, content_type.as_deref(), &bytes)?;
    Ok(Manifest {
        media_type,
        kind,
        digest,
        bytes,
    })
}

/// `Content-Range: bytes START-END/TOTAL` of a 206 answer.
fn range_start(what: &str, response: &Response<Body>) -> Result<u64> {
    let value = response
        .headers()
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    value
        .strip_prefix("bytes ")
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::Protocol {
            what: what.to_string(),
            message: format!("206 with an unreadable Content-Range {value:?}"),
        })
}

/// A blob's bytes as they arrive. At the end of the stream the size and digest are checked
/// and a mismatch is an `InvalidData` error carrying an [`Error`] ([`Error::from_io`]).
pub struct BlobReader {
    what: String,
    body: BodyReader<'static>,
    verifier: Verifier,
    position: u64,
    start: u64,
    size: Option<u64>,
    finished: bool,
}

impl BlobReader {
    /// Where the bytes start: the resume offset if the registry honoured the range, else 0
    /// (the caller then starts its copy over).
    pub fn start(&self) -> u64 {
        self.start
    }

    pub fn resumed(&self) -> bool {
        self.start > 0
    }

    /// Bytes of the blob through the last read, counting from its beginning.
    pub fn position(&self) -> u64 {
        self.position
    }

    fn finish(&mut self) -> io::Result<()> {
        self.finished = true;
        if let Some(expected) = self.size.filter(|s| *s != self.position) {
            return Err(Error::SizeMismatch {
                what: self.what.clone(),
                expected,
                actual: self.position,
            }
            .into_io());
        }
        if !self.verifier.matches() {
            let error = Error::DigestMismatch {
                what: self.what.clone(),
                expected: self.verifier.expected().to_string(),
                actual: self.verifier.actual(),
            };
            return Err(error.into_io());
        }
        Ok(())
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.finished || buf.is_empty() {
            return Ok(0);
        }
        // Never read past the announced size: a registry sending more is wrong, not bigger.
        let room = self.size.map_or(buf.len() as u64, |s| {
            (s.saturating_sub(self.position) + 1).min(buf.len() as u64)
        });
        let n = match self.body.read(&mut buf[..room as usize]) {
            Ok(n) => n,
            Err(e) => {
                let message = format!("connection lost after {} bytes: {e}", self.position);
                return Err(Error::Connect {
                    what: self.what.clone(),
                    message,
                }
                .into_io());
            }
        };
        if n == 0 {
            self.finish()?;
            return Ok(0);
        }
        self.position += n as u64;
        if let Some(expected) = self.size.filter(|s| self.position > *s) {
            self.finished = true;
            return Err(Error::SizeMismatch {
                what: self.what.clone(),
                expected,
                actual: self.position,
            }
            .into_io());
        }
        self.verifier.update(&buf[..n]);
        Ok(n)
    }
}
