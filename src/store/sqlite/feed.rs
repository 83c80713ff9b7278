//! The change feed, read from the event log: `processed` (its `seq` is the
//! cursor), the audit rows and the notifications of each event. Written
//! with the outcome, in the same transaction, so an entry exists if and
//! only if its event's outcome is committed, and costs no row of its own.

use rusqlite::params;

use super::{Result, Store};
use crate::domain::event::limits::MAX_EVENT_BYTES;
use crate::domain::feed::{FeedEntry, Notification};
use crate::domain::outcome::Outcome;

impl Store {
    /// Writes an applied event's notifications.
    pub(super) fn insert_notifications(&self, processed: i64, sent: &[Notification]) -> Result<()> {
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO notifications (processed, webhook, payload, rule, event)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for n in sent {
            insert.execute(params![
                processed,
                n.webhook,
                n.payload.to_string(),
                n.rule,
                n.event
            ])?;
        }
        Ok(())
    }

    /// Up to `limit` feed entries after cursor `after`, in order.
    pub fn feed(&self, after: i64, limit: usize) -> Result<Vec<FeedEntry>> {
        let mut entries: Vec<(FeedEntry, String)> = self
            .conn
            .prepare_cached(
                "SELECT seq, event_id, type, outcome, reason, ruleset, processed_at, body
                 FROM processed WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?
            .query_map(params![after, limit as i64], |r| {
                let outcome: String = r.get(3)?;
                let entry = FeedEntry {
                    cursor: r.get(0)?,
                    event: r.get(1)?,
                    event_type: r.get(2)?,
                    outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failed),
                    reason: r.get(4)?,
                    at: None,
                    ruleset: r.get(5)?,
                    changes: Vec::new(),
                    notifications: Vec::new(),
                };
                let body: String = r.get(7)?;
                Ok((
                    entry,
                    r.get::<_, String>(6)
                        .map(|at| event_at(&body).unwrap_or(at))?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(Vec::new());
        };
        let (first, last) = (first.0.cursor, last.0.cursor);
        let audit = self
            .conn
            .prepare_cached(
                "SELECT processed, cause, rule, chain, entity, entity_id, fields FROM audit
                 WHERE processed BETWEEN ?1 AND ?2 ORDER BY id",
            )?
            .query_map([first, last], super::audit::audit_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let notifications = self
            .conn
            .prepare_cached(
                "SELECT processed, webhook, payload, rule, event FROM notifications
                 WHERE processed BETWEEN ?1 AND ?2 ORDER BY id",
            )?
            .query_map([first, last], |r| {
                let payload: String = r.get(2)?;
                Ok((
                    r.get::<_, i64>(0)?,
                    Notification {
                        webhook: r.get(1)?,
                        payload: serde_json::from_str(&payload).unwrap_or_default(),
                        rule: r.get(3)?,
                        event: r.get(4)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let entries = entries
            .drain(..)
            .map(|(entry, at)| FeedEntry {
                at: Some(at),
                ..entry
            })
            .collect();
        Ok(crate::store::by_event::attach(
            entries,
            audit,
            notifications,
        ))
    }

    /// How many messages for `webhook` come after the entry `after`: the
    /// lag `status` shows.
    pub fn messages_due(&self, after: i64, webhook: &str, changes: bool) -> Result<u64> {
        let notifications: u64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM notifications WHERE processed > ?1 AND webhook = ?2",
            )?
            .query_row(params![after, webhook], |r| r.get(0))?;
        if !changes {
            return Ok(notifications);
        }
        let entries: u64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM processed p WHERE p.seq > ?1 AND p.outcome = 'applied'
                 AND EXISTS (SELECT 1 FROM audit a WHERE a.processed = p.seq)",
            )?
            .query_row([after], |r| r.get(0))?;
        Ok(notifications + entries)
    }

    /// This store's identity (random, made with the store).
    pub fn identity(&self) -> Result<String> {
        Ok(self
            .conn
            .prepare_cached("SELECT identity FROM store_identity WHERE id = 1")?
            .query_row([], |r| r.get(0))?)
    }

    /// The cursor of the last entry (0: none yet).
    pub fn last_cursor(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT coalesce(max(seq), 0) FROM processed")?
            .query_row([], |r| r.get(0))?)
    }
}

/// The `at` of an event's JSON, if it says one.
pub(crate) fn event_at(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct At {
        at: Option<String>,
    }
    if body.len() > MAX_EVENT_BYTES {
        return None;
    }
    serde_json::from_str::<At>(body).ok()?.at
}
