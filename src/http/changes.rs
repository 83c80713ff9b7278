//! `GET /v1/changes?after=C&limit=N&wait=S`: the change feed, a page at a
//! time, held open up to S seconds while nothing is newer than C.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};

use super::reply::{json, ApiError, ApiResult};
use super::request::{authorize, blocking};
use super::Api;

/// Entries per page unless `limit` says, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;
/// The longest a request may wait for new entries.
const MAX_WAIT_SECONDS: f64 = 25.0;
/// How often a waiting request looks whether a batch committed.
const WAIT_POLL: Duration = Duration::from_millis(50);
/// How often a long poll reads the feed again when commits may come from
/// another daemon.
const OTHERS_POLL: Duration = Duration::from_secs(1);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    #[serde(default)]
    after: i64,
    limit: Option<usize>,
    /// Seconds, a fraction allowed (`0.5`).
    #[serde(default)]
    wait: f64,
}

pub async fn get_changes(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    query: Result<Query<ChangesQuery>, QueryRejection>,
) -> ApiResult {
    authorize(&api, &headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    // NaN and infinity (`wait=NaN`, `wait=inf` parse) fall outside too.
    if !(0.0..=MAX_WAIT_SECONDS).contains(&query.wait) {
        return Err(ApiError::bad_request(format!(
            "wait must be a number of seconds from 0 to {MAX_WAIT_SECONDS}"
        )));
    }
    let deadline = Instant::now() + Duration::from_secs_f64(query.wait);
    loop {
        let seen = api.control.commits();
        let reader = Arc::clone(&api);
        let after = query.after;
        let page = blocking(move || {
            let read = reader.stores.with(|store| Ok(store.feed(after, limit)?));
            read.map_err(|e| ApiError::unavailable(&e))
        })
        .await?;
        if !page.is_empty() || Instant::now() >= deadline {
            let next = page.last().map_or(query.after, |entry| entry.cursor);
            return json(
                StatusCode::OK,
                serde_json::json!({"changes": page, "next": next}),
            );
        }
        // On PostgreSQL another daemon may hold the lease and commit: this
        // one's commits say nothing then, the feed is read again each second.
        let look_again = Instant::now() + OTHERS_POLL;
        while api.control.commits() == seen && Instant::now() < deadline {
            if api.config.store_url.is_some() && Instant::now() >= look_again {
                break;
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }
}
