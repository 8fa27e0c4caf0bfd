//! Images: list, inspect, history, tag, remove, import (`images/create?fromSrc=-`; a pull,
//! `fromImage`, is `crate::pull`), load,
//! save (`images/get`, `images/{name}/get`), prune.
//!
//! Image names hold slashes (`library/busybox:1`), so the per-image routes are one wildcard
//! whose last segment (`json`, `history`, `get`, `tag`) says what is asked, as Docker's
//! router reads them.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bollard_stubs::models::{
    ImageDeleteResponseItem, ImageHistoryResponseItem, ImagePruneResponse, ImageSummary,
};
use strata_engine::Engine;
use strata_image::archive::{LoadSource, SaveCompression, SaveFormat};
use strata_image::Image;

use crate::error::{ApiError, ApiResult};
use crate::params::{Filters, Query};
use crate::state::{AppState, Blocking};
use crate::stream::{blocking_body, blocking_reader, json_lines, status_line, stream_line};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/create", post(create))
        .route("/images/load", post(load))
        .route("/images/get", get(save_many))
        .route("/images/prune", post(prune))
        .route("/auth", post(crate::registry::auth))
        .route(
            "/images/{*path}",
            get(get_image).post(post_image).delete(delete_image),
        )
}

/// `GET /images/{name}/json|history|get`.
async fn get_image(State(state): State<AppState>, Path(path): Path<String>) -> ApiResult<Response> {
    if let Some(name) = path.strip_suffix("/json") {
        let name = name.to_string();
        let value = state
            .daemon
            .run(move |e| Ok(inspect_value(e, &name)?))
            .await?;
        return Ok(Json(value).into_response());
    }
    if let Some(name) = path.strip_suffix("/history") {
        return Ok(Json(history(&state, name.to_string()).await?).into_response());
    }
    if let Some(name) = path.strip_suffix("/get") {
        return save(state, vec![name.to_string()]).await;
    }
    Err(ApiError::not_found("page not found"))
}

/// `POST /images/{name}/tag` and `push`.
async fn post_image(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: axum::http::HeaderMap,
    query: Query,
) -> ApiResult<Response> {
    if let Some(name) = path.strip_suffix("/tag") {
        let source = name.to_string();
        let target = target_reference(&query)?;
        state
            .daemon
            .run(move |e| Ok(e.images().tag(&source, &target)?))
            .await?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = path.strip_suffix("/push") {
        let tag = query.get("tag").map(str::to_string);
        return crate::registry::push(state, name.to_string(), tag, &headers).await;
    }
    Err(ApiError::not_found("page not found"))
}

/// `repo` and `tag` of a tag or import request as one reference (`repo` may hold the tag).
fn target_reference(query: &Query) -> ApiResult<String> {
    let repo = query.get("repo").unwrap_or_default();
    if repo.is_empty() {
        return Err(ApiError::bad_request(
            "repository name (repo) must not be empty",
        ));
    }
    Ok(match query.get("tag").filter(|t| !t.is_empty()) {
        Some(tag) => format!("{repo}:{tag}"),
        None => repo.to_string(),
    })
}

/// `DELETE /images/{name}?force=1`: Docker's list of `Untagged`/`Deleted` entries.
async fn delete_image(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Query,
) -> ApiResult<Json<Vec<ImageDeleteResponseItem>>> {
    let force = query.flag("force");
    let lines = state
        .daemon
        .run(move |e| Ok(e.images().remove(&name, force)?))
        .await?;
    Ok(Json(
        lines.iter().filter_map(|l| deletion_item(l)).collect(),
    ))
}

/// `Untagged: x` / `Deleted: y` as Docker's response items.
fn deletion_item(line: &str) -> Option<ImageDeleteResponseItem> {
    if let Some(tag) = line.strip_prefix("Untagged: ") {
        return Some(ImageDeleteResponseItem {
            untagged: Some(tag.to_string()),
            deleted: None,
        });
    }
    line.strip_prefix("Deleted: ")
        .map(|id| ImageDeleteResponseItem {
            untagged: None,
            deleted: Some(id.to_string()),
        })
}

/// The engine's inspect in Docker's shape, with the fields Docker always sends filled in.
fn inspect_value(engine: &Engine, name: &str) -> strata_engine::Result<serde_json::Value> {
    let mut value = crate::render::image(&engine.images().inspect(name)?);
    if let Some(map) = value.as_object_mut() {
        map.entry("DockerVersion").or_insert("".into());
        map.entry("Variant").or_insert("".into());
        if map.get("Config").is_none_or(|c| c.is_null()) {
            map.insert("Config".into(), serde_json::json!({}));
        }
    }
    Ok(value)
}

async fn history(state: &AppState, name: String) -> ApiResult<Vec<ImageHistoryResponseItem>> {
    let (rows, tags) = state
        .daemon
        .run(move |e| {
            let image = resolve(e, &name)?;
            Ok((e.images().history(&name)?, tag_strings(&image)))
        })
        .await?;
    let mut tags = Some(tags);
    Ok(rows
        .into_iter()
        .map(|row| ImageHistoryResponseItem {
            id: row.id,
            created: row
                .created
                .as_deref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .map_or(0, |t| t.timestamp()),
            created_by: row.created_by,
            // The image's tags go on its top entry only, as Docker shows them.
            tags: tags.take().unwrap_or_default(),
            size: row.size as i64,
            comment: row.comment,
        })
        .collect())
}

fn resolve(engine: &Engine, name: &str) -> strata_engine::Result<Image> {
    Ok(engine.images().inspect(name)?.image)
}

fn tag_strings(image: &Image) -> Vec<String> {
    image.tags.iter().map(|t| t.to_string()).collect()
}

/// `GET /images/json?all=1&filters=...`: `dangling`, `reference` and `label` filters.
async fn list(State(state): State<AppState>, query: Query) -> ApiResult<Json<Vec<ImageSummary>>> {
    let filters = query.filters()?;
    filters.only(&["dangling", "reference", "label"])?;
    let summaries = summaries(&state).await?;
    Ok(Json(
        summaries
            .into_iter()
            .filter(|s| keep(&filters, s))
            .collect(),
    ))
}

fn keep(filters: &Filters, image: &ImageSummary) -> bool {
    let dangling = image.repo_tags.is_empty();
    filters.accepts("dangling", |v| matches!(v, "true" | "1") == dangling)
        && filters.accepts("reference", |pattern| {
            image
                .repo_tags
                .iter()
                .any(|t| reference_matches(pattern, t))
        })
        && filters.accepts_all("label", |label| match label.split_once('=') {
            Some((k, v)) => image.labels.get(k).is_some_and(|have| have == v),
            None => image.labels.contains_key(label),
        })
}

/// Docker's `reference` filter: `name` or `name:tag`, with `*` wildcards; a bare name
/// matches every tag.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let (name, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    match pattern.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
        Some((pn, pt)) => glob(pn, name) && glob(pt, t),
        None => glob(pattern, name),
    }
}

/// `*` matches any run of characters but `/`; everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .take_while(|&i| !tail[..i].contains('/'))
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// Every image as `images/json` lists it, newest first.
pub async fn summaries(state: &AppState) -> ApiResult<Vec<ImageSummary>> {
    Ok(summaries_with_usage(state).await?.0)
}

/// Image summaries and the total size of all their layers (for `system/df`).
pub async fn summaries_with_usage(state: &AppState) -> ApiResult<(Vec<ImageSummary>, i64)> {
    state
        .daemon
        .run(|e| {
            let mut images = e.images().list()?;
            images.sort_by_key(|i| std::cmp::Reverse(i.created));
            let mut total = 0;
            let mut list = Vec::new();
            for image in images {
                total += image.size as i64;
                let inspect = crate::render::image(&e.images().inspect(&image.id)?);
                list.push(summary(&image, &inspect));
            }
            Ok((list, total))
        })
        .await
}

fn summary(image: &Image, inspect: &serde_json::Value) -> ImageSummary {
    let labels: HashMap<String, String> = inspect["Config"]["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    ImageSummary {
        id: image.id.clone(),
        parent_id: String::new(),
        repo_tags: tag_strings(image),
        repo_digests: vec![],
        created: image.created,
        size: image.size as i64,
        // Docker sends -1 for what it did not compute.
        shared_size: -1,
        labels,
        containers: -1,
        ..Default::default()
    }
}

/// `POST /images/create`: `fromImage` pulls from a registry (`crate::pull`); `fromSrc=-`
/// imports the body as a rootfs tarball.
async fn create(
    State(state): State<AppState>,
    query: Query,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if query.get("fromImage").is_some_and(|i| !i.is_empty()) {
        return crate::pull::pull(state, &query, &headers).await;
    }
    match query.get("fromSrc") {
        Some("-") => {}
        Some(src) => {
            return Err(ApiError::bad_request(format!(
            "fromSrc {src:?} is not supported: send the tarball as the request body with fromSrc=-"
        )))
        }
        None => return Err(ApiError::bad_request("give fromImage or fromSrc=-")),
    }
    let reference = match query.get("repo").filter(|r| !r.is_empty()) {
        Some(_) => Some(target_reference(&query)?),
        None => None,
    };
    let message = query
        .get("message")
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    let changes: Vec<String> = query.all("changes");
    let mut reader = blocking_reader(body);
    let image = state
        .daemon
        .run(move |e| {
            Ok(e.images().import(
                &mut reader,
                reference.as_deref(),
                message.as_deref(),
                &changes,
            )?)
        })
        .await?;
    Ok(json_lines(vec![status_line(&image.id)]))
}

/// `POST /images/load`: a docker-archive or OCI layout in the body; one `Loaded image:`
/// line per tag (or `Loaded image ID:` for an untagged image), as jsonmessage `stream`s.
async fn load(State(state): State<AppState>, body: Body) -> ApiResult<Response> {
    let mut reader = blocking_reader(body);
    let images = state
        .daemon
        .run(move |e| {
            Ok(e.images()
                .load(LoadSource::Stream(&mut reader), &mut |_| {})?)
        })
        .await?;
    let mut lines = Vec::new();
    for image in &images {
        if image.tags.is_empty() {
            lines.push(stream_line(&format!("Loaded image ID: {}\n", image.id)));
        }
        for tag in &image.tags {
            lines.push(stream_line(&format!("Loaded image: {tag}\n")));
        }
    }
    Ok(json_lines(lines))
}

/// `GET /images/get?names=a&names=b`.
async fn save_many(State(state): State<AppState>, query: Query) -> ApiResult<Response> {
    let names = query.all("names");
    if names.is_empty() {
        return Err(ApiError::bad_request("give the images to save: names=NAME"));
    }
    save(state, names).await
}

/// A docker-archive of `names`, streamed as it is written.
async fn save(state: AppState, names: Vec<String>) -> ApiResult<Response> {
    // Checked first, so a missing image is a 404 and not a cut stream.
    let check = names.clone();
    state
        .daemon
        .run(move |e| {
            for name in &check {
                e.images().inspect(name)?;
            }
            Ok(())
        })
        .await?;
    let daemon = state.daemon.clone();
    blocking_body("application/x-tar", move |out| {
        daemon.with_engine(|e| {
            Ok(e.images().save(
                &names,
                &SaveFormat::DockerArchive,
                SaveCompression::None,
                out,
                &mut |_| {},
            )?)
        })
    })
    .await
}

/// `POST /images/prune`: images without a tag that no container uses (every unused image
/// with `filters={"dangling":["false"]}`, as `docker image prune -a`).
async fn prune(State(state): State<AppState>, query: Query) -> ApiResult<Json<ImagePruneResponse>> {
    let filters = query.filters()?;
    filters.only(&["dangling"])?;
    let all = filters
        .values("dangling")
        .iter()
        .any(|v| matches!(v.as_str(), "false" | "0"));
    let (items, reclaimed) = state
        .daemon
        .run(move |e| {
            let mut items = Vec::new();
            let mut reclaimed = 0i64;
            for image in e.images().list()? {
                if !all && !image.tags.is_empty() {
                    continue;
                }
                match e.images().remove(&image.id, false) {
                    Ok(lines) => {
                        reclaimed += image.size as i64;
                        items.extend(lines.iter().filter_map(|l| deletion_item(l)));
                    }
                    // Used by a container or a writable layer: not prunable.
                    Err(strata_engine::Error::Conflict(_))
                    | Err(strata_engine::Error::Image(strata_image::Error::Conflict(_))) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok((items, reclaimed))
        })
        .await?;
    Ok(Json(ImagePruneResponse {
        images_deleted: Some(items),
        space_reclaimed: Some(reclaimed),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_filters_match_like_docker() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busybox:1", "busybox:1"));
        assert!(!reference_matches("busybox:1", "busybox:2"));
        assert!(reference_matches("bus*", "busybox:2"));
        assert!(reference_matches("*:2", "busybox:2"));
        assert!(!reference_matches("lib*", "library/busybox:2"));
        assert!(reference_matches(
            "localhost:5000/app",
            "localhost:5000/app:1"
        ));
    }
}
