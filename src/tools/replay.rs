//! `inboxd replay`: the what-if. The recorded history of processed events is
//! run again, from an empty inbox, under candidate rules, on a scratch
//! database in memory; every event whose outcome or changes would differ
//! from what was recorded is reported with both versions.
//!
//! Events before the chosen window are replayed too (under the candidate
//! rules), so that the window starts from the state those rules would have
//! produced; only events inside the window are compared.
//!
//! Timers run on the same timeline as in the daemon, with each event's
//! recorded processing time as "now": before an event, the candidate's
//! timers due by then fire. Recorded `timer.fired` events are not replayed
//! as such (the candidate's own timers fire instead) nor compared one by
//! one; what they did shows in the events after them.
//!
//! Each event runs under the config it ran under when it was processed
//! (the `[settings]` and ticket stages recorded with its ruleset version),
//! so that unchanged rules find no difference; a candidate config given
//! instead is used for every event.

use std::fmt::Write as _;
use std::rc::Rc;

use serde::Serialize;
use serde_json::Value;

use crate::domain::change::Change;
use crate::domain::clock::SetClock;
use crate::domain::event::{parse_time, Event};
use crate::engine::Processor;
use crate::scripting::ruleset::RuleSet;
use crate::store::{LoggedEvent, Reader, Store, Transactions};
use crate::tools::progress::progress_bar;

/// Which recorded events to compare.
#[derive(Debug, Default, Clone)]
pub struct Window {
    pub from_seq: Option<i64>,
    pub to_seq: Option<i64>,
    /// Compared with the time each event was processed.
    pub since: Option<time::OffsetDateTime>,
    pub until: Option<time::OffsetDateTime>,
}

impl Window {
    /// A window; `since` and `until` are RFC 3339 times, checked here,
    /// before any history is read.
    pub fn new(
        from_seq: Option<i64>,
        to_seq: Option<i64>,
        since: Option<&str>,
        until: Option<&str>,
    ) -> anyhow::Result<Window> {
        let time = |flag: &str, text: Option<&str>| -> anyhow::Result<_> {
            text.map(|t| {
                parse_time(t).map_err(|e| {
                    anyhow::anyhow!(
                        "--{flag} {t:?} is not an RFC 3339 time (like 2026-01-31T09:00:00Z): {e}"
                    )
                })
            })
            .transpose()
        };
        Ok(Window {
            from_seq,
            to_seq,
            since: time("since", since)?,
            until: time("until", until)?,
        })
    }

    fn contains(&self, entry: &LoggedEvent) -> anyhow::Result<bool> {
        if self.from_seq.is_some_and(|s| entry.seq < s)
            || self.to_seq.is_some_and(|s| entry.seq > s)
        {
            return Ok(false);
        }
        if self.since.is_none() && self.until.is_none() {
            return Ok(true);
        }
        let at = parse_time(&entry.processed_at)?;
        Ok(
            self.since.is_none_or(|since| at >= since)
                && self.until.is_none_or(|until| at <= until),
        )
    }
}

/// The candidate rules, under the config each event met (or one config
/// for all, when a candidate config is given).
pub struct Candidate {
    /// The candidate rules under the candidate config.
    pub rules: RuleSet,
    /// Use the candidate config for every event, not the recorded ones.
    pub config_given: bool,
}

/// What one event did, or would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventResult {
    pub outcome: crate::engine::report::Outcome,
    pub reason: Option<String>,
    /// `(entity, id, field, before, after)`.
    pub changes: Vec<(String, String, String, Value, Value)>,
}

#[derive(Debug, Serialize)]
pub struct Difference {
    pub seq: i64,
    pub event: String,
    pub event_type: String,
    pub recorded: EventResult,
    pub candidate: EventResult,
}

#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub ruleset: String,
    /// Events replayed in all, and compared (inside the window).
    pub replayed: usize,
    pub compared: usize,
    pub differences: Vec<Difference>,
    /// Runs of events whose ruleset's config was not recorded (processed
    /// by an older inboxd): they were replayed under the current config.
    pub unrecorded_configs: usize,
}

/// The candidate RuleSet for each recorded config, built once each.
struct Configs<'a> {
    history: &'a dyn Reader,
    candidate: &'a Candidate,
    built: std::collections::HashMap<String, (RuleSet, bool)>,
}

impl<'a> Configs<'a> {
    fn new(history: &'a dyn Reader, candidate: &'a Candidate) -> Self {
        Configs {
            history,
            candidate,
            built: std::collections::HashMap::new(),
        }
    }

    /// The candidate rules under the config `version` ran under, and
    /// whether that config was recorded.
    fn rules_for(&mut self, version: &str) -> anyhow::Result<(RuleSet, bool)> {
        if let Some((rules, recorded)) = self.built.get(version) {
            return Ok((rules.clone(), *recorded));
        }
        let rules = &self.candidate.rules;
        let recorded = if self.candidate.config_given {
            None
        } else {
            self.history.recorded_ruleset(version)?
        };
        let built = match &recorded {
            None => rules.clone(),
            Some(config) => {
                let mut under = rules.config.clone();
                under.settings = config.settings.clone();
                under.stages = config.stages.clone();
                RuleSet::load(under, Some(&rules.rules_dir)).map_err(|problems| {
                    anyhow::anyhow!(
                        "the candidate rules do not load under the config ruleset {version} ran under: {}",
                        crate::domain::diagnostic::Diagnostics(problems)
                    )
                })?
            }
        };
        let recorded = recorded.is_some() || self.candidate.config_given;
        self.built
            .insert(version.to_string(), (built.clone(), recorded));
        Ok((built, recorded))
    }
}

/// Events replayed per transaction of the scratch store.
const BATCH: usize = 1024;

pub fn replay(
    history: &dyn Reader,
    candidate: Candidate,
    window: &Window,
) -> anyhow::Result<ReplayReport> {
    // On disk, not in memory: the scratch holds the whole replayed state
    // and log, and memory stays bounded whatever the size of the history.
    let dir = tempfile::tempdir()?;
    let scratch = Rc::new(Store::open(
        &dir.path().join("replay.db"),
        crate::domain::config::Synchronous::Normal,
    )?);
    let ruleset = candidate.rules.version.clone();
    let mut configs = Configs::new(history, &candidate);
    // Each event runs at the time it was processed.
    let clock = Rc::new(SetClock::new(time::OffsetDateTime::UNIX_EPOCH));
    let mut processor =
        Processor::with_clock(scratch.clone(), candidate.rules.clone(), clock.clone());
    let bar = progress_bar(history.logged_count()?, "replaying");
    let mut report = ReplayReport {
        ruleset,
        replayed: 0,
        compared: 0,
        differences: Vec::new(),
        unrecorded_configs: 0,
    };
    let mut running_under: Option<String> = None;
    scratch.begin()?;
    history.for_each_logged_event(&mut |entry| -> anyhow::Result<()> {
        bar.inc(1);
        {
            let Ok(event) = serde_json::from_str::<Event>(&entry.body) else {
                return Ok(()); // recorded as unreadable: nothing to replay
            };
            if event.type_name() == crate::domain::event::TIMER_FIRED {
                return Ok(()); // the candidate's timers fire on their own
            }
            if running_under.as_deref() != Some(entry.ruleset.as_str()) {
                let (rules, recorded) = configs.rules_for(&entry.ruleset)?;
                if !recorded {
                    report.unrecorded_configs += 1;
                }
                processor.set_rules(rules);
                running_under = Some(entry.ruleset.clone());
            }
            let processed_at = parse_time(&entry.processed_at)?;
            clock.set(processed_at);
            let until = crate::domain::timer::due_before(event.at.as_deref(), processed_at);
            processor.fire_due_timers(&until, usize::MAX)?;
            let candidate = processor.process(&event, None)?;
            report.replayed += 1;
            if report.replayed.is_multiple_of(BATCH) {
                scratch.commit()?;
                scratch.begin()?;
            }
            if window.contains(&entry)? {
                report.compared += 1;
                compare(&mut report, &entry, &event, &candidate);
            }
            Ok(())
        }
    })?;
    scratch.commit()?;
    bar.finish_and_clear();
    Ok(report)
}

/// Adds a difference to `report` if the candidate differs from the record.
fn compare(
    report: &mut ReplayReport,
    entry: &LoggedEvent,
    event: &Event,
    candidate: &crate::engine::report::Report,
) {
    let recorded = EventResult {
        outcome: entry.outcome,
        reason: entry.reason.clone(),
        changes: as_compared(&entry.changes),
    };
    let candidate = EventResult {
        outcome: candidate.outcome,
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
        if self.unrecorded_configs > 0 {
            let _ = writeln!(
                out,
                "note: some events were processed before inboxd recorded the config of each ruleset; they ran again under the current config"
            );
        }
        out
    }
}
