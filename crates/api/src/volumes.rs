//! Volumes: list (with the `dangling`, `name`, `label` and `driver` filters), create,
//! inspect, remove, prune; and their usage for `system/df`. Docker's shapes: a volume is
//! `Name`, `Driver`, `Mountpoint`, `CreatedAt`, `Labels`, `Scope`, `Options`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use bollard_stubs::models::VolumeCreateRequest;
use serde_json::{json, Value};
use strata_engine::volumes::{dir_size, LOCAL_DRIVER};
use strata_engine::{Engine, Volume};

use crate::error::{ApiError, ApiResult};
use crate::params::{json_request, Filters, Query};
use crate::state::{AppState, Blocking};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

/// `GET /volumes?filters=...`: `{"Volumes": [...], "Warnings": []}`.
async fn list(State(state): State<AppState>, query: Query) -> ApiResult<Json<Value>> {
    let filters = query.filters()?;
    filters.only(&["dangling", "name", "label", "driver"])?;
    let volumes = state
        .daemon
        .run(move |e| {
            let mut list = Vec::new();
            for v in e.volumes().list()? {
                let in_use = !e.containers().using_volume(&v.name)?.is_empty();
                if keep(&filters, &v, in_use) {
                    list.push(crate::render::volume(&v));
                }
            }
            Ok(list)
        })
        .await?;
    Ok(Json(json!({ "Volumes": volumes, "Warnings": [] })))
}

fn keep(filters: &Filters, v: &Volume, in_use: bool) -> bool {
    filters.accepts("dangling", |d| matches!(d, "true" | "1") != in_use)
        && filters.accepts("name", |n| v.name.contains(n))
        && filters.accepts("driver", |d| d == LOCAL_DRIVER)
        && filters.accepts_all("label", |l| label_matches(&v.labels, l))
}

/// `key` or `key=value`, as Docker's label filters.
fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, want)) => labels.get(k).is_some_and(|have| have == want),
        None => labels.contains_key(filter),
    }
}

/// `POST /volumes/create` with `{"Name", "Driver", "DriverOpts", "Labels"}`: 201 and the
/// volume.
async fn create(State(state): State<AppState>, body: Body) -> ApiResult<(StatusCode, Json<Value>)> {
    let request: VolumeCreateRequest = json_request(body).await?;
    let driver = request.driver.unwrap_or_default();
    if !driver.is_empty() && driver != LOCAL_DRIVER {
        return Err(ApiError::bad_request(format!(
            "volume driver {driver:?} is not supported: strata has only the local driver"
        )));
    }
    if request.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(ApiError::bad_request(
            "driver options are not supported by strata's local volumes (no mount options yet)",
        ));
    }
    let name = request.name.filter(|n| !n.is_empty());
    let labels = request.labels.unwrap_or_default().into_iter().collect();
    let volume = state
        .daemon
        .run(move |e| Ok(e.volumes().create(name.as_deref(), labels)?))
        .await?;
    Ok((StatusCode::CREATED, Json(crate::render::volume(&volume))))
}

/// `GET /volumes/{name}`.
async fn inspect(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let volume = state
        .daemon
        .run(move |e| Ok(e.volumes().inspect(&name)?))
        .await?;
    Ok(Json(crate::render::volume(&volume)))
}

/// `DELETE /volumes/{name}?force=1`: 204; 409 while a container uses it.
async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Query,
) -> ApiResult<StatusCode> {
    let force = query.flag("force");
    state
        .daemon
        .run(move |e| Ok(e.volumes().remove(&name, force)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /volumes/prune?filters=...`: unused anonymous volumes, or every unused one with
/// `{"all": ["true"]}` (API 1.42 and later, as `docker volume prune -a` sends it); `label`
/// and `label!` narrow it.
async fn prune(State(state): State<AppState>, query: Query) -> ApiResult<Json<Value>> {
    let filters = query.filters()?;
    filters.only(&["all", "label", "label!"])?;
    let all = filters
        .values("all")
        .iter()
        .any(|v| matches!(v.as_str(), "true" | "1"));
    let report = state
        .daemon
        .run(move |e| {
            let keep = |v: &Volume| {
                !filters.accepts_all("label", |l| label_matches(&v.labels, l))
                    || filters
                        .values("label!")
                        .iter()
                        .any(|l| label_matches(&v.labels, l))
            };
            Ok(e.volumes().prune(all, &keep)?)
        })
        .await?;
    Ok(Json(json!({
        "VolumesDeleted": report.removed,
        "SpaceReclaimed": report.reclaimed_bytes,
    })))
}

/// Every volume with its `UsageData` (size and number of containers using it), for
/// `system/df`.
pub fn usage(engine: &Engine) -> ApiResult<Vec<Value>> {
    let mut list = Vec::new();
    for v in engine.volumes().list()? {
        let users = engine.containers().using_volume(&v.name)?.len();
        let mut value = crate::render::volume(&v);
        value["UsageData"] = json!({
            "Size": dir_size(&v.mountpoint),
            "RefCount": users,
        });
        list.push(value);
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_filters_read_like_dockers() {
        let labels: BTreeMap<String, String> = [("team".to_string(), "db".to_string())].into();
        assert!(label_matches(&labels, "team"));
        assert!(label_matches(&labels, "team=db"));
        assert!(!label_matches(&labels, "team=web"));
        assert!(!label_matches(&labels, "owner"));
    }
}
