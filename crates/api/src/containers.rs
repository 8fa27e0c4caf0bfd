//! Containers: create, start, wait, inspect, list, logs, attach, kill, stop, restart,
//! remove. Each verb is a thin handler over the engine; the pieces with more to them live
//! in submodules: the translation of Docker's create body (`create`), `ps`'s summaries
//! (`list`), and the output streams of `logs` and `attach` (`output`).

mod create;
mod list;
mod output;
mod terminal;

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bollard_stubs::models::{ContainerCreateResponse, ContainerWaitResponse};
use strata_engine::container::{parse_signal, StartOptions};
use strata_engine::{Container, Engine, State as RunState};

use crate::error::{ApiError, ApiResult};
use crate::params::{json_request, Query};
use crate::state::{AppState, Blocking};

pub use list::summaries;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list::list))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/logs", get(output::logs))
        .route("/containers/{id}/attach", post(output::attach))
        .route("/containers/{id}/resize", post(terminal::resize))
        .route("/containers/{id}", delete(remove))
}

/// How often a waiter looks at the record when no monitor of ours tells it first.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// `POST /containers/create?name=NAME` with Docker's `ContainerCreateBody`.
async fn create(
    State(state): State<AppState>,
    query: Query,
    body: Body,
) -> ApiResult<(StatusCode, Json<ContainerCreateResponse>)> {
    let request = json_request(body).await?;
    let (image, config, warnings) = create::config_of(request)?;
    let name = query
        .get("name")
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let c = state
        .daemon
        .run(move |e| Ok(e.create_container(&image, config, name.as_deref())?))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ContainerCreateResponse { id: c.id, warnings }),
    ))
}

/// `GET /containers/{id}/json`: the engine's Docker-shaped inspect, completed.
async fn inspect(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let mut value = state
        .daemon
        .run(move |e| Ok(e.inspect_container(&id)?))
        .await?;
    create::complete_inspect(&mut value);
    Ok(Json(value))
}

/// `POST /containers/{id}/start`: 204, or 304 if it already runs.
async fn start(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let c = container(&state, &id).await?;
    if c.state == RunState::Running {
        return Ok(StatusCode::NOT_MODIFIED);
    }
    start_container(&state, c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts `c` through its monitor, which this daemon then reaps to learn the exit code.
pub(crate) async fn start_container(state: &AppState, c: Container) -> ApiResult<()> {
    let attach_stdin = state.daemon.take_stdin_attach(&c.id);
    let options = StartOptions {
        monitor: state.monitor_binary.clone(),
        attach_stdin,
    };
    state.daemon.monitors.forget(&c.id);
    let monitors = state.daemon.monitors.clone();
    state
        .daemon
        .run(move |e| {
            let started = e.start_container(&c.id, &options).map_err(start_error)?;
            monitors.watch(c.id.clone(), started.monitor);
            Ok(())
        })
        .await
}

/// A start failure as Docker words it: the docker CLI exits 127 when the message says
/// "executable file not found" and 126 on "permission denied".
fn start_error(e: strata_engine::Error) -> ApiError {
    let code = e.exit_code();
    let mut err = ApiError::from(e);
    if code == 127 && !err.message.contains("executable file not found") {
        err.message
            .push_str(": exec: executable file not found in $PATH");
    } else if code == 126 && !err.message.contains("permission denied") {
        err.message.push_str(": permission denied");
    }
    err
}

/// `POST /containers/{id}/stop?t=SECONDS`: 204, or 304 if it was not running.
async fn stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<StatusCode> {
    let timeout = stop_timeout(&query)?;
    let c = container(&state, &id).await?;
    if c.state != RunState::Running {
        return Ok(StatusCode::NOT_MODIFIED);
    }
    state
        .daemon
        .run(move |e| Ok(e.stop_container(&c.id, timeout)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn stop_timeout(query: &Query) -> ApiResult<Duration> {
    let seconds = query.int("t")?.unwrap_or(10);
    // -1: wait for ever, as Docker; a day is as good.
    Ok(Duration::from_secs(if seconds < 0 {
        86_400
    } else {
        seconds as u64
    }))
}

/// `POST /containers/{id}/restart?t=SECONDS`.
async fn restart(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<StatusCode> {
    let timeout = stop_timeout(&query)?;
    let stopped = state
        .daemon
        .run(move |e| Ok(e.stop_container(&id, timeout)?))
        .await?;
    start_container(&state, stopped).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/kill?signal=SIG`: 204; 409 if it is not running.
async fn kill(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<StatusCode> {
    let signal = match query.get("signal").filter(|s| !s.is_empty()) {
        Some(s) => parse_signal(s).map_err(ApiError::from)?,
        None => 9,
    };
    state
        .daemon
        .run(move |e| Ok(e.kill_container(&id, signal)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /containers/{id}?force=1&v=1`: 204; 409 if it runs and `force` is not given.
async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<StatusCode> {
    let (force, volumes) = (query.flag("force"), query.flag("v"));
    state
        .daemon
        .run(move |e| Ok(e.remove_container(&id, force, volumes)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn container(state: &AppState, id: &str) -> ApiResult<Container> {
    let id = id.to_string();
    state.daemon.run(move |e| Ok(e.container(&id)?)).await
}

/// The record of `id`, `None` once removed.
pub(crate) fn record(engine: &Engine, id: &str) -> ApiResult<Option<Container>> {
    match engine.container(id) {
        Ok(c) => Ok(Some(c)),
        Err(strata_engine::Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What `wait` waits for (Docker's `condition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Condition {
    /// Returns at once unless the container runs.
    NotRunning,
    /// The next exit after the request (the CLI sends it before `start`).
    NextExit,
    /// The container's removal (`run --rm`).
    Removed,
}

/// `POST /containers/{id}/wait?condition=...`: the headers go out at once (the docker CLI
/// waits for them before it starts the container), the body when the condition is met.
async fn wait(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<Response> {
    let condition = match query.get("condition").unwrap_or("not-running") {
        "" | "not-running" => Condition::NotRunning,
        "next-exit" => Condition::NextExit,
        "removed" => Condition::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition {other:?}: use not-running, next-exit or removed"
            )))
        }
    };
    let c = container(&state, &id).await?;
    let waited = async move {
        let code = wait_for(&state, &c, condition).await;
        let body = match code {
            Ok(code) => serde_json::to_vec(&ContainerWaitResponse {
                status_code: code,
                error: None,
            }),
            Err(e) => serde_json::to_vec(&serde_json::json!({
                "StatusCode": -1, "Error": {"Message": e.message}
            })),
        };
        Ok::<_, std::io::Error>(Bytes::from(body.unwrap_or_default()))
    };
    let body = Body::from_stream(futures_util::stream::once(waited));
    Ok(([("content-type", "application/json")], body).into_response())
}

/// Waits for `condition` on `c` (as it was when the request came); its exit code.
async fn wait_for(state: &AppState, c: &Container, condition: Condition) -> ApiResult<i64> {
    let mut changed = state.daemon.monitors.subscribe();
    let mut last_code = c.exit_code;
    let mut gone_since: Option<std::time::Instant> = None;
    loop {
        let id = c.id.clone();
        let now = state.daemon.run(move |e| record(e, &id)).await?;
        match now {
            Some(now) => {
                last_code = now.exit_code.or(last_code);
                let stopped = now.state != RunState::Running;
                let done = match condition {
                    Condition::NotRunning => stopped,
                    Condition::NextExit => stopped && now.finished_at != c.finished_at,
                    Condition::Removed => false,
                };
                if done {
                    return Ok(now.exit_code.unwrap_or(0));
                }
            }
            None => {
                // Removed (by `--rm`, or `rm`): the code comes from the monitor we reaped,
                // which may be a moment behind the removal it made.
                if let Some(code) = state.daemon.monitors.exit_code(&c.id) {
                    return Ok(code);
                }
                let since = *gone_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > Duration::from_millis(500) {
                    return Ok(last_code.unwrap_or(0));
                }
            }
        }
        let _ = tokio::time::timeout(POLL * 5, changed.changed()).await;
    }
}
