//! What happened to each event: its outcome, and the audit trail of the
//! changes it made.

use rusqlite::params;
use serde::Serialize;

use super::Store;
use crate::change::Change;

/// One processed event, to be recorded.
pub struct Recorded<'a> {
    pub queue_seq: Option<i64>,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub body: &'a str,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub ruleset: &'a str,
    pub processed_at: &'a str,
    pub changes: &'a [Change],
}

/// One processed event, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomeRow {
    pub seq: i64,
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub ruleset: String,
    pub processed_at: String,
}

impl Store {
    /// Whether an event with this id was applied or rejected before: such an
    /// id is never processed again. A failed event did nothing, so its id
    /// stays free for a retry.
    pub fn is_done(&self, event_id: &str) -> rusqlite::Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT 1 FROM processed WHERE event_id = ?1 AND outcome IN ('applied', 'rejected')",
            )?
            .exists([event_id])
    }

    /// Records an outcome and its changes.
    pub fn record(&self, r: &Recorded) -> rusqlite::Result<()> {
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
                r.outcome,
                r.reason,
                r.ruleset,
                r.processed_at
            ])?;
        let processed = self.conn.last_insert_rowid();
        let mut audit = self.conn.prepare_cached(
            "INSERT INTO audit (processed, event_id, cause, rule, chain, entity, entity_id, field, before, after, ruleset)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for c in r.changes {
            audit.execute(params![
                processed,
                r.event_id,
                c.event,
                c.rule,
                c.chain,
                c.entity.as_str(),
                c.id,
                c.field,
                c.before.to_string(),
                c.after.to_string(),
                r.ruleset
            ])?;
        }
        Ok(())
    }

    /// Processed events in processing order, optionally only one outcome.
    pub fn outcomes(&self, outcome: Option<&str>) -> rusqlite::Result<Vec<OutcomeRow>> {
        self.outcomes_where(outcome, None)
    }

    fn outcomes_where(
        &self,
        outcome: Option<&str>,
        event_id: Option<&str>,
    ) -> rusqlite::Result<Vec<OutcomeRow>> {
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
                    outcome: r.get(3)?,
                    reason: r.get(4)?,
                    ruleset: r.get(5)?,
                    processed_at: r.get(6)?,
                })
            })?
            .collect()
    }

    /// Failed events that were neither applied nor rejected since, nor are
    /// waiting in the queue: the ones a retry would send again. Each id once,
    /// with its last body, in the order they failed.
    pub fn retryable(&self) -> rusqlite::Result<Vec<(String, String)>> {
        self.conn
            .prepare(
                "SELECT p.event_id, p.body FROM processed p
                 WHERE p.outcome = 'failed'
                   AND p.seq = (SELECT max(seq) FROM processed WHERE event_id = p.event_id)
                   AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.event_id = p.event_id)
                 ORDER BY p.seq",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    }

    /// For each applied event, in order, the state rows it wrote, from the
    /// audit trail (for the benchmark's ceiling).
    pub fn row_writes(&self) -> rusqlite::Result<Vec<Vec<RowWrite>>> {
        let mut events: Vec<(i64, Vec<RowWrite>)> = Vec::new();
        let mut stmt = self.conn.prepare(
            "SELECT processed, entity, entity_id, field, after FROM audit ORDER BY processed, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        for row in rows {
            let (processed, entity, id, field, after) = row?;
            if events.last().is_none_or(|(p, _)| *p != processed) {
                events.push((processed, Vec::new()));
            }
            let writes = &mut events.last_mut().expect("pushed above").1;
            let write = match (entity.as_str(), field.as_str()) {
                ("conversation", "ticket") => {
                    let ticket: Option<String> = after.and_then(|a| serde_json::from_str(&a).ok());
                    ticket.map(|ticket| RowWrite::Association {
                        ticket,
                        conversation: id,
                    })
                }
                ("conversation", _) => Some(RowWrite::Conversation(id)),
                ("ticket", _) => Some(RowWrite::Ticket(id)),
                _ => Some(RowWrite::Block(id)),
            };
            if let Some(write) = write.filter(|w| !writes.contains(w)) {
                writes.push(write);
            }
        }
        for (_, writes) in &mut events {
            // Tickets, then conversations, then what links them.
            writes.sort_by_key(|w| match w {
                RowWrite::Ticket(_) => 0,
                RowWrite::Conversation(_) => 1,
                RowWrite::Association { .. } => 2,
                RowWrite::Block(_) => 3,
            });
        }
        Ok(events.into_iter().map(|(_, w)| w).collect())
    }

    /// Enqueue time and processing time of every processed event.
    pub fn enqueue_and_processed_times(&self) -> rusqlite::Result<Vec<(String, String)>> {
        self.conn
            .prepare("SELECT json_extract(body, '$.at'), processed_at FROM processed ORDER BY seq")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    }
}

/// One audited change, with its event.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub processed_at: String,
    /// The original event.
    pub event: String,
    pub event_type: String,
    /// The event (original or derived) whose application made the change.
    pub cause: String,
    pub rule: Option<String>,
    pub chain: String,
    pub entity: String,
    pub id: String,
    pub field: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub ruleset: String,
}

const AUDIT_SELECT: &str = "SELECT p.processed_at, a.event_id, p.type, a.cause, a.rule, a.chain, \
     a.entity, a.entity_id, a.field, a.before, a.after, a.ruleset \
     FROM audit a JOIN processed p ON p.seq = a.processed";

/// A column holding a JSON value (`before`, `after`).
fn json_column(r: &rusqlite::Row, i: usize) -> rusqlite::Result<serde_json::Value> {
    let text: Option<String> = r.get(i)?;
    Ok(text
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null))
}

fn audit_row(r: &rusqlite::Row) -> rusqlite::Result<AuditRow> {
    let json = |i: usize| json_column(r, i);
    Ok(AuditRow {
        processed_at: r.get(0)?,
        event: r.get(1)?,
        event_type: r.get(2)?,
        cause: r.get(3)?,
        rule: r.get(4)?,
        chain: r.get(5)?,
        entity: r.get(6)?,
        id: r.get(7)?,
        field: r.get(8)?,
        before: json(9)?,
        after: json(10)?,
        ruleset: r.get(11)?,
    })
}

impl Store {
    /// Every change to one record, oldest first.
    pub fn history(&self, entity: &str, id: &str) -> rusqlite::Result<Vec<AuditRow>> {
        self.conn
            .prepare(&format!(
                "{AUDIT_SELECT} WHERE a.entity = ?1 AND a.entity_id = ?2 ORDER BY a.id"
            ))?
            .query_map([entity, id], audit_row)?
            .collect()
    }

    /// Every change made by one event (through its rules too), in order.
    pub fn changes_of(&self, event_id: &str) -> rusqlite::Result<Vec<AuditRow>> {
        self.conn
            .prepare(&format!(
                "{AUDIT_SELECT} WHERE p.event_id = ?1 ORDER BY a.id"
            ))?
            .query_map([event_id], audit_row)?
            .collect()
    }

    /// The processed rows of one event id, in order.
    pub fn outcomes_of(&self, event_id: &str) -> rusqlite::Result<Vec<OutcomeRow>> {
        self.outcomes_where(None, Some(event_id))
    }
}

/// One processed event of the history, with the changes it made.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub seq: i64,
    pub event_id: String,
    pub body: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub processed_at: String,
    /// `(entity, id, field, before, after)`, in order.
    pub changes: Vec<(String, String, String, serde_json::Value, serde_json::Value)>,
}

impl Store {
    /// The whole history of processed events, in order, with their changes.
    pub fn history_log(&self) -> rusqlite::Result<Vec<HistoryEntry>> {
        let mut entries: Vec<HistoryEntry> = self
            .conn
            .prepare(
                "SELECT seq, event_id, body, outcome, reason, processed_at FROM processed ORDER BY seq",
            )?
            .query_map([], |r| {
                Ok(HistoryEntry {
                    seq: r.get(0)?,
                    event_id: r.get(1)?,
                    body: r.get(2)?,
                    outcome: r.get(3)?,
                    reason: r.get(4)?,
                    processed_at: r.get(5)?,
                    changes: Vec::new(),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let index: std::collections::HashMap<i64, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.seq, i))
            .collect();
        let mut stmt = self.conn.prepare(
            "SELECT processed, entity, entity_id, field, before, after FROM audit ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            let json = |i: usize| json_column(r, i);
            Ok((
                r.get::<_, i64>(0)?,
                (r.get(1)?, r.get(2)?, r.get(3)?, json(4)?, json(5)?),
            ))
        })?;
        for row in rows {
            let (processed, change) = row?;
            if let Some(&i) = index.get(&processed) {
                entries[i].changes.push(change);
            }
        }
        Ok(entries)
    }
}

/// A state row written by an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowWrite {
    Conversation(String),
    Ticket(String),
    Association {
        ticket: String,
        conversation: String,
    },
    Block(String),
}
