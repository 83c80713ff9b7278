//! Riding out a store that is unavailable for a while (a full disk, an
//! I/O error): try again with exponential back-off, say so in the log and
//! in the health report `status` shows, and go on when it works again.

use std::time::Duration;

use crate::daemon::control::Control;
use crate::daemon::health::{is_transient, Health, StoreTrouble};
use crate::domain::event::now_rfc3339;

const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(60);

/// The pauses between tries: 1 s, doubling up to a minute.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    since: Option<String>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: FIRST_PAUSE,
            since: None,
        }
    }
}

impl Backoff {
    /// Reports a failure; the pause to take before the next try.
    pub fn failed(&mut self, error: &anyhow::Error, health: &mut Health) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(LONGEST_PAUSE);
        let since = self.since.get_or_insert_with(now_rfc3339).clone();
        let next_attempt = time::OffsetDateTime::now_utc() + pause;
        let next_attempt = next_attempt
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let text = format!("{error:#}");
        let kind = if is_transient(error) {
            "the store is unavailable (full disk? I/O error? database server down?)"
        } else {
            "cannot process the queue"
        };
        tracing::error!("{kind}, retrying in {} s: {text}", pause.as_secs());
        health.store_failing(&StoreTrouble {
            error: text,
            since,
            next_attempt,
        });
        pause
    }

    /// Reports a success after failures, and starts over.
    pub fn succeeded(&mut self, health: &mut Health) {
        if self.since.take().is_some() {
            tracing::info!("the store works again");
            self.next = FIRST_PAUSE;
            health.store_ok();
        }
    }
}

/// Runs `op` until it succeeds, waiting out transient store errors; other
/// errors are returned at once. `None` if asked to stop meanwhile.
pub fn patiently<T>(
    control: &Control,
    health: &mut Health,
    mut op: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<Option<T>> {
    let mut backoff = Backoff::default();
    loop {
        match op() {
            Ok(value) => {
                backoff.succeeded(health);
                return Ok(Some(value));
            }
            Err(e) if is_transient(&e) => {
                let pause = backoff.failed(&e, health);
                control.idle(pause);
                if control.stopping() {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_a_minute_and_start_over_after_a_success() {
        let dir = tempfile::tempdir().unwrap();
        let mut health = Health::create(&dir.path().join("db"));
        let mut backoff = Backoff::default();
        let error = anyhow::anyhow!("boom");
        let pauses: Vec<u64> = (0..8)
            .map(|_| backoff.failed(&error, &mut health).as_secs())
            .collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert!(Health::read(&dir.path().join("db")).is_some());
        backoff.succeeded(&mut health);
        assert_eq!(backoff.failed(&error, &mut health).as_secs(), 1);
    }
}
