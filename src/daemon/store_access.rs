//! The daemon's store, by backend: SQLite under the one-daemon file lock;
//! PostgreSQL under the lease, with a thread listening for new events.
//! Either way the run loop gets a store and a queue by role.

use std::any::Any;
use std::rc::Rc;
use std::sync::Arc;

use anyhow::Context;

use crate::daemon::control::Control;
use crate::daemon::health::Health;
use crate::daemon::lock::DaemonLock;
use crate::daemon::patience::patiently;
use crate::domain::config::{Config, StoreUrl};
use crate::store::postgres::{Lease, Listener, PgQueue, PgStore};
use crate::store::{DaemonStore, EventQueue, QueuePosition};

/// The daemon's store and queue, and what must live as long as they do
/// (the lock file, the listening thread).
pub struct Connected {
    pub store: Rc<dyn DaemonStore>,
    pub queue: Box<dyn EventQueue>,
    pub position: Option<QueuePosition>,
    pub keep: Box<dyn Any>,
}

/// Opens the store at once: an error if it cannot (`run --drain`), or if
/// another daemon consumes it.
pub fn open_now(config: &Config) -> anyhow::Result<Connected> {
    match &config.store_url {
        None => {
            crate::store::create_directory_of(&config.store_path)?;
            let lock = DaemonLock::acquire(&config.store_path)?;
            Ok(sqlite(config)?.keeping(lock))
        }
        Some(url) => {
            let mut store = PgStore::open(url.secret())?;
            let lease = Lease::new();
            if !store.take_lease(lease, || true)? {
                let holder = store.holder()?.unwrap_or_else(|| "another daemon".into());
                anyhow::bail!("a daemon already consumes {url}: {holder} holds the lease");
            }
            postgres(store, None)
        }
    }
}

/// Opens the store, waiting out one that is unavailable for now (a full
/// disk, a server restarting) and, on PostgreSQL, standing by while another
/// daemon holds the lease. `None` if asked to stop meanwhile.
pub fn open_patiently(
    config: &Config,
    control: &Arc<Control>,
    health: &mut Health,
) -> anyhow::Result<Option<Connected>> {
    match &config.store_url {
        None => {
            // The lock first, and kept while waiting: `status` says a
            // daemon runs, and no other one starts meanwhile.
            let lock = patiently(control, health, || {
                crate::store::create_directory_of(&config.store_path)?;
                DaemonLock::acquire(&config.store_path)
            })?;
            let Some(lock) = lock else {
                return Ok(None);
            };
            Ok(patiently(control, health, || sqlite(config))?.map(|c| c.keeping(lock)))
        }
        Some(url) => postgres_patiently(url, control, health),
    }
}

impl Connected {
    fn keeping(mut self, keep: impl Any) -> Connected {
        self.keep = Box::new(keep);
        self
    }
}

fn sqlite(config: &Config) -> anyhow::Result<Connected> {
    let opened = crate::store::sqlite::open_for_daemon(config)?;
    Ok(Connected {
        store: opened.store,
        queue: Box::new(opened.queue),
        position: opened.position,
        keep: Box::new(()),
    })
}

fn postgres_patiently(
    url: &StoreUrl,
    control: &Arc<Control>,
    health: &mut Health,
) -> anyhow::Result<Option<Connected>> {
    loop {
        let Some(mut store) = patiently(control, health, || PgStore::open(url.secret()))? else {
            return Ok(None);
        };
        let stopping = Arc::clone(control);
        match store.take_lease(Lease::new(), move || stopping.stopping()) {
            Ok(true) => {
                let wake = Arc::clone(control);
                return postgres(store, Some(Box::new(move || wake.wake()))).map(Some);
            }
            Ok(false) => return Ok(None),
            // The connection broke while standing by: connect again.
            Err(e) if e.is_transient() => {
                tracing::warn!("standing by: {e}; connecting again");
                control.idle(std::time::Duration::from_secs(1));
            }
            Err(e) => return Err(e).context("cannot take the lease"),
        }
    }
}

fn postgres(store: PgStore, wake: Option<Box<dyn Fn() + Send>>) -> anyhow::Result<Connected> {
    let position = store
        .queue_position()
        .context("cannot read how far the queue was processed")?;
    let listener = wake.map(|wake| Listener::start(store.target().clone(), wake));
    let store = Rc::new(store);
    Ok(Connected {
        queue: Box::new(PgQueue::new(Rc::clone(&store))),
        store,
        position,
        keep: Box::new(listener),
    })
}
