//! Images: list, inspect, history, tag, remove, import (`images/create?fromSrc=-`), load,
//! save (`images/get`, `images/{name}/get`), prune.

use axum::Router;
use serde_json::Value;

use crate::error::ApiResult;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}

/// Image summaries (as `images/json` lists them) and the total size of all layers.
pub async fn summaries_with_usage(_state: &AppState) -> ApiResult<(Vec<Value>, i64)> {
    Ok((vec![], 0))
}
