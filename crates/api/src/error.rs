//! Docker's error shape, `{"message": "..."}`, with Docker's status codes: 404 for an object
//! that does not exist, 409 for a conflict with its state, 400 for a bad parameter, 500 for
//! everything else.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use strata_engine::Error;
use strata_sys::signal::InvalidSignal;
use strata_sys::{ErrorKind, Kind};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        ApiError::new(status_of(e.kind()), e.to_string())
    }
}

impl From<InvalidSignal> for ApiError {
    fn from(e: InvalidSignal) -> ApiError {
        ApiError::new(status_of(e.kind()), e.to_string())
    }
}

/// The status Docker gives the same kind of failure. An unsupported request is the
/// client's to change (a driver option, a kernel feature it asked for): 400.
fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Invalid | ErrorKind::Unsupported => StatusCode::BAD_REQUEST,
        ErrorKind::Corrupt | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Docker's `{"message": ...}`; server errors are logged, since no one else may see them.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!("{}", self.message);
        } else {
            tracing::debug!("{}: {}", self.status, self.message);
        }
        let body = serde_json::json!({ "message": self.message });
        (self.status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
