//! How far each webhook's deliveries have gone, in a database file of its
//! own beside the store (`<db>.webhooks`): the delivery threads write it
//! after every message, and must not wait for the engine's long
//! transactions on the store (nor the engine for them).

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};

use super::Result;
use crate::domain::config::Synchronous;

const SCHEMA: &[&str] = &[r#"
CREATE TABLE deliveries (
    webhook      TEXT PRIMARY KEY,
    -- The last message delivered (or given up): its feed entry and its
    -- place among that entry's messages for this webhook.
    cursor       INTEGER NOT NULL DEFAULT 0,
    part         INTEGER NOT NULL DEFAULT -1,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    next_attempt TEXT,
    delivered_at TEXT,
    given_up     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"#];

/// One webhook's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    pub cursor: i64,
    pub part: i64,
    /// Failed attempts at the next message.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt: Option<String>,
    pub delivered_at: Option<String>,
    /// Messages given up after `max_attempts`.
    pub given_up: u64,
}

pub struct Deliveries {
    conn: Connection,
}

/// The progress file of a database: `<db>.webhooks`.
pub fn deliveries_path(store_path: &Path) -> PathBuf {
    super::beside(store_path, ".webhooks")
}

impl Deliveries {
    pub fn open(store_path: &Path, synchronous: Synchronous) -> anyhow::Result<Deliveries> {
        let path = deliveries_path(store_path);
        let open = || -> rusqlite::Result<Connection> {
            let mut conn = Connection::open(&path)?;
            conn.busy_handler(Some(super::wait_while_busy))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", synchronous.pragma())?;
            super::schema::migrate_with(&mut conn, SCHEMA)?;
            Ok(conn)
        };
        let conn = open()
            .map_err(super::StoreError::from)
            .with_context(|| format!("cannot open the webhooks' progress {}", path.display()))?;
        Ok(Deliveries { conn })
    }

    /// The file's progress if it exists, for readers that create nothing.
    pub fn read(store_path: &Path, webhook: &str) -> anyhow::Result<Delivery> {
        if !deliveries_path(store_path).exists() {
            return Ok(Delivery::new());
        }
        let deliveries = Deliveries::open(store_path, Synchronous::Normal)?;
        Ok(deliveries.load(webhook)?)
    }

    pub fn load(&self, webhook: &str) -> Result<Delivery> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT cursor, part, attempts, last_error, next_attempt, delivered_at, given_up
                 FROM deliveries WHERE webhook = ?1",
            )?
            .query_row([webhook], |r| {
                Ok(Delivery {
                    cursor: r.get(0)?,
                    part: r.get(1)?,
                    attempts: r.get(2)?,
                    last_error: r.get(3)?,
                    next_attempt: r.get(4)?,
                    delivered_at: r.get(5)?,
                    given_up: r.get(6)?,
                })
            })
            .optional()?
            .unwrap_or_else(Delivery::new))
    }

    pub fn save(&self, webhook: &str, d: &Delivery) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO deliveries
                     (webhook, cursor, part, attempts, last_error, next_attempt, delivered_at, given_up)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (webhook) DO UPDATE SET cursor = ?2, part = ?3, attempts = ?4,
                     last_error = ?5, next_attempt = ?6, delivered_at = ?7, given_up = ?8",
            )?
            .execute(params![
                webhook,
                d.cursor,
                d.part,
                d.attempts,
                d.last_error,
                d.next_attempt,
                d.delivered_at,
                d.given_up
            ])?;
        Ok(())
    }
}

impl Delivery {
    /// Nothing delivered yet: before the first part of the first entry.
    pub fn new() -> Delivery {
        Delivery {
            part: -1,
            ..Delivery::default()
        }
    }
}
