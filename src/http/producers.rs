//! Requests that bring events: `POST /v1/events`, `POST /v1/hubspot`, and
//! `POST /v1/dry-run`, which runs them without keeping anything.
//!
//! Every body is checked whole before anything is queued, and queued in
//! one transaction: a refused request leaves the queue as it was.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};

use super::auth::{check_hubspot_v3, SignedRequest};
use super::reply::{json, ApiError, ApiResult};
use super::request::{authorize, blocking, body};
use super::Api;
use crate::domain::event::{now_rfc3339, Event};
use crate::domain::event_lines::{parse_body, LineError, Staged};

fn bad_event(error: LineError) -> ApiError {
    ApiError {
        line: Some(error.line),
        ..ApiError::bad_request(error.to_string())
    }
}

/// Queues checked events (`at` filled in) in one transaction and wakes
/// the engine.
fn enqueue(api: &Api, events: Vec<Event>, now: &str) -> Result<(), ApiError> {
    if events.is_empty() {
        return Ok(());
    }
    let staged = events.into_iter().map(|event| Ok(Staged::from(event)));
    api.queues
        .with(|producer| producer.enqueue_staged(staged, now, || {}))
        .map_err(|e| ApiError::unavailable(&e))?;
    api.control.wake();
    Ok(())
}

pub async fn post_events(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    authorize(&api, &headers)?;
    let bytes = body(raw)?;
    let count = blocking(move || {
        let now = now_rfc3339();
        let events = parse_body(&bytes, &api.config.stages, &now).map_err(bad_event)?;
        let count = events.len();
        enqueue(&api, events, &now)?;
        Ok(count)
    })
    .await?;
    json(StatusCode::ACCEPTED, serde_json::json!({"enqueued": count}))
}

pub async fn post_hubspot(
    State(api): State<Arc<Api>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body(raw)?;
    check_signature(&api, &method, &uri, &headers, &bytes)?;
    let (enqueued, skipped) = blocking(move || {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::bad_request("the body is not valid UTF-8"))?;
        let mapped =
            crate::tools::hubspot::map(text, &api.config.stages).map_err(ApiError::bad_request)?;
        let now = now_rfc3339();
        let (enqueued, skipped) = (mapped.events.len(), mapped.skipped.len());
        let events = (mapped.events.into_iter())
            .map(|mut event| {
                event.at.get_or_insert_with(|| now.clone());
                event
            })
            .collect();
        enqueue(&api, events, &now)?;
        api.metrics
            .hubspot_skipped
            .inc_by(mapped.skipped.len() as u64);
        for skipped in &mapped.skipped {
            tracing::debug!("HubSpot notification skipped: {skipped}");
        }
        Ok((enqueued, skipped))
    })
    .await?;
    json(
        StatusCode::OK,
        serde_json::json!({"enqueued": enqueued, "skipped": skipped}),
    )
}

fn check_signature(
    api: &Api,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    let Some(secret) = &api.hubspot_secret else {
        return Err(ApiError::unauthorized(format!(
            "no HubSpot secret: set {} in the daemon's environment",
            api.http.hubspot_secret_env
        )));
    };
    let header = |name: &str| headers.get(name).and_then(|h| h.to_str().ok());
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let full_uri = match &api.http.public_url {
        Some(base) => format!("{base}{path}"),
        None => format!("http://{}{path}", header("host").unwrap_or("")),
    };
    let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let request = SignedRequest {
        method: method.as_str(),
        uri: &full_uri,
        body,
        signature: header("x-hubspot-signature-v3"),
        timestamp: header("x-hubspot-request-timestamp"),
    };
    check_hubspot_v3(&request, secret, now_ms).map_err(|e| {
        tracing::warn!("HTTP: a /v1/hubspot delivery is refused: {e}");
        ApiError::unauthorized(e.to_string())
    })
}

pub async fn post_dry_run(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult {
    authorize(&api, &headers)?;
    let bytes = body(raw)?;
    let reports = blocking(move || {
        // The rules as the files hold them now: the daemon's own RuleSet
        // lives on the engine's thread.
        let rules = crate::daemon::load(&api.config.file, None).map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the rules do not load: {e}"),
            )
        })?;
        let now = now_rfc3339();
        let events = parse_body(&bytes, &rules.config.stages, &now).map_err(bad_event)?;
        let store =
            crate::store::open_reader(&api.config).map_err(|e| ApiError::unavailable(&e))?;
        let reports = crate::tools::dry_run::simulate_on(store, rules, &events)
            .map_err(|e| ApiError::unavailable(&e.into()))?;
        serde_json::to_value(reports)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await?;
    json(StatusCode::OK, reports)
}
