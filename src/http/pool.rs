//! Connections kept for the HTTP handlers: opening a database for every
//! request would cost more than most requests.

use std::sync::Mutex;

/// How many idle connections are kept; more are opened when needed and
/// closed after use.
const KEEP: usize = 8;

pub struct Pool<T> {
    idle: Mutex<Vec<T>>,
    open: Box<dyn Fn() -> anyhow::Result<T> + Send + Sync>,
}

impl<T> Pool<T> {
    pub fn new(open: impl Fn() -> anyhow::Result<T> + Send + Sync + 'static) -> Pool<T> {
        Pool {
            idle: Mutex::new(Vec::new()),
            open: Box::new(open),
        }
    }

    /// Runs `work` on a connection, opened if none is idle. Blocking: call
    /// it off the async runtime's threads.
    pub fn with<R>(&self, work: impl FnOnce(&T) -> anyhow::Result<R>) -> anyhow::Result<R> {
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let connection = match taken {
            Some(connection) => connection,
            None => (self.open)()?,
        };
        let result = work(&connection);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < KEEP {
                idle.push(connection);
            }
        }
        result
    }
}
