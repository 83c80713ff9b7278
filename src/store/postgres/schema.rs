//! The schema, created and migrated at start in one transaction, under an
//! advisory lock so that daemons starting together do not race. Text that
//! is sorted (ids, contacts, due times) uses the "C" collation: the same
//! byte order as SQLite, whatever the database's locale.

use postgres::Client;

use crate::store::Result;

/// Advisory lock keys (one 64-bit space per database).
pub const MIGRATION_KEY: i64 = 0x696e_626f_7864_0001;
pub const LEASE_KEY: i64 = 0x696e_626f_7864_0002;
pub const QUEUE_KEY: i64 = 0x696e_626f_7864_0003;

/// The channel producers notify after adding to the queue.
pub const QUEUE_CHANNEL: &str = "inboxd_queue";

/// One entry per version; never edit one that shipped, add the next.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE conversations (
    id      TEXT COLLATE "C" PRIMARY KEY,
    status  TEXT NOT NULL CHECK (status IN ('open', 'closed', 'trashed')),
    owner   TEXT,
    inbox   TEXT,
    channel TEXT,
    contact TEXT,
    subject TEXT,
    spam    BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE tickets (
    id         TEXT COLLATE "C" PRIMARY KEY,
    status     TEXT NOT NULL,
    owner      TEXT,
    subject    TEXT,
    properties TEXT NOT NULL DEFAULT '{}',
    deleted    BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE associations (
    n            BIGSERIAL PRIMARY KEY,
    conversation TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES conversations(id),
    ticket       TEXT COLLATE "C" NOT NULL REFERENCES tickets(id)
);
CREATE INDEX associations_by_ticket ON associations(ticket, n);
-- P3: an association is permanent, whatever asks.
CREATE FUNCTION inboxd_association_is_permanent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'P3: a conversation cannot be dissociated from its ticket'; END $$;
CREATE TRIGGER associations_are_permanent BEFORE UPDATE OR DELETE ON associations
FOR EACH ROW EXECUTE FUNCTION inboxd_association_is_permanent();
CREATE TABLE blocked_contacts (contact TEXT COLLATE "C" PRIMARY KEY);
CREATE TABLE queue (
    seq         BIGSERIAL PRIMARY KEY,
    event_id    TEXT NOT NULL,
    body        TEXT NOT NULL,
    enqueued_at TEXT NOT NULL
);
CREATE TABLE processed (
    seq          BIGSERIAL PRIMARY KEY,
    queue_seq    BIGINT,
    event_id     TEXT COLLATE "C" NOT NULL,
    type         TEXT NOT NULL,
    body         TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('applied', 'rejected', 'failed', 'duplicate')),
    reason       TEXT,
    ruleset      TEXT NOT NULL,
    processed_at TEXT NOT NULL
);
CREATE INDEX processed_by_event ON processed(event_id, outcome);
CREATE TABLE audit (
    id        BIGSERIAL PRIMARY KEY,
    processed BIGINT NOT NULL REFERENCES processed(seq),
    cause     TEXT NOT NULL,
    rule      TEXT,
    chain     TEXT NOT NULL,
    entity    TEXT NOT NULL,
    entity_id TEXT COLLATE "C" NOT NULL,
    fields    TEXT NOT NULL
);
CREATE INDEX audit_by_entity ON audit(entity, entity_id);
CREATE INDEX audit_by_processed ON audit(processed);
CREATE TABLE notifications (
    id        BIGSERIAL PRIMARY KEY,
    processed BIGINT NOT NULL REFERENCES processed(seq),
    webhook   TEXT NOT NULL,
    payload   TEXT NOT NULL,
    rule      TEXT,
    event     TEXT NOT NULL
);
CREATE INDEX notifications_by_processed ON notifications(processed);
CREATE TABLE timers (
    record TEXT COLLATE "C" NOT NULL CHECK (record IN ('conversation', 'ticket')),
    id     TEXT COLLATE "C" NOT NULL,
    name   TEXT COLLATE "C" NOT NULL,
    due    TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (record, id, name)
);
CREATE INDEX timers_by_due ON timers(due, record, id, name);
CREATE TABLE rulesets (
    version  TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    stages   TEXT NOT NULL
);
CREATE TABLE daemon_status (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    pid          BIGINT NOT NULL,
    host         TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    ruleset      TEXT NOT NULL,
    reloaded_at  TEXT,
    reload_error TEXT
);
CREATE TABLE queue_position (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    queue TEXT NOT NULL,
    seq   BIGINT NOT NULL
);
CREATE TABLE store_identity (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    identity TEXT NOT NULL
);
CREATE TABLE deliveries (
    webhook      TEXT PRIMARY KEY,
    cursor       BIGINT NOT NULL DEFAULT 0,
    part         BIGINT NOT NULL DEFAULT -1,
    attempts     BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT,
    next_attempt TEXT,
    delivered_at TEXT,
    given_up     BIGINT NOT NULL DEFAULT 0
);
"#];

/// The schema's version, if the database has inboxd's tables.
fn version_of(client: &mut Client) -> Result<Option<i64>> {
    let exists: bool = client
        .query_one("SELECT to_regclass('inboxd_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(None);
    }
    Ok(Some(
        client
            .query_one(
                "SELECT coalesce(max(version), 0)::BIGINT FROM inboxd_schema",
                &[],
            )?
            .get(0),
    ))
}

/// Brings the schema up to date (and gives a new store its identity).
pub fn migrate(client: &mut Client) -> Result<()> {
    // Up to date: nothing to lock or create (a user who may only read and
    // write the tables can run every command).
    if version_of(client)? == Some(MIGRATIONS.len() as i64) {
        return Ok(());
    }
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_KEY])?;
    tx.batch_execute("SET LOCAL client_min_messages = warning")?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS inboxd_schema (version INTEGER NOT NULL)")?;
    let version: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0)::BIGINT FROM inboxd_schema",
            &[],
        )?
        .get(0);
    if version as usize > MIGRATIONS.len() {
        return Err(crate::store::StoreError::backend(
            crate::store::Trouble::Other,
            format!(
                "the database's schema is version {version}, newer than this inboxd knows ({}); upgrade inboxd",
                MIGRATIONS.len()
            ),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO inboxd_schema (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )?;
    }
    tx.batch_execute(
        "INSERT INTO store_identity (id, identity)
         VALUES (1, substr(md5(random()::text || clock_timestamp()::text), 1, 16))
         ON CONFLICT (id) DO NOTHING",
    )?;
    tx.commit()?;
    Ok(())
}
