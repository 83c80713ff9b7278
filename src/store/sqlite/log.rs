//! What happened to each event: its outcome, and the audit trail of the
//! changes it made.

use std::borrow::Cow;

use rusqlite::params;
use serde::Serialize;

use super::{Result, Store};
use crate::domain::change::Change;
use crate::domain::feed::Notification;
use crate::domain::outcome::Outcome;
use crate::store::DoneEvents;

/// One processed event, to be recorded.
pub struct Recorded<'a> {
    pub queue_seq: Option<i64>,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub body: &'a str,
    pub outcome: Outcome,
    pub reason: Option<&'a str>,
    pub ruleset: &'a str,
    pub processed_at: &'a str,
    /// Borrowed, or given when the caller no longer needs them: a store
    /// that writes on another thread takes them instead of a copy.
    pub changes: Cow<'a, [Change]>,
    /// Sent only for an applied event; empty otherwise.
    pub notifications: Cow<'a, [Notification]>,
}

/// One processed event, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomeRow {
    pub seq: i64,
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub ruleset: String,
    pub processed_at: String,
}

impl DoneEvents for Store {
    /// Whether an event with this id was applied or rejected before: such an
    /// id is never processed again. A failed event did nothing, so its id
    /// stays free for a retry.
    fn is_done(&self, event_id: &str) -> Result<bool> {
        Ok(self.conn
            .prepare_cached(
                "SELECT 1 FROM processed WHERE event_id = ?1 AND outcome IN ('applied', 'rejected')",
            )?
            .exists([event_id])?)
    }

    /// Which of `ids` were applied or rejected before, in one query.
    fn done_among(&self, ids: &[&str]) -> Result<std::collections::HashSet<String>> {
        let ids = serde_json::to_string(ids).expect("strings always serialize");
        // The batch's ids as the outer loop (CROSS JOIN fixes the order),
        // each looked up in the index: a third fewer instructions than
        // `IN (subquery)`, which first copies the ids into a temporary table.
        self.conn
            .prepare_cached(
                "SELECT DISTINCT p.event_id FROM json_each(?1) AS j
                 CROSS JOIN processed AS p
                 WHERE p.event_id = j.value AND p.outcome IN ('applied', 'rejected')",
            )?
            .query_map([ids], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()
            .map_err(Into::into)
    }
}

impl Store {
    /// Records an outcome and its changes.
    pub(super) fn insert_outcome(&self, r: &Recorded) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO processed (queue_seq, event_id, type, body, outcome, reason, ruleset, processed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                r.queue_seq,
                r.event_id,
                r.event_type,
                r.body,
                r.outcome.as_str(),
                r.reason,
                r.ruleset,
                r.processed_at
            ])?;
        let processed = self.conn.last_insert_rowid();
        self.insert_audit(processed, &r.changes)?;
        if !r.notifications.is_empty() {
            self.insert_notifications(processed, &r.notifications)?;
        }
        Ok(())
    }

    /// Processed events in processing order, optionally only one outcome.
    pub fn outcomes(&self, outcome: Option<Outcome>) -> Result<Vec<OutcomeRow>> {
        self.outcomes_where(outcome.map(Outcome::as_str), None)
    }

    fn outcomes_where(
        &self,
        outcome: Option<&str>,
        event_id: Option<&str>,
    ) -> Result<Vec<OutcomeRow>> {
        self.conn
            .prepare(
                "SELECT seq, event_id, type, outcome, reason, ruleset, processed_at FROM processed
                 WHERE (?1 IS NULL OR outcome = ?1) AND (?2 IS NULL OR event_id = ?2) ORDER BY seq",
            )?
            .query_map([outcome, event_id], |r| {
                Ok(OutcomeRow {
                    seq: r.get(0)?,
                    id: r.get(1)?,
                    event_type: r.get(2)?,
                    outcome: outcome_column(r, 3)?,
                    reason: r.get(4)?,
                    ruleset: r.get(5)?,
                    processed_at: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()
            .map_err(Into::into)
    }

    /// Failed events that were neither applied nor rejected since, nor are
    /// among `waiting` (in the queue): the ones a retry would send again.
    /// Each id once, with its last body, in the order they failed.
    pub fn retryable(
        &self,
        waiting: &std::collections::HashSet<String>,
    ) -> Result<Vec<(String, String)>> {
        let failed: Vec<(String, String)> = self
            .conn
            .prepare(
                "SELECT p.event_id, p.body FROM processed p
                 WHERE p.outcome = 'failed'
                   AND p.seq = (SELECT max(seq) FROM processed WHERE event_id = p.event_id)
                 ORDER BY p.seq",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(failed
            .into_iter()
            .filter(|(id, _)| !waiting.contains(id))
            .collect())
    }

    /// Enqueue time and processing time of every processed event.
    pub fn enqueue_and_processed_times(&self) -> Result<Vec<(String, String)>> {
        self.conn
            .prepare("SELECT json_extract(body, '$.at'), processed_at FROM processed ORDER BY seq")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()
            .map_err(Into::into)
    }
}

impl Store {
    /// The processed rows of one event id, in order.
    pub fn outcomes_of(&self, event_id: &str) -> Result<Vec<OutcomeRow>> {
        self.outcomes_where(None, Some(event_id))
    }
}

/// One processed event as recorded, with its changes as `record` was given
/// them: what `replay` runs again and the benchmark's ceiling writes again.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub seq: i64,
    pub queue_seq: Option<i64>,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub ruleset: String,
    pub processed_at: String,
    pub changes: Vec<Change>,
}

impl LoggedEvent {
    pub fn as_recorded(&self) -> Recorded<'_> {
        Recorded {
            queue_seq: self.queue_seq,
            event_id: &self.event_id,
            event_type: &self.event_type,
            body: &self.body,
            outcome: self.outcome,
            reason: self.reason.as_deref(),
            ruleset: &self.ruleset,
            processed_at: &self.processed_at,
            changes: Cow::Borrowed(&self.changes),
            notifications: Cow::Borrowed(&[]),
        }
    }
}

impl Store {
    /// Every processed event with its changes, in order.
    pub fn logged_events(&self) -> Result<Vec<LoggedEvent>> {
        let mut events = Vec::new();
        self.for_each_logged_event(|event| {
            events.push(event);
            Ok::<_, super::StoreError>(())
        })?;
        Ok(events)
    }

    /// How many events were processed.
    pub fn logged_count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM processed", [], |r| r.get(0))?)
    }

    /// Hands each processed event with its changes to `each`, in order,
    /// holding one at a time: the history and its audit trail are read
    /// side by side (both are in processing order), not loaded.
    pub fn for_each_logged_event<E: From<super::StoreError>>(
        &self,
        mut each: impl FnMut(LoggedEvent) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let sql = |e: rusqlite::Error| E::from(super::StoreError::from(e));
        let mut events = self.conn.prepare(
            "SELECT seq, queue_seq, event_id, type, body, outcome, reason, ruleset, processed_at
             FROM processed ORDER BY seq",
        ).map_err(sql)?;
        let mut audit = self
            .conn
            .prepare(super::audit::AUDIT_IN_ORDER)
            .map_err(sql)?;
        let mut audit_rows = audit
            .query_map([], super::audit::audit_row)
            .map_err(sql)?
            .peekable();
        let rows = events
            .query_map([], |r| {
                Ok(LoggedEvent {
                    seq: r.get(0)?,
                    queue_seq: r.get(1)?,
                    event_id: r.get(2)?,
                    event_type: r.get(3)?,
                    body: r.get(4)?,
                    outcome: outcome_column(r, 5)?,
                    reason: r.get(6)?,
                    ruleset: r.get(7)?,
                    processed_at: r.get(8)?,
                    changes: Vec::new(),
                })
            })
            .map_err(sql)?;
        for event in rows {
            let mut event = event.map_err(sql)?;
            let mut own = Vec::new();
            // Audit rows of events before this one belong to none listed.
            while let Some(Ok((processed, _, _))) = audit_rows.peek() {
                if *processed > event.seq {
                    break;
                }
                let row = audit_rows.next().expect("peeked").map_err(sql)?;
                if row.0 == event.seq {
                    own.push(row);
                }
            }
            if let Some(Err(_)) = audit_rows.peek() {
                audit_rows.next().expect("peeked").map_err(sql)?;
            }
            event.changes = crate::store::audit_fields::expand(own)
                .into_iter()
                .map(|(_, change)| change)
                .collect();
            each(event)?;
        }
        Ok(())
    }
}

/// An outcome column, as `Outcome::as_str` wrote it (the schema's CHECK
/// allows no other).
fn outcome_column(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Outcome> {
    let name: String = r.get(i)?;
    Outcome::parse(&name).ok_or(rusqlite::Error::InvalidColumnType(
        i,
        name,
        rusqlite::types::Type::Text,
    ))
}
