//! Docker's error shape, `{"message": "..."}`, with Docker's status codes: 404 for an object
//! that does not exist, 409 for a conflict with its state, 400 for a bad parameter, 500 for
//! everything else.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use strata_engine::Error;

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
        ApiError::new(status_of(&e), e.to_string())
    }
}

/// The status Docker gives the same failure.
fn status_of(e: &Error) -> StatusCode {
    use strata_image::Error as I;
    use strata_storage::Error as S;
    let storage = |s: &S| match s {
        S::NotFound(_) => StatusCode::NOT_FOUND,
        S::Conflict(_) => StatusCode::CONFLICT,
        S::Archive(_) | S::PathEscape(_) | S::Unsupported(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    match e {
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Invalid(_) | Error::InvalidName { .. } => StatusCode::BAD_REQUEST,
        Error::Storage(s) => storage(s),
        Error::Image(i) => match i {
            I::NotFound(_) => StatusCode::NOT_FOUND,
            I::Conflict(_) => StatusCode::CONFLICT,
            I::InvalidReference { .. } | I::InvalidChange { .. } | I::Archive(_) => {
                StatusCode::BAD_REQUEST
            }
            I::Storage(s) => storage(s),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        // A command that cannot run in the container: Docker answers 400 at start (the CLI
        // then exits 126 or 127 from the message).
        Error::Runtime(r) if matches!(r.exit_code(), 126 | 127) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
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
