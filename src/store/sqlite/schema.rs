//! The database schema, as migrations keyed on `PRAGMA user_version`.

use rusqlite::Connection;

/// Each entry moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE conversations (
    id      TEXT PRIMARY KEY,
    status  TEXT NOT NULL CHECK (status IN ('open', 'closed', 'trashed')),
    owner   TEXT,
    inbox   TEXT,
    channel TEXT,
    contact TEXT,
    subject TEXT,
    spam    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE tickets (
    id         TEXT PRIMARY KEY,
    status     TEXT NOT NULL,
    owner      TEXT,
    subject    TEXT,
    properties TEXT NOT NULL DEFAULT '{}',
    deleted    INTEGER NOT NULL DEFAULT 0
);

-- P2: the primary key gives a conversation at most one ticket.
-- P3: the triggers make an association permanent, whatever asks.
-- The rowid keeps association order.
CREATE TABLE associations (
    conversation TEXT NOT NULL UNIQUE REFERENCES conversations(id),
    ticket       TEXT NOT NULL REFERENCES tickets(id)
);
CREATE INDEX associations_by_ticket ON associations(ticket);
CREATE TRIGGER associations_no_delete BEFORE DELETE ON associations
BEGIN SELECT RAISE(ABORT, 'P3: a conversation cannot be dissociated from its ticket'); END;
CREATE TRIGGER associations_no_update BEFORE UPDATE ON associations
BEGIN SELECT RAISE(ABORT, 'P3: a conversation cannot be dissociated from its ticket'); END;

CREATE TABLE blocked_contacts (
    contact TEXT PRIMARY KEY
) WITHOUT ROWID;

-- The durable queue: events wait here, in order, until processed.
CREATE TABLE queue (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL,
    body        TEXT NOT NULL,
    enqueued_at TEXT NOT NULL
);

-- Every processed event, with its outcome.
CREATE TABLE processed (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_seq    INTEGER,
    event_id     TEXT NOT NULL,
    type         TEXT NOT NULL,
    body         TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('applied', 'rejected', 'failed', 'duplicate')),
    reason       TEXT,
    ruleset      TEXT NOT NULL,
    processed_at TEXT NOT NULL
);
CREATE INDEX processed_by_event ON processed(event_id, outcome);

-- Every change: one row per record changed by one (original or derived)
-- event, with the rule and chain of events behind it; `fields` is a JSON
-- list of [field, before, after].
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    processed INTEGER NOT NULL REFERENCES processed(seq),
    cause     TEXT NOT NULL,
    rule      TEXT,
    chain     TEXT NOT NULL,
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    fields    TEXT NOT NULL
);
CREATE INDEX audit_by_entity ON audit(entity, entity_id);
"#,
    r#"
-- What the running daemon reports about itself, for `inboxd status`.
CREATE TABLE daemon_status (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    pid          INTEGER NOT NULL,
    started_at   TEXT NOT NULL,
    ruleset      TEXT NOT NULL,
    reloaded_at  TEXT,
    reload_error TEXT
);
"#,
    r#"
-- How far the daemon has processed the queue (a file of its own since
-- this version): which queue, and its last processed entry. The `queue`
-- table above is kept only for moving what an older version left in it.
CREATE TABLE queue_position (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    queue TEXT NOT NULL,
    seq   INTEGER NOT NULL
);
"#,
    r#"
-- The config each ruleset version ran under (JSON of its [settings] and
-- ticket stages), recorded with the first event it processed: `replay`
-- runs each event again under the config it met.
CREATE TABLE rulesets (
    version  TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    stages   TEXT NOT NULL
) WITHOUT ROWID;
"#,
    r#"
-- The change feed is the `processed` table (its seq is the cursor) with
-- each event's audit rows and notifications: reading a page of it finds
-- the audit rows of a range of events.
CREATE INDEX audit_by_processed ON audit(processed);
-- What rules sent with notify(webhook, payload), with their applied event.
CREATE TABLE notifications (
    id        INTEGER PRIMARY KEY,
    processed INTEGER NOT NULL REFERENCES processed(seq),
    webhook   TEXT NOT NULL,
    payload   TEXT NOT NULL,
    rule      TEXT,
    event     TEXT NOT NULL
);
CREATE INDEX notifications_by_processed ON notifications(processed);
"#,
    r#"
-- Pending timers; `due` is "YYYY-MM-DDTHH:MM:SSZ", so text order is time
-- order, and the index is the timeline's firing order.
CREATE TABLE timers (
    record TEXT NOT NULL CHECK (record IN ('conversation', 'ticket')),
    id     TEXT NOT NULL,
    name   TEXT NOT NULL,
    due    TEXT NOT NULL,
    PRIMARY KEY (record, id, name)
) WITHOUT ROWID;
CREATE INDEX timers_by_due ON timers(due, record, id, name);
"#,
    r#"
-- Which store this is: a store made anew numbers its change feed from 1
-- again, and webhook message ids must not repeat an older store's.
CREATE TABLE store_identity (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    identity TEXT NOT NULL
);
INSERT INTO store_identity (id, identity) VALUES (1, lower(hex(randomblob(8))));
"#,
    r#"
-- The same CHECK constraints, spelled as comparisons: SQLite builds a
-- temporary table for a list of three values or more, at every row written
-- (a quarter of the drain's instructions). Equivalent constraints, so the rows
-- stay valid and the text is changed in place, as SQLite documents for
-- CHECK constraints (lang_altertable.html); RESET reloads the schema.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql,
    'CHECK (outcome IN (''applied'', ''rejected'', ''failed'', ''duplicate''))',
    'CHECK (outcome = ''applied'' OR outcome = ''rejected'' OR outcome = ''failed'' OR outcome = ''duplicate'')')
WHERE type = 'table' AND name = 'processed';
UPDATE sqlite_schema
SET sql = replace(sql,
    'CHECK (status IN (''open'', ''closed'', ''trashed''))',
    'CHECK (status = ''open'' OR status = ''closed'' OR status = ''trashed'')')
WHERE type = 'table' AND name = 'conversations';
PRAGMA writable_schema = RESET;
"#,
];

/// Brings the schema up to date, in one transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    migrate_with(conn, MIGRATIONS)
}

/// Runs the `migrations` a database has not had yet, in one transaction;
/// entry `i` moves its schema from version `i` to `i + 1`.
pub fn migrate_with(conn: &mut Connection, migrations: &[&str]) -> rusqlite::Result<()> {
    // Up to date: no write transaction, so that opening the store never
    // waits for the daemon's write lock.
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == migrations.len() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > migrations.len() {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "the database has schema version {version}, newer than this inboxd knows ({})",
                migrations.len()
            )),
        ));
    }
    for (i, sql) in migrations.iter().enumerate().skip(version) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
    }
    // A schema edited in place does not change SQLite's schema cookie by
    // itself: bumped so that other open connections read it again.
    let cookie: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    tx.pragma_update(None, "schema_version", cookie + 1)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROCESSED: &str =
        "INSERT INTO processed (event_id, type, body, outcome, ruleset, processed_at)
         VALUES ('e1', 'conversation.created', '{}', ?1, 'r', 't')";
    const CONVERSATION: &str = "INSERT INTO conversations (id, status) VALUES ('c1', ?1)
         ON CONFLICT (id) DO UPDATE SET status = ?1";

    fn migrated(migrations: &[&str]) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_with(&mut conn, migrations).unwrap();
        conn
    }

    /// The opcodes SQLite runs for `sql`.
    fn opcodes(conn: &Connection, sql: &str) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN {sql}"))
            .unwrap()
            .query_map([rusqlite::types::Null], |r| r.get(1))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn the_hot_row_writes_build_no_temporary_table() {
        let conn = migrated(MIGRATIONS);
        for sql in [PROCESSED, CONVERSATION] {
            let ops = opcodes(&conn, sql);
            assert!(
                !ops.iter().any(|op| op == "OpenEphemeral"),
                "{sql}: {ops:?}"
            );
        }
        // What the test would see with the earlier spelling of the checks.
        let before = migrated(&MIGRATIONS[..MIGRATIONS.len() - 1]);
        assert!(opcodes(&before, PROCESSED)
            .iter()
            .any(|op| op == "OpenEphemeral"));
    }

    #[test]
    fn the_checks_still_refuse_what_they_refused() {
        let conn = migrated(MIGRATIONS);
        for outcome in ["applied", "rejected", "failed", "duplicate"] {
            conn.execute(PROCESSED, [outcome]).unwrap();
        }
        assert!(conn.execute(PROCESSED, ["done"]).is_err());
        for status in ["open", "closed", "trashed"] {
            conn.execute(CONVERSATION, [status]).unwrap();
        }
        assert!(conn.execute(CONVERSATION, ["snoozed"]).is_err());
    }

    #[test]
    fn a_store_of_the_previous_version_keeps_its_rows_and_passes_its_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut old = Connection::open(&path).unwrap();
        migrate_with(&mut old, &MIGRATIONS[..MIGRATIONS.len() - 1]).unwrap();
        old.execute(PROCESSED, ["applied"]).unwrap();
        old.execute(CONVERSATION, ["open"]).unwrap();
        // Another connection open across the upgrade reads the new schema.
        let other = Connection::open(&path).unwrap();
        assert!(opcodes(&other, PROCESSED)
            .iter()
            .any(|op| op == "OpenEphemeral"));
        migrate_with(&mut old, MIGRATIONS).unwrap();
        drop(old);

        let check: String = other
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let rows: i64 = other
            .query_row(
                "SELECT (SELECT count(*) FROM processed) + (SELECT count(*) FROM conversations)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, 2);
        // Having read, the other connection knows the new schema.
        assert!(!opcodes(&other, PROCESSED)
            .iter()
            .any(|op| op == "OpenEphemeral"));
        assert!(other.execute(PROCESSED, ["done"]).is_err());
    }
}
