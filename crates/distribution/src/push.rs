//! Push primitives: does the registry have a blob (HEAD), mount one from another repository
//! of the same registry, upload one from a reader (one PUT, PATCH chunks then PUT, or one
//! streamed PATCH hashed on the way), and put a manifest under a tag or digest, last.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};
use ureq::http::{header, Response};
use ureq::{Body, SendBody};

use crate::client::{check, Client, Host};
use crate::digest::sha256_digest;
use crate::transport::Endpoint;
use crate::{Error, Reference, Result};

/// How a blob goes up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upload {
    /// One PUT carrying the whole blob.
    Monolithic,
    /// PATCHes of this many bytes, then an empty PUT.
    Chunked(u64),
}

fn push_scope(reference: &Reference) -> String {
    format!("repository:{}:pull,push", reference.repository())
}

impl Client {
    /// The blob's size if `reference`'s repository has it.
    pub fn blob_exists(&self, reference: &Reference, digest: &str) -> Result<Option<u64>> {
        let what = format!("blob {digest} of {}", reference.name());
        let host = self.host(reference.registry(), reference.api_host())?;
        let path = format!("/v2/{}/blobs/{digest}", reference.repository());
        let mut send = |endpoint: &Endpoint, auth: Option<&str>| {
            with_auth(
                endpoint.agent.head(format!("{}{path}", endpoint.base)),
                auth,
            )
            .call()
        };
        let response = self.call(&host, &push_scope(reference), &what, true, &mut send)?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        let response = check(&what, response)?;
        let length = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        Ok(Some(length.unwrap_or(0)))
    }

    /// Asks the registry to link blob `digest` from repository `from` (same registry) into
    /// `reference`'s. False when it would not (the blob is elsewhere or not readable): then
    /// upload it.
    pub fn mount_blob(&self, reference: &Reference, digest: &str, from: &str) -> Result<bool> {
        let what = format!(
            "blob {digest} mounted from {from} into {}",
            reference.name()
        );
        let host = self.host(reference.registry(), reference.api_host())?;
        let scope = format!("{} repository:{from}:pull", push_scope(reference));
        let path = format!("/v2/{}/blobs/uploads/", reference.repository());
        let mut send = |endpoint: &Endpoint, auth: Option<&str>| {
            let request = endpoint
                .agent
                .post(format!("{}{path}", endpoint.base))
                .query("mount", digest)
                .query("from", from);
            with_auth(request, auth)
                .header(header::CONTENT_LENGTH, "0")
                .send_empty()
        };
        let response = check(&what, self.call(&host, &scope, &what, true, &mut send)?)?;
        if response.status().as_u16() == 201 {
            return Ok(true);
        }
        // 202: the registry opened an upload instead; close it rather than leave it to expire.
        if let Some(location) = location(&host.endpoint, &response) {
            let closed = self.call(
                &host,
                &scope,
                &what,
                true,
                &mut |endpoint: &Endpoint, auth: Option<&str>| {
                    with_auth(endpoint.agent.delete(&location), auth).call()
                },
            );
            if let Err(e) = closed {
                tracing::debug!("{what}: closing the unused upload: {e}");
            }
        }
        Ok(false)
    }

    /// Uploads `size` bytes read from `reader` as blob `digest`. The registry checks the
    /// digest; a reader giving other than `size` bytes fails the upload.
    pub fn push_blob(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
        reader: &mut dyn Read,
        mode: Upload,
    ) -> Result<()> {
        let what = format!("blob {digest} pushed to {}", reference.name());
        let host = self.host(reference.registry(), reference.api_host())?;
        let scope = push_scope(reference);
        let mut upload = self.start_upload(&host, reference, &scope, &what)?;
        let mut counted = Exact {
            inner: reader,
            left: size,
            ended_early: false,
        };
        let short = |counted: &Exact| Error::SizeMismatch {
            what: what.clone(),
            expected: size,
            actual: size - counted.left,
        };
        if let Upload::Chunked(chunk) = mode {
            let mut offset = 0;
            while offset < size {
                let len = chunk.max(1).min(size - offset);
                let range = format!("{offset}-{}", offset + len - 1);
                let mut part = (&mut counted).take(len);
                let sent = self.send_body(&host, &scope, &what, |endpoint, auth| {
                    with_auth(endpoint.agent.patch(&upload), auth)
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .header(header::CONTENT_RANGE, range.as_str())
                        .header(header::CONTENT_LENGTH, len.to_string())
                        .send(SendBody::from_reader(&mut part))
                });
                if counted.ended_early {
                    return Err(short(&counted));
                }
                upload = location(&host.endpoint, &sent?).ok_or_else(|| no_location(&what))?;
                offset += len;
            }
        }
        let sep = if upload.contains('?') { '&' } else { '?' };
        let url = format!("{upload}{sep}digest={digest}");
        let body_len = if mode == Upload::Monolithic { size } else { 0 };
        let sent = self.send_body(&host, &scope, &what, |endpoint, auth| {
            with_auth(endpoint.agent.put(&url), auth)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, body_len.to_string())
                .send(SendBody::from_reader(&mut counted))
        });
        if counted.ended_early || (sent.is_ok() && counted.left != 0) {
            return Err(short(&counted));
        }
        check_digest(&what, &sent?, digest)
    }

    /// Uploads whatever `reader` gives as one streamed PATCH, hashing it on the way, and
    /// returns its sha256 digest and size: for blobs whose digest is known only at the end,
    /// such as a layer compressed while it goes up.
    pub fn push_blob_streamed(
        &self,
        reference: &Reference,
        reader: &mut dyn Read,
    ) -> Result<(String, u64)> {
        let what = format!("streamed blob pushed to {}", reference.name());
        let host = self.host(reference.registry(), reference.api_host())?;
        let scope = push_scope(reference);
        let upload = self.start_upload(&host, reference, &scope, &what)?;
        let mut hashing = Hashing {
            inner: reader,
            hasher: Sha256::new(),
            size: 0,
        };
        // No Content-Length: the body goes chunked, as docker's own pushes do.
        let sent = self.send_body(&host, &scope, &what, |endpoint, auth| {
            with_auth(endpoint.agent.patch(&upload), auth)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .send(SendBody::from_reader(&mut hashing))
        })?;
        let upload = location(&host.endpoint, &sent).ok_or_else(|| no_location(&what))?;
        let digest = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
        let what = format!("blob {digest} pushed to {}", reference.name());
        let sep = if upload.contains('?') { '&' } else { '?' };
        let url = format!("{upload}{sep}digest={digest}");
        let done = self.send_body(&host, &scope, &what, |endpoint, auth| {
            with_auth(endpoint.agent.put(&url), auth)
                .header(header::CONTENT_LENGTH, "0")
                .send_empty()
        })?;
        check_digest(&what, &done, &digest)?;
        Ok((digest, hashing.size))
    }

    fn start_upload(
        &self,
        host: &Host,
        reference: &Reference,
        scope: &str,
        what: &str,
    ) -> Result<String> {
        let path = format!("/v2/{}/blobs/uploads/", reference.repository());
        let mut start = |endpoint: &Endpoint, auth: Option<&str>| {
            with_auth(
                endpoint.agent.post(format!("{}{path}", endpoint.base)),
                auth,
            )
            .header(header::CONTENT_LENGTH, "0")
            .send_empty()
        };
        let response = check(what, self.call(host, scope, what, true, &mut start)?)?;
        location(&host.endpoint, &response).ok_or_else(|| no_location(what))
    }

    /// Puts a manifest under `reference`'s tag (or digest) and returns its digest.
    pub fn push_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String> {
        let what = format!("manifest {reference}");
        let host = self.host(reference.registry(), reference.api_host())?;
        let path = format!(
            "/v2/{}/manifests/{}",
            reference.repository(),
            reference.manifest_reference()
        );
        let mut send = |endpoint: &Endpoint, auth: Option<&str>| {
            with_auth(endpoint.agent.put(format!("{}{path}", endpoint.base)), auth)
                .header(header::CONTENT_TYPE, media_type)
                .send(bytes)
        };
        let response = check(
            &what,
            self.call(&host, &push_scope(reference), &what, true, &mut send)?,
        )?;
        let digest = sha256_digest(bytes);
        check_digest(&what, &response, &digest)?;
        Ok(digest)
    }

    /// A request that streams a body cannot be replayed: no retry after a 401.
    fn send_body(
        &self,
        host: &Host,
        scope: &str,
        what: &str,
        mut send: impl FnMut(&Endpoint, Option<&str>) -> Result<Response<Body>, ureq::Error>,
    ) -> Result<Response<Body>> {
        check(what, self.call(host, scope, what, false, &mut send)?)
    }
}

fn with_auth<B>(request: ureq::RequestBuilder<B>, auth: Option<&str>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(auth) => request.header(header::AUTHORIZATION, auth),
        None => request,
    }
}

/// An upload's `Location`, made absolute (registries often send a path).
fn location(endpoint: &Endpoint, response: &Response<Body>) -> Option<String> {
    let value = response.headers().get(header::LOCATION)?.to_str().ok()?;
    if value.starts_with("http://") || value.starts_with("https://") {
        Some(value.to_string())
    } else if value.starts_with('/') {
        Some(format!("{}{value}", endpoint.base))
    } else {
        None
    }
}

fn no_location(what: &str) -> Error {
    Error::Protocol {
        what: what.to_string(),
        message: "the upload answer has no usable Location".into(),
    }
}

fn check_digest(what: &str, response: &Response<Body>, digest: &str) -> Result<()> {
    match response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
    {
        Some(announced) if announced != digest => Err(Error::DigestMismatch {
            what: what.to_string(),
            expected: digest.to_string(),
            actual: announced.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Hashes and counts what passes.
struct Hashing<'a> {
    inner: &'a mut dyn Read,
    hasher: Sha256,
    size: u64,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Counts down what the caller promised; more than promised is an error, fewer shows in
/// `left` after the upload.
struct Exact<'a> {
    inner: &'a mut dyn Read,
    left: u64,
    ended_early: bool,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let len = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..len])?;
        if n == 0 {
            self.ended_early = true;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the blob ended {} bytes early", self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
