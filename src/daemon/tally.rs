//! What the run loop says of the events it processed: each outcome at
//! `debug` (a failure at `error`), one line per batch, and the counts for
//! the metrics.

use crate::daemon::metrics::Metrics;
use crate::domain::outcome::Outcome;

/// Each event's outcome at `debug`, but a failure (which needs someone)
/// at `error`: a busy inbox rejects and receives duplicates by the
/// thousand, and its log is not where they are looked up (`inboxd events`).
pub fn log_outcome(event: &str, outcome: Outcome, reason: Option<&str>) {
    let reason = reason.unwrap_or("");
    match outcome {
        Outcome::Applied => tracing::debug!(event, "applied"),
        Outcome::Duplicate => tracing::debug!(event, "duplicate: {reason}"),
        Outcome::Rejected => tracing::debug!(event, "rejected: {reason}"),
        Outcome::Failed => tracing::error!(event, "failed: {reason}"),
    }
}

/// The outcomes of a committed batch, logged as one line when some event
/// was not simply applied.
#[derive(Default)]
pub struct Tally {
    counts: [usize; Outcome::ALL.len()],
}

impl Tally {
    pub fn count(&mut self, outcome: Outcome) {
        if let Some(i) = Outcome::ALL.iter().position(|o| *o == outcome) {
            self.counts[i] += 1;
        }
    }

    pub fn count_into(&self, metrics: &Metrics) {
        for (outcome, n) in Outcome::ALL.iter().zip(self.counts) {
            if n > 0 {
                metrics.processed(*outcome, n as u64);
            }
        }
    }

    pub fn log(&self) {
        let applied = self.counts[0];
        let total: usize = self.counts.iter().sum();
        if total == applied {
            return;
        }
        let parts: Vec<String> = (Outcome::ALL.iter().zip(self.counts))
            .filter(|(_, n)| *n > 0)
            .map(|(outcome, n)| format!("{n} {outcome}"))
            .collect();
        tracing::info!(
            "processed {total} event(s): {} (`inboxd events --outcome rejected` lists the rejected)",
            parts.join(", ")
        );
    }
}
