//! What every handler does with its request: check the bearer token, take
//! the body (or say why not), and run its store work off the runtime's
//! threads.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};

use super::auth::bearer_matches;
use super::reply::ApiError;
use super::{Api, MAX_BODY_BYTES};

/// Refuses a request without the API's bearer token.
pub fn authorize(api: &Api, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &api.token else {
        return Err(ApiError::unauthorized(format!(
            "the API has no token: set {} in the daemon's environment",
            api.http.token_env
        )));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    if bearer_matches(given, token) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "missing or wrong bearer token (Authorization: Bearer <token>)",
        ))
    }
}

/// The body, or why it cannot be had (too large: 413, said the same
/// whether its length was announced or it came in chunks).
pub fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        status => ApiError::new(status, rejection.body_text()),
    })
}

/// A body over `MAX_BODY_BYTES`.
pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than {} MiB", MAX_BODY_BYTES >> 20),
    )
}

/// Runs blocking work (the store, the rules) off the runtime's threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!("HTTP: a request's work stopped: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request's work stopped",
        )
    })?
}
