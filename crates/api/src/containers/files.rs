//! A container's files: `changes` (docker diff), `export` (the merged filesystem as a tar)
//! and `archive` (docker cp: `HEAD` stats a path, `GET` tars it, `PUT` extracts a tar into
//! a directory). Every path is resolved inside the container's root by the engine's copy
//! code (`openat2` with `RESOLVE_IN_ROOT`, symlinks followed inside the root only).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use strata_engine::container::copy::{CopyOptions, HostDest, HostSource};
use strata_engine::container::PathStat;
use strata_storage::ChangeKind;

use crate::error::{ApiError, ApiResult};
use crate::params::Query;
use crate::state::{AppState, Blocking};
use crate::stream::{blocking_body, blocking_reader};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/changes", get(changes))
        .route("/containers/{id}/export", get(export))
        .route(
            "/containers/{id}/archive",
            get(get_archive).head(head_archive).put(put_archive),
        )
}

/// `GET /containers/{id}/changes`: `[{"Path", "Kind"}]`, Kind 0 modified, 1 added, 2
/// deleted.
async fn changes(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let changes = state
        .daemon
        .run(move |e| Ok(e.containers().changes(&id)?))
        .await?;
    Ok(Json(
        changes
            .iter()
            .map(|c| {
                let kind = match c.kind {
                    ChangeKind::Modified => 0,
                    ChangeKind::Added => 1,
                    ChangeKind::Deleted => 2,
                };
                json!({ "Path": c.path, "Kind": kind })
            })
            .collect(),
    ))
}

/// `GET /containers/{id}/export`: the merged filesystem as a tar, streamed.
async fn export(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let c = super::record::container(&state, &id).await?;
    let daemon = state.daemon.clone();
    blocking_body("application/x-tar", move |out| {
        daemon.with_engine(|e| Ok(e.containers().export(&c.id, out)?))
    })
    .await
}

fn path_param(query: &Query) -> ApiResult<String> {
    match query.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::bad_request(
            "give the path in the container: path=/...",
        )),
    }
}

async fn stat(state: &AppState, id: &str, path: &str) -> ApiResult<PathStat> {
    let (id, path) = (id.to_string(), path.to_string());
    state
        .daemon
        .run(move |e| Ok(e.containers().path_stat(&id, &path)?))
        .await
}

/// Docker's `X-Docker-Container-Path-Stat`: base64 of `{"name", "size", "mode", "mtime",
/// "linkTarget"}`, the mode in Go's `os.FileMode` bits.
fn stat_header(stat: &PathStat) -> HeaderValue {
    let mtime = chrono::DateTime::from_timestamp(stat.mtime.0, stat.mtime.1)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let value = json!({
        "name": stat.name,
        "size": stat.size,
        "mode": go_file_mode(stat.mode),
        "mtime": mtime,
        "linkTarget": stat.link_target,
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(value.to_string());
    HeaderValue::from_str(&encoded).expect("base64 is a valid header value")
}

/// `st_mode` as Go's `os.FileMode`: permission bits, with type and special bits moved to
/// the top of the word.
fn go_file_mode(mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut go = mode & 0o777;
    go |= match mode & 0o170000 {
        0o040000 => DIR,
        0o120000 => SYMLINK,
        0o060000 => DEVICE,
        0o020000 => DEVICE | CHAR,
        0o010000 => PIPE,
        0o140000 => SOCKET,
        _ => 0,
    };
    for (bit, go_bit) in [(0o4000, SETUID), (0o2000, SETGID), (0o1000, STICKY)] {
        if mode & bit != 0 {
            go |= go_bit;
        }
    }
    go
}

/// `HEAD /containers/{id}/archive?path=`: the stat header alone (404 if missing).
async fn head_archive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<Response> {
    let path = path_param(&query)?;
    let stat = stat(&state, &id, &path).await?;
    let mut response = StatusCode::OK.into_response();
    response
        .headers_mut()
        .insert("X-Docker-Container-Path-Stat", stat_header(&stat));
    Ok(response)
}

/// `GET /containers/{id}/archive?path=`: a tar of the path (its contents with `/.`), and
/// the stat header.
async fn get_archive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<Response> {
    let path = path_param(&query)?;
    let stat = stat(&state, &id, &path).await?;
    let daemon = state.daemon.clone();
    let mut response = blocking_body("application/x-tar", move |out| {
        daemon.with_engine(|e| {
            let options = CopyOptions {
                archive: true,
                follow: false,
            };
            Ok(e.containers()
                .copy_from(&id, &path, HostDest::Stream(out), options)?)
        })
    })
    .await?;
    response
        .headers_mut()
        .insert("X-Docker-Container-Path-Stat", stat_header(&stat));
    Ok(response)
}

/// `PUT /containers/{id}/archive?path=&copyUIDGID=`: extracts the tar body into the
/// directory `path` (404 if missing, 400 if not a directory). Without `copyUIDGID` the
/// files belong to root, as Docker makes them.
async fn put_archive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
    body: Body,
) -> ApiResult<StatusCode> {
    let path = path_param(&query)?;
    let target = stat(&state, &id, &path).await?;
    let is_dir = target.mode & 0o170000 == 0o040000;
    let is_link = target.mode & 0o170000 == 0o120000;
    if !is_dir && !is_link {
        return Err(ApiError::bad_request(format!(
            "extraction point {path} in container {id} is not a directory"
        )));
    }
    let options = CopyOptions {
        archive: query.flag("copyUIDGID"),
        follow: false,
    };
    let mut reader = blocking_reader(body);
    state
        .daemon
        .run(move |e| {
            Ok(e.containers()
                .copy_to(&id, HostSource::Stream(&mut reader), &path, options)?)
        })
        .await?;
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_become_go_file_modes() {
        assert_eq!(go_file_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(0o100644), 0o644);
        assert_eq!(go_file_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_file_mode(0o104755), (1 << 23) | 0o755);
        assert_eq!(go_file_mode(0o041777), (1 << 31) | (1 << 20) | 0o777);
    }
}
