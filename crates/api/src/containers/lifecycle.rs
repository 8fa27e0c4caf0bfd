//! A container's run: `start`, `stop`, `restart`, `kill`, and `DELETE` (rm). Each is a thin
//! handler over the engine; the daemon reaps the monitors it starts, for `wait`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use strata_engine::container::{parse_signal, StartOptions};
use strata_engine::{Container, State as RunState};

use super::record::container;
use crate::error::{ApiError, ApiResult};
use crate::params::Query;
use crate::state::{AppState, Blocking};

/// `POST /containers/{id}/start`: 204, or 304 if it already runs.
pub async fn start(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let c = container(&state, &id).await?;
    if c.state == RunState::Running {
        return Ok(StatusCode::NOT_MODIFIED);
    }
    start_container(&state, c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts `c` through its monitor, which this daemon then reaps to learn the exit code.
async fn start_container(state: &AppState, c: Container) -> ApiResult<()> {
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
            let started = e.containers().start(&c.id, &options).map_err(start_error)?;
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
pub async fn stop(
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
        .run(move |e| Ok(e.containers().stop(&c.id, timeout)?))
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
pub async fn restart(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<StatusCode> {
    let timeout = stop_timeout(&query)?;
    let stopped = state
        .daemon
        .run(move |e| Ok(e.containers().stop(&id, timeout)?))
        .await?;
    start_container(&state, stopped).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/kill?signal=SIG`: 204; 409 if it is not running.
pub async fn kill(
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
        .run(move |e| Ok(e.containers().kill(&id, signal)?))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /containers/{id}?force=1&v=1`: 204; 409 if it runs and `force` is not given.
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Query,
) -> ApiResult<StatusCode> {
    let (force, volumes) = (query.flag("force"), query.flag("v"));
    state
        .daemon
        .run(move |e| {
            let options = strata_engine::RemoveOptions { force, volumes };
            Ok(e.containers().remove(&id, &options)?)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
