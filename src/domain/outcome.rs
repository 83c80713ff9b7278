//! What became of an event: applied, rejected, failed or a duplicate.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Applied, with its cascade (possibly changing nothing).
    Applied,
    /// Invalid against the state, or refused by a rule. Final.
    Rejected,
    /// A script error, a limit or a too deep cascade. Retryable.
    Failed,
    /// Its id was applied or rejected before; ignored.
    Duplicate,
}

impl Outcome {
    /// Every outcome, in the order `status` lists them.
    pub const ALL: [Outcome; 4] = [
        Outcome::Applied,
        Outcome::Rejected,
        Outcome::Failed,
        Outcome::Duplicate,
    ];

    /// The outcome `as_str` names.
    pub fn parse(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }

    /// Whether the event's id is done with: an applied or rejected event
    /// is never processed again (a failed one may be retried).
    pub fn is_done(self) -> bool {
        matches!(self, Outcome::Applied | Outcome::Rejected)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
            Outcome::Duplicate => "duplicate",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
