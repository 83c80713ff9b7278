//! The PostgreSQL store: the same tables as SQLite's (queue included, in
//! the same database), for installations that outgrow one machine. Several
//! daemons may share one database: the one holding the lease (a session
//! advisory lock, `lease.rs`) consumes; its writes go through the very
//! connection that holds the lease, so a daemon that lost it cannot commit
//! (no split brain).
//!
//! All SQL for PostgreSQL lives under this module.

mod connect;
mod error;
mod history;
mod lease;
mod listen;
mod log;
mod queue;
mod reads;
mod schema;
mod state;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, Row, Statement};

use crate::store::{Persist, Recorded, RecordedConfig, Result, StateWrites, Transactions};
pub use connect::Target;
pub use lease::{lease_holder, Lease};
pub use listen::Listener;
pub use queue::PgQueue;

/// A connection to an inboxd database on PostgreSQL.
pub struct PgStore {
    target: Target,
    client: RefCell<Client>,
    /// Prepared once per connection.
    statements: RefCell<HashMap<&'static str, Statement>>,
    /// Rollbacks and reconnections so far: what was learned of the store
    /// before one may be wrong after it.
    rollbacks: Cell<u64>,
    in_transaction: Cell<bool>,
    /// The daemon's connection holds the lease, and must hold it again
    /// before it writes after a reconnection.
    lease: Option<Leased>,
}

/// The lease this connection holds, and when to give up waiting for it.
struct Leased {
    lease: Lease,
    stop: Box<dyn Fn() -> bool + Send>,
}

impl PgStore {
    /// Connects and brings the schema up to date.
    pub fn open(url: &str) -> anyhow::Result<PgStore> {
        let target = Target::parse(url)?;
        let mut client = target.connect()?;
        schema::migrate(&mut client)
            .map_err(anyhow::Error::new)
            .map_err(|e| e.context(format!("cannot prepare the schema at {}", target.shown)))?;
        Ok(PgStore {
            target,
            client: RefCell::new(client),
            statements: RefCell::default(),
            rollbacks: Cell::new(0),
            in_transaction: Cell::new(false),
            lease: None,
        })
    }

    /// Where it is connected (without the password).
    pub fn shown(&self) -> &str {
        &self.target.shown
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Runs a statement, prepared once per connection.
    fn query(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.client.borrow_mut().query(&statement, params)?)
    }

    fn execute(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let statement = self.statement(sql)?;
        Ok(self.client.borrow_mut().execute(&statement, params)?)
    }

    fn query_one(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let statement = self.statement(sql)?;
        Ok(self.client.borrow_mut().query_one(&statement, params)?)
    }

    fn statement(&self, sql: &'static str) -> Result<Statement> {
        // Outside a transaction a broken connection (a server restarted)
        // is replaced; inside one, the transaction is lost and says so.
        if !self.in_transaction.get() {
            self.reconnect_if_closed()?;
        }
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.borrow_mut().prepare(sql)?;
        self.statements.borrow_mut().insert(sql, statement.clone());
        Ok(statement)
    }

    fn batch(&self, sql: &str) -> Result<()> {
        Ok(self.client.borrow_mut().batch_execute(sql)?)
    }

    /// A connection that broke is replaced; the daemon's must take the
    /// lease again first (another daemon may hold it by now).
    fn reconnect_if_closed(&self) -> Result<()> {
        if !self.client.borrow().is_closed() {
            return Ok(());
        }
        let mut client = self.target.connect().map_err(transient)?;
        if let Some(leased) = &self.lease {
            leased.lease.take_again(&mut client, leased.stop.as_ref())?;
        }
        *self.client.borrow_mut() = client;
        self.statements.borrow_mut().clear();
        self.in_transaction.set(false);
        self.rollbacks.set(self.rollbacks.get() + 1);
        tracing::info!("reconnected to PostgreSQL at {}", self.target.shown);
        Ok(())
    }

    /// Runs `read` in one read-only transaction: a consistent snapshot,
    /// rolled back after (a dry-run's writes, if any, go nowhere).
    pub fn read_consistently<T>(&self, read: impl FnOnce(&PgStore) -> Result<T>) -> Result<T> {
        self.reconnect_if_closed()?;
        self.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
        self.in_transaction.set(true);
        let result = read(self);
        self.in_transaction.set(false);
        let end = self.batch("ROLLBACK");
        let value = result?;
        end?;
        Ok(value)
    }
}

fn transient(e: anyhow::Error) -> crate::store::StoreError {
    crate::store::StoreError::backend(crate::store::Trouble::Transient, format!("{e:#}"))
}

impl Transactions for PgStore {
    fn begin(&self) -> Result<()> {
        self.reconnect_if_closed()?;
        self.batch("BEGIN")?;
        self.in_transaction.set(true);
        Ok(())
    }

    fn commit(&self) -> Result<()> {
        self.in_transaction.set(false);
        self.batch("COMMIT")
    }

    fn rollback(&self) -> Result<()> {
        self.in_transaction.set(false);
        self.rollbacks.set(self.rollbacks.get() + 1);
        self.batch("ROLLBACK")
    }

    fn in_transaction(&self) -> bool {
        self.in_transaction.get() && !self.client.borrow().is_closed()
    }

    fn generation(&self) -> u64 {
        self.rollbacks.get()
    }
}

impl Persist for PgStore {
    /// Always under a savepoint: PostgreSQL refuses every statement of a
    /// transaction after one failed, until it is rolled back to one.
    fn write_state(&self, writes: &StateWrites) -> Result<Result<()>> {
        if writes.rows() == 0 {
            return Ok(Ok(()));
        }
        self.batch("SAVEPOINT event")?;
        match self.write_rows(writes) {
            Ok(()) => {
                self.batch("RELEASE SAVEPOINT event")?;
                Ok(Ok(()))
            }
            Err(e) => {
                self.batch("ROLLBACK TO SAVEPOINT event; RELEASE SAVEPOINT event")?;
                Ok(Err(e))
            }
        }
    }

    fn record(&self, recorded: Recorded) -> Result<()> {
        self.insert_outcome(&recorded)
    }

    fn remember_ruleset(&self, version: &str, config: &RecordedConfig) -> Result<()> {
        let settings = serde_json::to_string(&config.settings).unwrap_or_else(|_| "{}".into());
        let stages = serde_json::to_string(&config.stages).unwrap_or_else(|_| "[]".into());
        self.execute(
            "INSERT INTO rulesets (version, settings, stages) VALUES ($1, $2, $3)
             ON CONFLICT (version) DO NOTHING",
            &[&version, &settings, &stages],
        )
        .map(drop)
    }
}
