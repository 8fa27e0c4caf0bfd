//! `POST /build`: no builder yet. Answered with Docker's error shape and a message saying
//! what to do instead. The build context is read and dropped first: a client still
//! sending it would see a broken pipe, not the message.

use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/build", post(build))
}

async fn build(body: Body) -> ApiError {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "strata does not build images yet (no Dockerfile builder): build elsewhere and docker load the result, or docker commit a container",
    )
}
