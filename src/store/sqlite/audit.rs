//! The audit trail: every change an event made, with the rule and the
//! chain of events that caused it. One row per record changed by one
//! (original or derived) event, its fields as a JSON list; the event id and
//! ruleset come from the event's `processed` row.

use rusqlite::params;
use serde::Serialize;
use serde_json::Value;

use super::{Result, Store};
use crate::domain::change::{Change, Entity};

/// One audited change of one field, with its event.
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
    pub before: Value,
    pub after: Value,
    pub ruleset: String,
}

impl Store {
    /// Writes `changes` (in order) for the processed event `processed`.
    pub(super) fn insert_audit(&self, processed: i64, changes: &[Change]) -> Result<()> {
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO audit (processed, cause, rule, chain, entity, entity_id, fields)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (first, fields) in crate::store::audit_fields::rows(changes) {
            insert.execute(params![
                processed,
                first.event,
                first.rule,
                first.chain,
                first.entity.as_str(),
                first.id,
                fields
            ])?;
        }
        Ok(())
    }

    /// Every change to one record, oldest first.
    /// (With its timers, for a conversation or a ticket.)
    pub fn history(&self, entity: &str, id: &str) -> Result<Vec<AuditRow>> {
        Ok(self.audit_rows(
            &format!("(a.entity = ?1 AND a.entity_id = ?2) OR {TIMERS_OF_RECORD}"),
            &[entity, id],
        )?)
    }

    /// Every change to one ticket, and every conversation's association
    /// with it (a change of the conversation's `ticket`), oldest first.
    pub fn ticket_history(&self, id: &str) -> Result<Vec<AuditRow>> {
        let rows = self.audit_rows(
            &format!(
                "(a.entity = 'ticket' AND a.entity_id = ?2)
                 OR (a.entity = 'conversation' AND EXISTS (
                     SELECT 1 FROM json_each(a.fields) f
                     WHERE f.value ->> 0 = 'ticket' AND f.value ->> 2 = ?2))
                 OR {TIMERS_OF_RECORD}"
            ),
            &["ticket", id],
        )?;
        Ok(rows
            .into_iter()
            .filter(|r| r.entity != "conversation" || r.field == "ticket")
            .collect())
    }

    /// Every change made by one event (through its rules too), in order.
    pub fn changes_of(&self, event_id: &str) -> Result<Vec<AuditRow>> {
        Ok(self.audit_rows("p.event_id = ?1", &[event_id])?)
    }

    fn audit_rows(&self, filter: &str, args: &[&str]) -> rusqlite::Result<Vec<AuditRow>> {
        let sql = format!(
            "SELECT p.processed_at, p.event_id, p.type, a.cause, a.rule, a.chain, \
             a.entity, a.entity_id, a.fields, p.ruleset \
             FROM audit a JOIN processed p ON p.seq = a.processed WHERE {filter} ORDER BY a.id"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            let row = AuditRow {
                processed_at: r.get(0)?,
                event: r.get(1)?,
                event_type: r.get(2)?,
                cause: r.get(3)?,
                rule: r.get(4)?,
                chain: r.get(5)?,
                entity: r.get(6)?,
                id: r.get(7)?,
                field: String::new(),
                before: Value::Null,
                after: Value::Null,
                ruleset: r.get(9)?,
            };
            Ok((row, r.get::<_, String>(8)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (row, fields) = row?;
            out.extend(crate::store::audit_fields::per_field(row, &fields));
        }
        Ok(out)
    }
}

/// The audit rows of the timers of record `?1` (its kind) `?2` (its id):
/// their paths are `<kind>/<id>/<name>`, and names hold no `/`.
const TIMERS_OF_RECORD: &str = "(a.entity = 'timer'
     AND substr(a.entity_id, 1, length(?1) + length(?2) + 2) = ?1 || '/' || ?2 || '/'
     AND instr(substr(a.entity_id, length(?1) + length(?2) + 3), '/') = 0)";

/// Audit rows in the order they were written: grouped by `processed`, in
/// increasing order (an event's rows are written with its outcome).
pub(super) const AUDIT_IN_ORDER: &str =
    "SELECT processed, cause, rule, chain, entity, entity_id, fields FROM audit ORDER BY id";

/// One row of `AUDIT_IN_ORDER`: its event's `processed` seq, the change
/// without its fields, and the fields as stored.
pub(super) fn audit_row(r: &rusqlite::Row) -> rusqlite::Result<(i64, Change, String)> {
    let entity: String = r.get(4)?;
    let entity = Entity::parse(&entity).ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(4, entity, rusqlite::types::Type::Text)
    })?;
    let change = Change {
        entity,
        id: r.get(5)?,
        field: String::new(),
        before: Value::Null,
        after: Value::Null,
        event: r.get(1)?,
        rule: r.get(2)?,
        chain: r.get(3)?,
    };
    Ok((r.get(0)?, change, r.get(6)?))
}
