//! What happened to each event: outcomes, the audit trail, notifications,
//! and the change feed read from them.

use std::collections::BTreeMap;

use postgres::Row;

use super::PgStore;
use crate::domain::change::{Change, Entity};
use crate::domain::feed::{FeedEntry, Notification};
use crate::domain::outcome::Outcome;
use crate::store::sqlite::feed::event_at;
use crate::store::{OutcomeRow, Recorded, Result, StoreError, Trouble};

fn outcome_of(row: &Row, i: usize) -> Result<Outcome> {
    let name: String = row.get(i);
    Outcome::parse(&name).ok_or_else(|| {
        StoreError::backend(Trouble::Other, format!("an event has the outcome {name:?}"))
    })
}

fn outcome_row(r: &Row) -> Result<OutcomeRow> {
    Ok(OutcomeRow {
        seq: r.get(0),
        id: r.get(1),
        event_type: r.get(2),
        outcome: outcome_of(r, 3)?,
        reason: r.get(4),
        ruleset: r.get(5),
        processed_at: r.get(6),
    })
}

/// An audit row: its event's `processed` seq, the change without its
/// fields, and the fields' text.
fn audit_row(r: &Row) -> Result<(i64, Change, String)> {
    let entity: String = r.get(4);
    let entity = Entity::parse(&entity).ok_or_else(|| {
        StoreError::backend(Trouble::Other, format!("an audit row is on a {entity:?}"))
    })?;
    let change = Change {
        entity,
        id: r.get(5),
        field: String::new(),
        before: serde_json::Value::Null,
        after: serde_json::Value::Null,
        event: r.get(1),
        rule: r.get(2),
        chain: r.get(3),
    };
    Ok((r.get(0), change, r.get(6)))
}

/// An event's audit rows, column by column (arrays for `unnest`).
#[derive(Default)]
struct AuditColumns<'a> {
    cause: Vec<&'a str>,
    rule: Vec<Option<&'a str>>,
    chain: Vec<&'a str>,
    entity: Vec<&'a str>,
    entity_id: Vec<&'a str>,
    fields: Vec<String>,
}

impl PgStore {
    /// The outcome row and its audit rows in one statement (a round trip
    /// is most of what a row costs here).
    pub(super) fn insert_outcome(&self, r: &Recorded) -> Result<()> {
        let mut audit = AuditColumns::default();
        for (first, fields) in crate::store::audit_fields::rows(&r.changes) {
            audit.cause.push(first.event.as_str());
            audit.rule.push(first.rule.as_deref());
            audit.chain.push(first.chain.as_str());
            audit.entity.push(first.entity.as_str());
            audit.entity_id.push(first.id.as_str());
            audit.fields.push(fields);
        }
        let processed: i64 = self
            .query_one(
                "WITH p AS (
                     INSERT INTO processed (queue_seq, event_id, type, body, outcome, reason, ruleset, processed_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq
                 ), a AS (
                     INSERT INTO audit (processed, cause, rule, chain, entity, entity_id, fields)
                     SELECT p.seq, a.cause, a.rule, a.chain, a.entity, a.entity_id, a.fields
                     FROM p, unnest($9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[], $13::TEXT[], $14::TEXT[])
                          WITH ORDINALITY AS a(cause, rule, chain, entity, entity_id, fields, n)
                     ORDER BY a.n
                 )
                 SELECT seq FROM p",
                &[
                    &r.queue_seq,
                    &r.event_id,
                    &r.event_type,
                    &r.body,
                    &r.outcome.as_str(),
                    &r.reason,
                    &r.ruleset,
                    &r.processed_at,
                    &audit.cause,
                    &audit.rule,
                    &audit.chain,
                    &audit.entity,
                    &audit.entity_id,
                    &audit.fields,
                ],
            )?
            .get(0);
        for n in r.notifications.iter() {
            self.execute(
                "INSERT INTO notifications (processed, webhook, payload, rule, event)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &processed,
                    &n.webhook,
                    &n.payload.to_string(),
                    &n.rule,
                    &n.event,
                ],
            )?;
        }
        Ok(())
    }

    /// Processed events in processing order, optionally only one outcome.
    pub fn outcomes(&self, outcome: Option<Outcome>) -> Result<Vec<OutcomeRow>> {
        let outcome = outcome.map(Outcome::as_str);
        self.query(
            "SELECT seq, event_id, type, outcome, reason, ruleset, processed_at FROM processed
             WHERE ($1::TEXT IS NULL OR outcome = $1) ORDER BY seq",
            &[&outcome],
        )?
        .iter()
        .map(outcome_row)
        .collect()
    }

    /// The processed rows of one event id, in order.
    pub fn outcomes_of(&self, event_id: &str) -> Result<Vec<OutcomeRow>> {
        self.query(
            "SELECT seq, event_id, type, outcome, reason, ruleset, processed_at FROM processed
             WHERE event_id = $1 ORDER BY seq",
            &[&event_id],
        )?
        .iter()
        .map(outcome_row)
        .collect()
    }

    /// Counts by outcome; a failed event retried since counts once, as
    /// what it became.
    pub fn outcome_counts(&self) -> Result<BTreeMap<String, u64>> {
        Ok(self
            .query(
                "SELECT outcome, count(*) FROM processed p
                 WHERE p.outcome != 'failed'
                    OR NOT EXISTS (SELECT 1 FROM processed q WHERE q.event_id = p.event_id AND q.seq > p.seq)
                 GROUP BY outcome",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }

    /// Failed events neither applied nor rejected since, nor `waiting`:
    /// each id once, with its last body, in the order they failed.
    pub fn retryable(
        &self,
        waiting: &std::collections::HashSet<String>,
    ) -> Result<Vec<(String, String)>> {
        Ok(self
            .query(
                "SELECT p.event_id, p.body FROM processed p
                 WHERE p.outcome = 'failed'
                   AND p.seq = (SELECT max(seq) FROM processed WHERE event_id = p.event_id)
                 ORDER BY p.seq",
                &[],
            )?
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
            .filter(|(id, _)| !waiting.contains(id))
            .collect())
    }

    /// Up to `limit` feed entries after the cursor `after`, in order.
    pub fn feed(&self, after: i64, limit: usize) -> Result<Vec<FeedEntry>> {
        let rows = self.query(
            "SELECT seq, event_id, type, outcome, reason, ruleset, processed_at, body
             FROM processed WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &(limit as i64)],
        )?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(Vec::new());
        };
        let (first, last): (i64, i64) = (first.get(0), last.get(0));
        let audit = self.audit_between(first, last)?;
        let notifications = self
            .query(
                "SELECT processed, webhook, payload, rule, event FROM notifications
                 WHERE processed BETWEEN $1 AND $2 ORDER BY id",
                &[&first, &last],
            )?
            .iter()
            .map(|r| {
                let payload: String = r.get(2);
                let n = Notification {
                    webhook: r.get(1),
                    payload: serde_json::from_str(&payload).unwrap_or_default(),
                    rule: r.get(3),
                    event: r.get(4),
                };
                (r.get::<_, i64>(0), n)
            })
            .collect();
        let entries = rows
            .iter()
            .map(|r| {
                let body: String = r.get(7);
                let processed_at: String = r.get(6);
                FeedEntry {
                    cursor: r.get(0),
                    event: r.get(1),
                    event_type: r.get(2),
                    outcome: outcome_of(r, 3).unwrap_or(Outcome::Failed),
                    reason: r.get(4),
                    at: Some(event_at(&body).unwrap_or(processed_at)),
                    ruleset: r.get(5),
                    changes: Vec::new(),
                    notifications: Vec::new(),
                }
            })
            .collect();
        Ok(crate::store::by_event::attach(
            entries,
            audit,
            notifications,
        ))
    }

    /// The audit rows of the events `first..=last`, in order.
    pub(super) fn audit_between(
        &self,
        first: i64,
        last: i64,
    ) -> Result<Vec<(i64, Change, String)>> {
        self.query(
            "SELECT processed, cause, rule, chain, entity, entity_id, fields FROM audit
             WHERE processed BETWEEN $1 AND $2 ORDER BY id",
            &[&first, &last],
        )?
        .iter()
        .map(audit_row)
        .collect()
    }

    /// How many messages one webhook has yet to send after `after`.
    pub fn messages_due(&self, after: i64, webhook: &str, changes: bool) -> Result<u64> {
        let notifications: i64 = self
            .query_one(
                "SELECT count(*) FROM notifications WHERE processed > $1 AND webhook = $2",
                &[&after, &webhook],
            )?
            .get(0);
        if !changes {
            return Ok(notifications as u64);
        }
        let entries: i64 = self
            .query_one(
                "SELECT count(*) FROM processed p WHERE p.seq > $1 AND p.outcome = 'applied'
                 AND EXISTS (SELECT 1 FROM audit a WHERE a.processed = p.seq)",
                &[&after],
            )?
            .get(0);
        Ok((notifications + entries) as u64)
    }

    /// The store's identity, made with it (webhook message ids).
    pub fn identity(&self) -> Result<String> {
        Ok(self
            .query_one("SELECT identity FROM store_identity WHERE id = 1", &[])?
            .get(0))
    }

    /// The cursor of the last feed entry (0: none yet).
    pub fn last_cursor(&self) -> Result<i64> {
        Ok(self
            .query_one("SELECT coalesce(max(seq), 0)::BIGINT FROM processed", &[])?
            .get(0))
    }
}
