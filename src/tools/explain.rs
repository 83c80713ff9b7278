//! `inboxd explain`: why a record is as it is, or what an event did — from
//! the audit trail, each change with its event, rule, chain and ruleset.

use std::fmt::Write as _;

use serde::Serialize;

use crate::store::{AuditRow, OutcomeRow, Reader};

/// What to explain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Conversation,
    Ticket,
    Event,
}

#[derive(Debug, Serialize)]
pub struct Explanation {
    pub subject: String,
    pub id: String,
    /// For an event: each time it was processed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<OutcomeRow>,
    pub changes: Vec<AuditRow>,
}

pub fn explain(store: &dyn Reader, subject: Subject, id: &str) -> anyhow::Result<Explanation> {
    let (name, outcomes, changes) = match subject {
        Subject::Conversation => (
            "conversation",
            Vec::new(),
            store.history("conversation", id)?,
        ),
        Subject::Ticket => ("ticket", Vec::new(), store.ticket_history(id)?),
        Subject::Event => ("event", store.outcomes_of(id)?, store.changes_of(id)?),
    };
    if outcomes.is_empty() && changes.is_empty() {
        anyhow::bail!("no {name} {id} in the history");
    }
    Ok(Explanation {
        subject: name.to_string(),
        id: id.to_string(),
        outcomes,
        changes,
    })
}

impl Explanation {
    pub fn to_text(&self) -> String {
        let mut out = format!("{} {}\n", self.subject, self.id);
        for o in &self.outcomes {
            let reason = o
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} {} {}{reason}  [ruleset {}]",
                o.processed_at, o.event_type, o.outcome, o.ruleset
            );
        }
        let mut last_group = None;
        for c in &self.changes {
            let group = (&c.event, &c.cause);
            if last_group != Some(group) {
                let by = match &c.rule {
                    Some(rule) => format!("rule {rule}, via {}", c.chain),
                    None => "the event itself".to_string(),
                };
                let _ = writeln!(
                    out,
                    "  {} event {} ({}): {by}  [ruleset {}]",
                    c.processed_at, c.event, c.event_type, c.ruleset
                );
                last_group = Some(group);
            }
            let record = if self.subject == "event" || c.entity != self.subject || c.id != self.id {
                format!("{} {} ", c.entity, c.id)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "      {record}{}: {} -> {}",
                c.field, c.before, c.after
            );
        }
        out
    }
}
