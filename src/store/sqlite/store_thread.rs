//! A SQLite connection on a thread of its own, running jobs in the order
//! they were sent: the daemon's writes go on there while the engine
//! evaluates the next events on its own thread (`write_behind.rs`).

use std::sync::mpsc::{self, SyncSender};
use std::thread::JoinHandle;

use super::Store;
use crate::store::{Result, StoreError, Trouble};

/// Jobs sent and not run yet, at most: past it the sender waits, so that
/// an engine faster than the disk does not fill the memory with copies of
/// rows (`WriteBehind` sends 128 writes a job: ~400 events ahead at most,
/// which is enough to keep both threads busy).
const BACKLOG: usize = 8;

/// What the jobs work on.
pub(super) struct Writer {
    pub store: Store,
    /// The first error of a job nobody waited for: the jobs after it in
    /// the transaction are skipped, and the commit fails with it.
    pub broken: Option<StoreError>,
}

type Job = Box<dyn FnOnce(&mut Writer) + Send>;

pub(super) struct StoreThread {
    jobs: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl StoreThread {
    pub fn start(store: Store) -> std::io::Result<StoreThread> {
        let (jobs, inbox) = mpsc::sync_channel::<Job>(BACKLOG);
        let thread = std::thread::Builder::new()
            .name("inboxd-store".into())
            .spawn(move || {
                let mut writer = Writer {
                    store,
                    broken: None,
                };
                for job in inbox {
                    job(&mut writer);
                }
            })?;
        Ok(StoreThread {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Sends a job without waiting for it.
    pub fn send(&self, job: impl FnOnce(&mut Writer) + Send + 'static) -> Result<()> {
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(Box::new(job)).map_err(|_| stopped())
    }

    /// Runs a job after every one sent before it, and waits for its result.
    pub fn call<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Writer) -> T + Send + 'static,
    ) -> Result<T> {
        self.call_later(job)?.wait()
    }

    /// Sends a job to run after every one sent before it; its result is
    /// waited for with `Receipt::wait`.
    pub fn call_later<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Writer) -> T + Send + 'static,
    ) -> Result<Receipt<T>> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(move |writer| {
            let _ = reply.send(job(writer));
        })?;
        Ok(Receipt(answer))
    }
}

/// The result of a job sent with `call_later`, to come.
pub(super) struct Receipt<T>(mpsc::Receiver<T>);

impl<T> Receipt<T> {
    pub fn wait(self) -> Result<T> {
        self.0.recv().map_err(|_| stopped())
    }
}

fn stopped() -> StoreError {
    StoreError::backend(
        Trouble::Other,
        "the store's writing thread stopped (a bug: the log says why)",
    )
}

impl Drop for StoreThread {
    /// Runs the jobs sent, then closes the connection (the last one to
    /// close copies the WAL into the database file), before returning.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn jobs_run_in_the_order_sent_and_a_call_waits_for_those_before_it() {
        let thread = StoreThread::start(Store::open_in_memory().unwrap()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..100 {
            let seen = Arc::clone(&seen);
            thread
                .send(move |_| {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                    seen.lock().unwrap().push(i);
                })
                .unwrap();
        }
        let count = thread.call(move |_| seen.lock().unwrap().clone()).unwrap();
        assert_eq!(count, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn a_job_called_later_runs_while_the_caller_goes_on() {
        let thread = StoreThread::start(Store::open_in_memory().unwrap()).unwrap();
        let (go, wait_for_go) = mpsc::channel::<()>();
        // The job finishes only once the caller, back from `call_later`,
        // says go; had `call_later` waited for it, it would give up.
        let receipt = thread
            .call_later(move |_| {
                (wait_for_go.recv_timeout(std::time::Duration::from_secs(5))).is_ok()
            })
            .unwrap();
        go.send(()).unwrap();
        assert!(receipt.wait().unwrap(), "call_later waited for its job");
    }

    #[test]
    fn a_thread_that_died_gives_errors_not_panics() {
        let thread = StoreThread::start(Store::open_in_memory().unwrap()).unwrap();
        let _ = thread.call(|_| -> () { panic!("a bug") });
        let error = thread.call(|_| 1).unwrap_err();
        assert!(error.to_string().contains("thread stopped"), "{error}");
    }
}
