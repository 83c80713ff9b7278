//! Waking the consumer: a thread with a connection of its own LISTENs on
//! the queue's channel, and calls `wake` at each notification (and after
//! each reconnection, in case one was missed meanwhile).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use super::schema::QUEUE_CHANNEL;
use super::Target;

/// How often the thread looks whether it should stop.
const TICK: Duration = Duration::from_millis(500);
/// The pause before connecting again after a failure.
const RECONNECT: Duration = Duration::from_secs(1);

/// The listening thread; it stops when dropped.
pub struct Listener {
    stop: Arc<AtomicBool>,
}

impl Listener {
    pub fn start(target: Target, wake: impl Fn() + Send + 'static) -> Listener {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let spawned = std::thread::Builder::new()
            .name("pg-listen".into())
            .spawn(move || listen(&target, &wake, &stopping));
        if let Err(e) = spawned {
            tracing::warn!("cannot start the thread listening for new events ({e}); polling");
        }
        Listener { stop }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn listen(target: &Target, wake: &dyn Fn(), stop: &AtomicBool) {
    let mut failing = false;
    while !stop.load(Ordering::SeqCst) {
        let result = target.connect().and_then(|mut client| {
            client.batch_execute(&format!("LISTEN {QUEUE_CHANNEL}"))?;
            if failing {
                tracing::info!("listening for new events again");
                failing = false;
            }
            wake();
            while !stop.load(Ordering::SeqCst) {
                let mut notifications = client.notifications();
                let mut waiting = notifications.timeout_iter(TICK);
                if waiting.next()?.is_some() {
                    while waiting.next()?.is_some() {}
                    wake();
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            if !failing {
                tracing::warn!("not listening for new events: {e:#}; trying again");
                failing = true;
            }
            std::thread::sleep(RECONNECT);
        }
    }
}
