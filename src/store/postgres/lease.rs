//! The lease: which of the daemons on one database consumes. It is a
//! session advisory lock, held by the connection that writes the daemon's
//! batches: PostgreSQL releases it when that session ends (the daemon died,
//! or its connection is gone), and a daemon whose session ended can commit
//! nothing more on it. A standby tries to take it a few times a second.

use std::time::Duration;

use postgres::Client;

use super::schema::LEASE_KEY;
use super::PgStore;
use crate::store::{Result, StoreError, Trouble};

/// How often a standby tries to take the lease.
pub const TRY_EVERY: Duration = Duration::from_millis(250);
/// How long a holder that lost its connection leaves the lease to the
/// standbys before it tries to take it again: a daemon whose connection
/// failed is the one to replace.
const GRACE: Duration = Duration::from_secs(1);

/// The daemon's claim: who it says it is, for `status`.
#[derive(Clone)]
pub struct Lease {
    /// `host:pid`, as `status` shows the holder.
    pub holder: String,
}

impl Lease {
    pub fn new() -> Lease {
        Lease {
            holder: format!("{}:{}", hostname(), std::process::id()),
        }
    }

    /// Tries to take the lease on `client`'s session.
    pub fn try_take(&self, client: &mut Client) -> Result<bool> {
        // The holder's name is in the session, where `status` reads it; the
        // server checks that a silent client is still there every second.
        client.execute(
            "SELECT set_config('application_name', $1, false)",
            &[&format!("inboxd {}", self.holder)],
        )?;
        // PostgreSQL 14 and later; older servers notice at their TCP
        // keepalives instead.
        let _ = client.batch_execute("SET client_connection_check_interval = '1s'");
        Ok(client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEASE_KEY])?
            .get(0))
    }

    /// After a reconnection: waits until this daemon holds the lease
    /// again (another daemon has likely taken it: this one stands by), or
    /// `stop()`, a transient error.
    pub(super) fn take_again(&self, client: &mut Client, stop: &dyn Fn() -> bool) -> Result<()> {
        std::thread::sleep(GRACE);
        let mut said = false;
        loop {
            if self.try_take(client)? {
                tracing::info!("holding the lease again: this daemon consumes");
                return Ok(());
            }
            if !said {
                let holder = lease_holder(client)?.unwrap_or_else(|| "another daemon".into());
                tracing::warn!("lost the lease with the connection; standing by: the lease is held by {holder}");
                said = true;
            }
            if stop() {
                return Err(StoreError::backend(
                    Trouble::Transient,
                    "stopping while standing by",
                ));
            }
            std::thread::sleep(TRY_EVERY);
        }
    }
}

impl Default for Lease {
    fn default() -> Self {
        Lease::new()
    }
}

/// Who holds the lease, if anyone (`host:pid`).
pub fn lease_holder(client: &mut Client) -> Result<Option<String>> {
    let rows = client.query(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND l.classid::BIGINT = $1 AND l.objid::BIGINT = $2",
        &[&(LEASE_KEY >> 32), &(LEASE_KEY & 0xffff_ffff)],
    )?;
    Ok(rows.first().map(|r| {
        let name: String = r.get(0);
        name.strip_prefix("inboxd ").unwrap_or(&name).to_string()
    }))
}

impl PgStore {
    /// Waits until this connection holds the lease (a standby waits here),
    /// or `stop()` says to give up (`false`).
    pub fn take_lease(
        &mut self,
        lease: Lease,
        stop: impl Fn() -> bool + Send + 'static,
    ) -> Result<bool> {
        let mut said = false;
        loop {
            if lease.try_take(&mut self.client.borrow_mut())? {
                if said {
                    tracing::info!("took the lease: this daemon consumes now");
                }
                self.lease = Some(super::Leased {
                    lease,
                    stop: Box::new(stop),
                });
                return Ok(true);
            }
            if !said {
                let holder = lease_holder(&mut self.client.borrow_mut())?
                    .unwrap_or_else(|| "another daemon".into());
                tracing::info!("standing by: the lease is held by {holder}");
                said = true;
            }
            if stop() {
                return Ok(false);
            }
            std::thread::sleep(TRY_EVERY);
        }
    }

    /// Who holds the lease now.
    pub fn holder(&self) -> Result<Option<String>> {
        lease_holder(&mut self.client.borrow_mut())
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if ok && !name.is_empty() => name.to_string(),
        _ => "localhost".into(),
    }
}
