//! `GET /healthz`, `GET /readyz`, `GET /metrics`: no token, no customer
//! data.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::reply::{json, ApiResult};
use super::Api;

/// Alive: the process answers.
pub async fn healthz() -> ApiResult {
    json(StatusCode::OK, serde_json::json!({"alive": true}))
}

/// Ready: the store is open and works, and the rules are loaded.
pub async fn readyz(State(api): State<Arc<Api>>) -> ApiResult {
    let ready = api.control.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, serde_json::json!({"ready": ready}))
}

pub async fn metrics(State(api): State<Arc<Api>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        api.metrics.render(),
    )
        .into_response()
}
