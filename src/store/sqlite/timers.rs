//! Pending timers.

use rusqlite::{params, Row};

use super::{Result, Store};
use crate::domain::timer::{Timer, TimerKey, TimerRecord};

const COLUMNS: &str = "record, id, name, due FROM timers";

fn timer_from(row: &Row) -> rusqlite::Result<Timer> {
    let record: String = row.get(0)?;
    Ok(Timer {
        record: TimerRecord::parse(&record).ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(0, record, rusqlite::types::Type::Text)
        })?,
        id: row.get(1)?,
        name: row.get(2)?,
        due: row.get(3)?,
    })
}

impl Store {
    pub(super) fn read_timer(&self, key: &TimerKey) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .prepare_cached("SELECT due FROM timers WHERE record = ?1 AND id = ?2 AND name = ?3")?
            .query_row(params![key.record.as_str(), key.id, key.name], |r| r.get(0))
            .optional()?)
    }

    pub(super) fn read_timers_of(&self, record: TimerRecord, id: &str) -> Result<Vec<Timer>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} WHERE record = ?1 AND id = ?2 ORDER BY name"
            ))?
            .query_map(params![record.as_str(), id], timer_from)?
            .collect::<rusqlite::Result<_>>()?)
    }

    pub(super) fn read_due_timers(&self, until: &str, limit: usize) -> Result<Vec<Timer>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} WHERE due <= ?1 ORDER BY due, record, id, name LIMIT ?2"
            ))?
            .query_map(params![until, limit as i64], timer_from)?
            .collect::<rusqlite::Result<_>>()?)
    }

    pub(super) fn read_all_timers(&self) -> Result<Vec<Timer>> {
        Ok(self
            .conn
            .prepare(&format!("SELECT {COLUMNS} ORDER BY due, record, id, name"))?
            .query_map([], timer_from)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// A query without parameters: with a bound time, SQLite (built with
    /// STAT4) would plan the statement again at every call.
    pub(super) fn read_next_timer_due(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT min(due) FROM timers")?
            .query_row([], |r| r.get(0))?)
    }

    pub(super) fn put_timer(&self, t: &Timer) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO timers (record, id, name, due) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (record, id, name) DO UPDATE SET due = ?4",
            )?
            .execute(params![t.record.as_str(), t.id, t.name, t.due])?;
        Ok(())
    }

    pub(super) fn delete_timer(&self, key: &TimerKey) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM timers WHERE record = ?1 AND id = ?2 AND name = ?3")?
            .execute(params![key.record.as_str(), key.id, key.name])?;
        Ok(())
    }
}
