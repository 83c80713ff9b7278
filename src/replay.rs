//! `inboxd replay`: the what-if. The recorded history of processed events is
//! run again, from an empty inbox, under candidate rules, on a scratch
//! database in memory; every event whose outcome or changes would differ
//! from what was recorded is reported with both versions.
//!
//! Events before the chosen window are replayed too (under the candidate
//! rules), so that the window starts from the state those rules would have
//! produced; only events inside the window are compared.

use std::fmt::Write as _;
use std::rc::Rc;

use serde::Serialize;
use serde_json::Value;

use crate::change::Change;
use crate::engine::Processor;
use crate::event::{parse_time, Event};
use crate::progress::progress_bar;
use crate::ruleset::RuleSet;
use crate::store::{LoggedEvent, Store};

/// Which recorded events to compare.
#[derive(Debug, Default, Clone)]
pub struct Window {
    pub from_seq: Option<i64>,
    pub to_seq: Option<i64>,
    /// RFC 3339; compared with the time each event was processed.
    pub since: Option<String>,
    pub until: Option<String>,
}

impl Window {
    fn contains(&self, entry: &LoggedEvent) -> anyhow::Result<bool> {
        if self.from_seq.is_some_and(|s| entry.seq < s)
            || self.to_seq.is_some_and(|s| entry.seq > s)
        {
            return Ok(false);
        }
        let at = parse_time(&entry.processed_at)?;
        let before = |bound: &Option<String>| -> anyhow::Result<Option<time::OffsetDateTime>> {
            Ok(match bound {
                Some(t) => Some(
                    parse_time(t)
                        .map_err(|e| anyhow::anyhow!("{t:?} is not an RFC 3339 time: {e}"))?,
                ),
                None => None,
            })
        };
        if before(&self.since)?.is_some_and(|since| at < since) {
            return Ok(false);
        }
        Ok(before(&self.until)?.is_none_or(|until| at <= until))
    }
}

/// What one event did, or would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Version {
    pub outcome: String,
    pub reason: Option<String>,
    /// `(entity, id, field, before, after)`.
    pub changes: Vec<(String, String, String, Value, Value)>,
}

#[derive(Debug, Serialize)]
pub struct Difference {
    pub seq: i64,
    pub event: String,
    pub event_type: String,
    pub recorded: Version,
    pub candidate: Version,
}

#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub ruleset: String,
    /// Events replayed in all, and compared (inside the window).
    pub replayed: usize,
    pub compared: usize,
    pub differences: Vec<Difference>,
}

pub fn replay(history: &Store, rules: RuleSet, window: &Window) -> anyhow::Result<ReplayReport> {
    let entries = history.logged_events()?;
    let scratch = Rc::new(Store::open_in_memory()?);
    let ruleset = rules.version.clone();
    let mut processor = Processor::new(Rc::clone(&scratch), rules);
    let bar = progress_bar(entries.len() as u64, "replaying");
    let mut report = ReplayReport {
        ruleset,
        replayed: 0,
        compared: 0,
        differences: Vec::new(),
    };
    scratch.begin()?;
    for entry in &entries {
        bar.inc(1);
        let Ok(event) = serde_json::from_str::<Event>(&entry.body) else {
            continue; // recorded as unreadable: nothing to replay
        };
        let candidate = processor.process(&event, None)?;
        report.replayed += 1;
        if !window.contains(entry)? {
            continue;
        }
        report.compared += 1;
        let recorded = Version {
            outcome: entry.outcome.clone(),
            reason: entry.reason.clone(),
            changes: as_compared(&entry.changes),
        };
        let candidate = Version {
            outcome: candidate.outcome.as_str().to_string(),
            reason: candidate.reason.clone(),
            changes: as_compared(&candidate.changes),
        };
        if recorded != candidate {
            report.differences.push(Difference {
                seq: entry.seq,
                event: entry.event_id.clone(),
                event_type: event.type_name().to_string(),
                recorded,
                candidate,
            });
        }
    }
    scratch.rollback()?;
    bar.finish_and_clear();
    Ok(report)
}

/// Changes as they are compared: what changed, not which rule did it.
fn as_compared(changes: &[Change]) -> Vec<(String, String, String, Value, Value)> {
    changes
        .iter()
        .map(|c| {
            (
                c.entity.as_str().to_string(),
                c.id.clone(),
                c.field.clone(),
                c.before.clone(),
                c.after.clone(),
            )
        })
        .collect()
}

impl ReplayReport {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for d in &self.differences {
            let _ = writeln!(out, "event {} ({}) #{}", d.event, d.event_type, d.seq);
            for (name, version) in [("recorded ", &d.recorded), ("candidate", &d.candidate)] {
                let reason = version
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "  {name}: {}{reason}", version.outcome);
                if version.changes.is_empty() {
                    let _ = writeln!(out, "      no change");
                }
                for (entity, id, field, before, after) in &version.changes {
                    let _ = writeln!(out, "      {entity} {id} {field}: {before} -> {after}");
                }
            }
        }
        let _ = writeln!(
            out,
            "replayed {} events under ruleset {}: {} of {} compared would differ",
            self.replayed,
            self.ruleset,
            self.differences.len(),
            self.compared
        );
        out
    }
}
