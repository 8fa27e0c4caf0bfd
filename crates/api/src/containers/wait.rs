//! `wait`: the headers at once, the exit code when Docker's `condition` holds.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bollard_stubs::models::ContainerWaitResponse;
use strata_engine::{Container, State as RunState};

use super::record::{container, record, POLL};
use crate::error::{ApiError, ApiResult};
use crate::params::Query;
use crate::state::{AppState, Blocking};

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
pub async fn wait(
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
