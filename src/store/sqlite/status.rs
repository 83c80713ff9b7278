//! What the daemon reports about itself, and the counts `status` shows.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{Result, Store};

/// The daemon's last report.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonStatus {
    pub pid: u32,
    pub started_at: String,
    pub ruleset: String,
    pub reloaded_at: Option<String>,
    pub reload_error: Option<String>,
}

impl Store {
    /// Records a daemon's start with its first RuleSet.
    pub fn daemon_started(&self, pid: u32, at: &str, ruleset: &str) -> Result<()> {
        Ok(self.conn
            .execute(
                "INSERT OR REPLACE INTO daemon_status (id, pid, started_at, ruleset) VALUES (1, ?1, ?2, ?3)",
                params![pid, at, ruleset],
            )
            .map(drop)?)
    }

    /// Records new rules loaded at `at` (they are live from then on).
    pub fn daemon_reloaded(&self, at: &str, ruleset: &str) -> Result<()> {
        Ok(self.conn
            .execute(
                "UPDATE daemon_status SET ruleset = ?1, reloaded_at = ?2, reload_error = NULL WHERE id = 1",
                params![ruleset, at],
            )
            .map(drop)?)
    }

    /// Records the outcome of a reload that changed nothing live: the
    /// error if the new rules were refused, none if they were the same.
    /// The live rules, and when they were loaded, stay as they were.
    pub fn daemon_reload_refused(&self, error: Option<&str>) -> Result<()> {
        Ok(self
            .conn
            .execute(
                "UPDATE daemon_status SET reload_error = ?1 WHERE id = 1",
                params![error],
            )
            .map(drop)?)
    }

    pub fn daemon_status(&self) -> Result<Option<DaemonStatus>> {
        Ok(self.conn
            .query_row(
                "SELECT pid, started_at, ruleset, reloaded_at, reload_error FROM daemon_status WHERE id = 1",
                [],
                |r| {
                    Ok(DaemonStatus {
                        pid: r.get(0)?,
                        started_at: r.get(1)?,
                        ruleset: r.get(2)?,
                        reloaded_at: r.get(3)?,
                        reload_error: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// Processed events by outcome. A failed event processed again since
    /// (`retry`) counts only by its later outcome.
    pub fn outcome_counts(&self) -> Result<BTreeMap<String, u64>> {
        self.conn
            .prepare(
                "SELECT outcome, count(*) FROM processed p
                 WHERE p.outcome != 'failed'
                    OR NOT EXISTS (SELECT 1 FROM processed q WHERE q.event_id = p.event_id AND q.seq > p.seq)
                 GROUP BY outcome",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()
            .map_err(Into::into)
    }
}
