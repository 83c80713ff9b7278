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
        if let Some(line) = self.line() {
            tracing::info!("{line}");
        }
    }

    /// The batch's line, when some event was not simply applied; it says
    /// where the events that need a look (rejected, failed) are listed.
    fn line(&self) -> Option<String> {
        let applied = self.counts[0];
        let total: usize = self.counts.iter().sum();
        if total == applied {
            return None;
        }
        let present = || (Outcome::ALL.iter().zip(self.counts)).filter(|(_, n)| *n > 0);
        let parts: Vec<String> = present().map(|(o, n)| format!("{n} {o}")).collect();
        let listed: Vec<String> = present()
            .filter(|(o, _)| matches!(o, Outcome::Rejected | Outcome::Failed))
            .map(|(o, _)| format!("`inboxd events --outcome {o}`"))
            .collect();
        let hint = match listed.len() {
            0 => String::new(),
            1 => format!(" ({} lists them)", listed[0]),
            _ => format!(" ({} list them)", listed.join(" and ")),
        };
        Some(format!(
            "processed {total} event(s): {}{hint}",
            parts.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(outcomes: &[Outcome]) -> Tally {
        let mut tally = Tally::default();
        outcomes.iter().for_each(|o| tally.count(*o));
        tally
    }

    #[test]
    fn a_batch_line_points_only_at_the_outcomes_it_had() {
        assert_eq!(tally(&[Outcome::Applied, Outcome::Applied]).line(), None);
        assert_eq!(
            tally(&[Outcome::Applied, Outcome::Duplicate])
                .line()
                .unwrap(),
            "processed 2 event(s): 1 applied, 1 duplicate"
        );
        assert_eq!(
            tally(&[Outcome::Rejected, Outcome::Duplicate]).line().unwrap(),
            "processed 2 event(s): 1 rejected, 1 duplicate (`inboxd events --outcome rejected` lists them)"
        );
        let both = tally(&[Outcome::Failed, Outcome::Rejected]).line().unwrap();
        assert!(
            both.ends_with(
                "(`inboxd events --outcome rejected` and `inboxd events --outcome failed` list them)"
            ),
            "{both}"
        );
    }
}
