//! Answers: JSON bodies, and errors as `{"error": "..."}` (plus the line
//! of a bad event).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A refused or failed request.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub line: Option<usize>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            line: None,
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// The store cannot be used now: worth trying again later.
    pub fn unavailable(error: &anyhow::Error) -> ApiError {
        tracing::warn!("HTTP: the store is unavailable: {error:#}");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store is unavailable: {error:#}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.line {
            Some(line) => json!({"error": self.message, "line": line}),
            None => json!({"error": self.message}),
        };
        (self.status, Json(body)).into_response()
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// A JSON answer with `status`.
pub fn json(status: StatusCode, value: impl serde::Serialize) -> ApiResult {
    Ok((status, Json(value)).into_response())
}
