//! Containers: create, start, wait, inspect, list, logs, kill, stop, restart, remove, attach.

use axum::Router;
use serde_json::Value;

use crate::error::ApiResult;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}

/// Container summaries, as `containers/json` lists them.
pub async fn summaries(_state: &AppState, _all: bool) -> ApiResult<Vec<Value>> {
    Ok(vec![])
}
