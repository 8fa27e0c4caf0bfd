//! The whole API in one place: each area module contributes its `routes()`; adding an area
//! is one line here.

use axum::http::StatusCode;
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(crate::system::routes())
        .merge(crate::images::routes())
        .merge(crate::containers::routes())
        .merge(crate::volumes::routes())
        .merge(crate::exec::routes())
        .merge(crate::events::routes())
        .merge(crate::build::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "page not found") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        })
        .with_state(state)
}
