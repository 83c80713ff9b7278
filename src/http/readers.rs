//! Requests that read: a conversation, a ticket, an event's state, each as
//! the last commit has it.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

use super::reply::{json, ApiError, ApiResult};
use super::request::{authorize, blocking};
use super::Api;

use crate::domain::clip::clip;
use crate::store::Reader;

pub async fn get_conversation(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    record(api, &headers, id, "conversation", |store, id| {
        store.conversation(id)
    })
    .await
}

pub async fn get_ticket(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    record(api, &headers, id, "ticket", |store, id| store.ticket(id)).await
}

/// The id in the path; one that cannot be read (not UTF-8 once decoded)
/// is a 400 like any malformed request, after the token is checked.
fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    id.map(|Path(id)| id)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// One record as the last commit has it, as in `export`; 404 if unknown.
async fn record<T: serde::Serialize + Send + 'static>(
    api: Arc<Api>,
    headers: &HeaderMap,
    id: Result<Path<String>, PathRejection>,
    kind: &'static str,
    read: fn(&dyn Reader, &str) -> crate::store::Result<Option<T>>,
) -> ApiResult {
    authorize(&api, headers)?;
    let id = path_id(id)?;
    let found = blocking(move || {
        let read = api.stores.with(|store| Ok(read(store.as_ref(), &id)?));
        read.map_err(|e| ApiError::unavailable(&e))?
            .ok_or_else(|| ApiError::not_found(format!("no {kind} {}", clip(&id))))
    })
    .await?;
    json(StatusCode::OK, found)
}

/// `{"id", "state", "reason"}`: the outcome that settled the event
/// (applied or rejected) if any; else `queued` while it waits; else its
/// last outcome (failed, duplicate).
pub async fn get_event(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    authorize(&api, &headers)?;
    let id = path_id(id)?;
    let state = blocking(move || {
        let read = api.stores.with(|store| {
            let outcomes = store.outcomes_of(&id)?;
            let position = store.queue_position()?;
            Ok((outcomes, position))
        });
        let (outcomes, position) = read.map_err(|e| ApiError::unavailable(&e))?;
        let settled = outcomes.iter().find(|o| o.outcome.is_done());
        if let Some(row) = settled {
            return Ok(event_state(
                &id,
                row.outcome.as_str(),
                row.reason.as_deref(),
            ));
        }
        let waiting = api
            .queues
            .with(|queue| Ok(queue.is_waiting(position.as_ref(), &id)?))
            .map_err(|e| ApiError::unavailable(&e))?;
        match (waiting, outcomes.last()) {
            (true, _) => Ok(event_state(&id, "queued", None)),
            (false, Some(row)) => Ok(event_state(
                &id,
                row.outcome.as_str(),
                row.reason.as_deref(),
            )),
            (false, None) => Err(ApiError::not_found(format!("no event {}", clip(&id)))),
        }
    })
    .await?;
    json(StatusCode::OK, state)
}

fn event_state(id: &str, state: &str, reason: Option<&str>) -> serde_json::Value {
    serde_json::json!({"id": id, "state": state, "reason": reason})
}
