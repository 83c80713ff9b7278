//! PostgreSQL's errors, sorted for the daemon: a lost connection or a
//! server shutting down is transient (it reconnects); a read-only server
//! (a standby) refuses writes; the rest is for a human.

use crate::store::{StoreError, Trouble};

pub fn from_pg(e: postgres::Error) -> StoreError {
    let trouble = match e.code() {
        // No SQLSTATE: the connection or its I/O failed.
        None => Trouble::Transient,
        Some(code) => {
            let class = &code.code()[..2];
            match class {
                // connection exceptions, insufficient resources, operator
                // intervention (shutdown), serialization failures/deadlocks
                "08" | "53" | "57" | "40" => Trouble::Transient,
                _ if code == &postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION => {
                    Trouble::ReadOnly
                }
                _ => Trouble::Other,
            }
        }
    };
    StoreError::backend(trouble, describe(&e))
}

/// The server's own words (`FATAL: the database system is shutting
/// down`), or the client's error with its causes.
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let detail = db.detail().map(|d| format!(" ({d})")).unwrap_or_default();
        return format!("{}: {}{detail}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> StoreError {
        from_pg(e)
    }
}
