//! The history read back: what `explain` shows of a record or an event,
//! and the processed events with their changes, for `replay`.

use serde_json::Value;

use super::PgStore;
use crate::domain::outcome::Outcome;
use crate::store::{AuditRow, LoggedEvent, RecordedConfig, Result, StoreError, Trouble};

/// Events read back at once while streaming the history.
const PAGE: i64 = 1000;

/// The audit rows `filter` keeps, with their events (a literal: statements
/// are prepared once per text).
macro_rules! audit_where {
    ($filter:literal $(,)?) => {
        concat!(
            "SELECT p.processed_at, p.event_id, p.type, a.cause, a.rule, a.chain, ",
            "a.entity, a.entity_id, a.fields, p.ruleset ",
            "FROM audit a JOIN processed p ON p.seq = a.processed ",
            $filter
        )
    };
}

fn audit_rows(rows: &[postgres::Row]) -> Vec<AuditRow> {
    let mut out = Vec::new();
    for r in rows {
        let row = AuditRow {
            processed_at: r.get(0),
            event: r.get(1),
            event_type: r.get(2),
            cause: r.get(3),
            rule: r.get(4),
            chain: r.get(5),
            entity: r.get(6),
            id: r.get(7),
            field: String::new(),
            before: Value::Null,
            after: Value::Null,
            ruleset: r.get(9),
        };
        let fields: String = r.get(8);
        out.extend(crate::store::audit_fields::per_field(row, &fields));
    }
    out
}

impl PgStore {
    /// The changes to one record (and to its timers), in order.
    pub fn history(&self, entity: &str, id: &str) -> Result<Vec<AuditRow>> {
        let rows = self.query(
            audit_where!(
                "WHERE (a.entity = $1 AND a.entity_id = $2) OR (a.entity = 'timer'
                   AND left(a.entity_id, length($1) + length($2) + 2) = $1 || '/' || $2 || '/'
                   AND strpos(substr(a.entity_id, length($1) + length($2) + 3), '/') = 0)
                 ORDER BY a.id",
            ),
            &[&entity, &id],
        )?;
        Ok(audit_rows(&rows))
    }

    /// A ticket's changes, its timers', and each association to it.
    pub fn ticket_history(&self, id: &str) -> Result<Vec<AuditRow>> {
        let rows = self.query(
            audit_where!(
                "WHERE (a.entity = 'ticket' AND a.entity_id = $1)
                    OR (a.entity = 'conversation' AND EXISTS (
                        SELECT 1 FROM json_array_elements(a.fields::json) f
                        WHERE f ->> 0 = 'ticket' AND f ->> 2 = $1))
                    OR (a.entity = 'timer' AND left(a.entity_id, length($1) + 8) = 'ticket/' || $1 || '/'
                        AND strpos(substr(a.entity_id, length($1) + 9), '/') = 0)
                 ORDER BY a.id",
            ),
            &[&id],
        )?;
        Ok(audit_rows(&rows)
            .into_iter()
            .filter(|r| r.entity != "conversation" || r.field == "ticket")
            .collect())
    }

    /// The changes one event made (each time it was processed).
    pub fn changes_of(&self, event_id: &str) -> Result<Vec<AuditRow>> {
        let rows = self.query(
            audit_where!("WHERE p.event_id = $1 ORDER BY a.id"),
            &[&event_id],
        )?;
        Ok(audit_rows(&rows))
    }

    pub fn recorded_ruleset(&self, version: &str) -> Result<Option<RecordedConfig>> {
        let rows = self.query(
            "SELECT settings, stages FROM rulesets WHERE version = $1",
            &[&version],
        )?;
        Ok(rows.first().and_then(|r| {
            Some(RecordedConfig {
                settings: serde_json::from_str(r.get(0)).ok()?,
                stages: serde_json::from_str(r.get(1)).ok()?,
            })
        }))
    }

    pub fn logged_count(&self) -> Result<u64> {
        Ok(self
            .query_one("SELECT count(*) FROM processed", &[])?
            .get::<_, i64>(0) as u64)
    }

    /// Hands each processed event with its changes to `each`, in order, a
    /// page at a time: memory stays bounded whatever the history's size.
    pub fn for_each_logged_event(
        &self,
        each: &mut dyn FnMut(LoggedEvent) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut after = 0i64;
        loop {
            let events = self.query(
                "SELECT seq, queue_seq, event_id, type, body, outcome, reason, ruleset, processed_at
                 FROM processed WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &PAGE],
            )?;
            let (Some(first), Some(last)) = (events.first(), events.last()) else {
                return Ok(());
            };
            let (first, last): (i64, i64) = (first.get(0), last.get(0));
            let audit = self.audit_between(first, last)?;
            let mut changes = crate::store::by_event::ChangesByEvent::new(audit);
            for r in &events {
                let outcome: String = r.get(5);
                let seq: i64 = r.get(0);
                each(LoggedEvent {
                    seq,
                    queue_seq: r.get(1),
                    event_id: r.get(2),
                    event_type: r.get(3),
                    body: r.get(4),
                    outcome: Outcome::parse(&outcome).ok_or_else(|| {
                        StoreError::backend(
                            Trouble::Other,
                            format!("an event has the outcome {outcome:?}"),
                        )
                    })?,
                    reason: r.get(6),
                    ruleset: r.get(7),
                    processed_at: r.get(8),
                    changes: changes.of(seq),
                })?;
            }
            after = last;
        }
    }
}
