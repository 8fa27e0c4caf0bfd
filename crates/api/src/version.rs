//! API version negotiation as Docker does it: every path may start with `/vX.Y`; versions
//! from [`MIN_API_VERSION`] to [`API_VERSION`] are served, others refused with Docker's 400
//! and message. Every answer carries the headers Docker's clients read (`Api-Version`,
//! `Ostype`, ...), so a client without a version learns ours from any response, `_ping`
//! first of all.

use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The version strata speaks, and the one it reports as current.
pub const API_VERSION: ApiVersion = ApiVersion(1, 47);
/// The oldest version strata still serves.
pub const MIN_API_VERSION: ApiVersion = ApiVersion(1, 24);

/// `major.minor`, ordered as numbers (1.9 < 1.24).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl ApiVersion {
    fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.split_once('.')?;
        Some(ApiVersion(major.parse().ok()?, minor.parse().ok()?))
    }
}

/// Splits `/v1.41/containers/json` into the version text and `/containers/json`; `None`
/// for a path without a version prefix.
fn split_version(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let version = &rest[..end];
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Some((version, &rest[end..]))
}

/// Middleware run before routing: checks and strips the version prefix (the version the
/// client asked for goes into the request's extensions), and adds Docker's headers.
pub async fn negotiate(mut req: Request, next: Next) -> Response {
    // At debug level each request is logged with its answer's status and time, as dockerd's
    // "Calling POST /containers/create" (a hijacked stream's time ends at its upgrade).
    let logged = tracing::enabled!(tracing::Level::DEBUG).then(|| {
        (
            std::time::Instant::now(),
            req.method().clone(),
            req.uri().clone(),
        )
    });
    let mut version = API_VERSION;
    if let Some((text, rest)) = split_version(req.uri().path()) {
        let asked = match ApiVersion::parse(text) {
            Some(v) => v,
            None => {
                return with_headers(
                    ApiError::bad_request(format!("invalid API version {text:?}")).into_response(),
                )
            }
        };
        if let Err(e) = check(asked) {
            return with_headers(e.into_response());
        }
        version = asked;
        let rest = if rest.is_empty() { "/" } else { rest };
        let path_and_query = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = path_and_query.parse().ok();
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req.extensions_mut().insert(version);
    let response = with_headers(next.run(req).await);
    if let Some((started, method, uri)) = logged {
        tracing::debug!(
            "{method} {uri}: {} in {:?}",
            response.status().as_u16(),
            started.elapsed()
        );
    }
    response
}

/// Docker's refusals, word for word (clients match on them).
fn check(asked: ApiVersion) -> Result<(), ApiError> {
    if asked > API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {asked} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if asked < MIN_API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {asked} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok(())
}

fn with_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let api = HeaderValue::from_str(&API_VERSION.to_string()).expect("a version is ASCII");
    headers.insert("Api-Version", api);
    headers.insert("Docker-Experimental", HeaderValue::from_static("false"));
    headers.insert("Ostype", HeaderValue::from_static("linux"));
    let server = format!("strata/{} (linux)", env!("CARGO_PKG_VERSION"));
    if let Ok(v) = HeaderValue::from_str(&server) {
        headers.insert("Server", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_split_and_versions_compared_as_numbers() {
        assert_eq!(
            split_version("/v1.41/containers/json"),
            Some(("1.41", "/containers/json"))
        );
        assert_eq!(split_version("/v1.41"), Some(("1.41", "")));
        assert_eq!(split_version("/version"), None);
        assert_eq!(split_version("/volumes/x"), None);
        assert!(ApiVersion(1, 9) < ApiVersion(1, 24));
        assert!(check(ApiVersion(1, 24)).is_ok() && check(ApiVersion(1, 47)).is_ok());
        let too_new = check(ApiVersion(1, 99)).unwrap_err();
        assert_eq!(
            too_new.message,
            "client version 1.99 is too new. Maximum supported API version is 1.47"
        );
        assert!(check(ApiVersion(1, 12))
            .unwrap_err()
            .message
            .contains("is too old. Minimum supported API version is 1.24"));
    }
}
