//! The daemon's status and the webhooks' progress.

use super::PgStore;
use crate::store::{DaemonStatus, DaemonStore, Delivery, QueuePosition, Result};

impl DaemonStore for PgStore {
    fn queue_position(&self) -> Result<Option<QueuePosition>> {
        PgStore::queue_position(self)
    }

    fn set_queue_position(&self, position: &QueuePosition) -> Result<()> {
        self.record_position(position)
    }

    fn daemon_started(&self, pid: u32, at: &str, ruleset: &str) -> Result<()> {
        let host = self
            .lease
            .as_ref()
            .map_or_else(String::new, |l| l.lease.holder.clone());
        self.execute(
            "INSERT INTO daemon_status (id, pid, host, started_at, ruleset) VALUES (1, $1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET pid = $1, host = $2, started_at = $3, ruleset = $4,
                 reloaded_at = NULL, reload_error = NULL",
            &[&i64::from(pid), &host, &at, &ruleset],
        )
        .map(drop)
    }

    fn daemon_reloaded(&self, at: &str, ruleset: &str) -> Result<()> {
        self.execute(
            "UPDATE daemon_status SET ruleset = $1, reloaded_at = $2, reload_error = NULL WHERE id = 1",
            &[&ruleset, &at],
        )
        .map(drop)
    }

    fn daemon_reload_refused(&self, error: Option<&str>) -> Result<()> {
        self.execute(
            "UPDATE daemon_status SET reload_error = $1 WHERE id = 1",
            &[&error],
        )
        .map(drop)
    }

    fn between_batches(&self) {}
}

impl PgStore {
    pub fn daemon_status(&self) -> Result<Option<DaemonStatus>> {
        Ok(self
            .query(
                "SELECT pid, started_at, ruleset, reloaded_at, reload_error FROM daemon_status WHERE id = 1",
                &[],
            )?
            .first()
            .map(|r| DaemonStatus {
                pid: r.get::<_, i64>(0) as u32,
                started_at: r.get(1),
                ruleset: r.get(2),
                reloaded_at: r.get(3),
                reload_error: r.get(4),
            }))
    }

    /// One webhook's progress (a new one's if it has none yet).
    pub fn delivery(&self, webhook: &str) -> Result<Delivery> {
        Ok(self
            .query(
                "SELECT cursor, part, attempts, last_error, next_attempt, delivered_at, given_up
                 FROM deliveries WHERE webhook = $1",
                &[&webhook],
            )?
            .first()
            .map_or_else(Delivery::new, |r| Delivery {
                cursor: r.get(0),
                part: r.get(1),
                attempts: r.get::<_, i64>(2) as u32,
                last_error: r.get(3),
                next_attempt: r.get(4),
                delivered_at: r.get(5),
                given_up: r.get::<_, i64>(6) as u64,
            }))
    }

    pub fn save_delivery(&self, webhook: &str, d: &Delivery) -> Result<()> {
        self.execute(
            "INSERT INTO deliveries
                 (webhook, cursor, part, attempts, last_error, next_attempt, delivered_at, given_up)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (webhook) DO UPDATE SET cursor = $2, part = $3, attempts = $4,
                 last_error = $5, next_attempt = $6, delivered_at = $7, given_up = $8",
            &[
                &webhook,
                &d.cursor,
                &d.part,
                &i64::from(d.attempts),
                &d.last_error,
                &d.next_attempt,
                &d.delivered_at,
                &(d.given_up as i64),
            ],
        )
        .map(drop)
    }
}
