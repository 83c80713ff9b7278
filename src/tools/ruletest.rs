//! `inboxd test`: rule unit tests kept beside the rules, in
//! `rules/tests/*.toml`. Each test starts from an empty inbox, applies the
//! `given` events, then the `when` events, and checks what `expect` says:
//! outcomes, rules fired, reasons and record fields.
//!
//! ```toml
//! [[test]]
//! name = "P6: closing a ticket closes its conversations"
//! settings = { auto_ticket = false }          # optional overrides
//! given = [
//!   { id = "s1", type = "conversation.created", conversation = "c1" },
//!   { id = "s2", type = "ticket.created", ticket = "T", conversation = "c1" },
//! ]
//! when = [{ id = "e1", type = "ticket.status_changed", ticket = "T", status = "closed" }]
//! expect.outcome = "applied"
//! expect.rules_fired = ["cascade-close"]
//! expect.conversations.c1 = { status = "closed" }
//! # TOML has no null: write JSON where one is needed; `timers` is the
//! # export's list, whole
//! expect_json = '{"tickets": {"T": {"owner": null}}, "timers": []}'
//! ```
//!
//! Time: the test's clock starts at 2026-01-01T00:00:00Z; an event without
//! `at` happens then. `{ wait = "5d" }` among the events lets that much
//! time pass: the timers due meanwhile fire, in order, as in the daemon
//! (in `when`, their reports count with the events').

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::Deserialize;
use serde_json::Value;

use crate::domain::clock::{Clock, SetClock};
use crate::domain::config::Config;
use crate::domain::diagnostic::Diagnostic;
use crate::domain::event::Event;
use crate::engine::report::Report;
use crate::engine::Processor;
use crate::scripting::ruleset::RuleSet;
use crate::store::MemoryStore;
use crate::tools::export::Export;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    test: Vec<RuleTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleTest {
    name: String,
    #[serde(default)]
    settings: toml::Table,
    #[serde(default)]
    given: Vec<toml::Value>,
    when: Vec<toml::Value>,
    #[serde(default)]
    expect: Expect,
    /// More expectations, as JSON (which, unlike TOML, has `null`).
    #[serde(default)]
    expect_json: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// The outcome of every `when` event.
    outcome: Option<String>,
    /// The outcome of each `when` event, in order.
    outcomes: Option<Vec<String>>,
    /// The rules fired for the `when` events (original and derived), in order.
    rules_fired: Option<Vec<String>>,
    /// Text the reason of the last `when` event contains.
    reason_contains: Option<String>,
    #[serde(default)]
    conversations: BTreeMap<String, toml::Table>,
    #[serde(default)]
    tickets: BTreeMap<String, toml::Table>,
    blocked_contacts: Option<Vec<String>>,
    /// The notifications the `when` events sent, in order: each a table
    /// with `webhook` and `payload` (and `rule`, if given, is checked too).
    notifications: Option<Vec<toml::Table>>,
}

/// One test's result: `None` when it passed, else what differed.
#[derive(Debug, serde::Serialize)]
pub struct TestResult {
    pub file: PathBuf,
    pub name: String,
    pub failure: Option<String>,
}

/// Runs the tests of `rules_dir/tests` whose name contains `filter`.
pub fn run(
    config: &Config,
    rules_dir: &Path,
    filter: Option<&str>,
) -> anyhow::Result<Vec<TestResult>> {
    let dir = rules_dir.join("tests");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => anyhow::bail!("cannot read {}: {e}", dir.display()),
    };
    files.sort();
    let mut results = Vec::new();
    for file in files {
        let text = crate::regular_file::read(&file)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
        let tests: TestFile =
            toml::from_str(&text).map_err(|e| Diagnostic::from_toml(&file, &text, &e))?;
        for test in tests.test {
            if filter.is_some_and(|f| !test.name.contains(f)) {
                continue;
            }
            let failure = run_one(config, rules_dir, &test).err();
            results.push(TestResult {
                file: file.clone(),
                name: test.name,
                failure,
            });
        }
    }
    Ok(results)
}

fn run_one(config: &Config, rules_dir: &Path, test: &RuleTest) -> Result<(), String> {
    let mut config = config.clone();
    config.settings.extend(test.settings.clone());
    let rules = RuleSet::load(config, Some(rules_dir)).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        format!("the rules do not load:\n{}", lines.join("\n"))
    })?;
    let parse = |events: &[toml::Value]| -> Result<Vec<Step>, String> {
        events
            .iter()
            .enumerate()
            .map(|(i, e)| to_event(e, &rules).map_err(|why| format!("event {}: {why}", i + 1)))
            .collect()
    };
    let (given, when) = (parse(&test.given)?, parse(&test.when)?);
    let store = Rc::new(MemoryStore::new());
    let clock = Rc::new(SetClock::new(TEST_START));
    let mut processor = Processor::with_clock(store.clone(), rules, clock.clone());
    let mut reports = Vec::new();
    for (step, keep) in given
        .into_iter()
        .map(|e| (e, false))
        .chain(when.into_iter().map(|e| (e, true)))
    {
        let now = clock.now();
        let (until, event) = match step {
            Step::Wait(wait) => {
                let later = now + wait;
                clock.set(later);
                (crate::domain::timer::due_text(later), None)
            }
            Step::Event(mut event) => {
                event
                    .at
                    .get_or_insert_with(|| crate::domain::clock::rfc3339(now));
                (
                    crate::domain::timer::due_before(event.at.as_deref(), now),
                    Some(event),
                )
            }
        };
        let fired = (processor.fire_due_timers(&until, usize::MAX)).map_err(|e| e.to_string())?;
        let processed = match event {
            Some(event) => Some(processor.process(&event, None).map_err(|e| e.to_string())?),
            None => None,
        };
        if keep {
            reports.extend(fired.into_iter().chain(processed));
        }
    }
    let export = Export::of(store.as_ref()).map_err(|e| e.to_string())?;
    check(test, &reports, &export)
}

/// When a rule test's clock starts.
const TEST_START: time::OffsetDateTime = time::macros::datetime!(2026-01-01 00:00 UTC);

/// One step of a rule test: an event, or time passing.
enum Step {
    Event(Box<Event>),
    Wait(time::Duration),
}

/// An event written as a TOML table or as a JSON string, or `{ wait = "5d" }`.
fn to_event(value: &toml::Value, rules: &RuleSet) -> Result<Step, String> {
    if let Some(wait) = value.as_table().and_then(|t| t.get("wait")) {
        let text = wait
            .as_str()
            .ok_or("`wait` must be a duration like \"5d\"")?;
        let wait = humantime::parse_duration(text)
            .map_err(|e| format!("`wait`: {text:?} is not a duration like \"5d\": {e}"))?;
        let wait =
            time::Duration::try_from(wait).map_err(|_| format!("`wait`: {text:?} is too long"))?;
        return Ok(Step::Wait(wait));
    }
    let json = match value {
        toml::Value::String(text) => text.clone(),
        other => serde_json::to_string(other).map_err(|e| e.to_string())?,
    };
    Event::parse(&json, &rules.config.stages).map(|e| Step::Event(Box::new(e)))
}

fn check(test: &RuleTest, reports: &[Report], export: &Export) -> Result<(), String> {
    let mut problems = Vec::new();
    let expect = &test.expect;
    let outcomes: Vec<&str> = reports.iter().map(|r| r.outcome.as_str()).collect();
    if let Some(want) = &expect.outcome {
        if outcomes.iter().any(|o| o != want) {
            problems.push(format!(
                "outcomes: expected all {want:?}, got {outcomes:?}{}",
                reasons(reports)
            ));
        }
    }
    if let Some(want) = &expect.outcomes {
        if &outcomes != want {
            problems.push(format!(
                "outcomes: expected {want:?}, got {outcomes:?}{}",
                reasons(reports)
            ));
        }
    }
    if let Some(want) = &expect.rules_fired {
        let fired: Vec<&str> = reports
            .iter()
            .flat_map(|r| r.rules_fired.iter().map(|f| f.rule.as_str()))
            .collect();
        if &fired != want {
            problems.push(format!("rules fired: expected {want:?}, got {fired:?}"));
        }
    }
    if let Some(want) = &expect.reason_contains {
        let reason = reports
            .last()
            .and_then(|r| r.reason.as_deref())
            .unwrap_or("");
        if !reason.contains(want.as_str()) {
            problems.push(format!(
                "reason: expected it to contain {want:?}, got {reason:?}"
            ));
        }
    }
    let state = serde_json::to_value(export).expect("the export always serializes");
    let mut records = Vec::new();
    for (id, fields) in &expect.conversations {
        records.push(("conversation", "conversations", id, toml_to_json(fields)));
    }
    for (id, fields) in &expect.tickets {
        records.push(("ticket", "tickets", id, toml_to_json(fields)));
    }
    let extra: Value = match &test.expect_json {
        Some(text) => serde_json::from_str(text).map_err(|e| format!("expect_json: {e}"))?,
        None => Value::Null,
    };
    if let Some(want) = extra.get("timers") {
        if want != &state["timers"] {
            problems.push(format!("timers: expected {want}, got {}", state["timers"]));
        }
    }
    for (kind, list) in [("conversation", "conversations"), ("ticket", "tickets")] {
        if let Some(map) = extra.get(list).and_then(Value::as_object) {
            for (id, fields) in map {
                records.push((kind, list, id, fields.clone()));
            }
        }
    }
    for (kind, list, id, fields) in records {
        let found = state[list]
            .as_array()
            .and_then(|all| all.iter().find(|r| r["id"] == id.as_str()));
        let Some(found) = found else {
            problems.push(format!("{kind} {id}: expected it to exist"));
            continue;
        };
        for (field, want) in fields.as_object().into_iter().flatten() {
            let got = found.get(field).unwrap_or(&Value::Null);
            if got != want {
                problems.push(format!("{kind} {id} {field}: expected {want}, got {got}"));
            }
        }
    }
    if let Some(want) = &expect.notifications {
        let sent: Vec<Value> = reports
            .iter()
            .flat_map(|r| &r.notifications)
            .map(
                |n| serde_json::json!({"webhook": n.webhook, "payload": n.payload, "rule": n.rule}),
            )
            .collect();
        let matches = want.len() == sent.len()
            && want.iter().zip(&sent).all(|(want, sent)| {
                toml_to_json(want)
                    .as_object()
                    .into_iter()
                    .flatten()
                    .all(|(key, value)| sent.get(key) == Some(value))
            });
        if !matches {
            let want: Vec<Value> = want.iter().map(toml_to_json).collect();
            problems.push(format!(
                "notifications: expected {}, got {}",
                Value::Array(want),
                Value::Array(sent)
            ));
        }
    }
    if let Some(want) = &expect.blocked_contacts {
        if &export.blocked_contacts != want {
            problems.push(format!(
                "blocked contacts: expected {want:?}, got {:?}",
                export.blocked_contacts
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn reasons(reports: &[Report]) -> String {
    let reasons: Vec<String> = reports
        .iter()
        .filter_map(|r| r.reason.as_ref().map(|why| format!("{}: {why}", r.event)))
        .collect();
    if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", reasons.join("; "))
    }
}

fn toml_to_json(table: &toml::Table) -> Value {
    serde_json::to_value(table).unwrap_or(Value::Null)
}

/// The results in the style of `cargo test`.
pub fn render(results: &[TestResult]) -> String {
    let mut out = format!("running {} tests\n", results.len());
    for r in results {
        let status = if r.failure.is_some() { "FAILED" } else { "ok" };
        let _ = writeln!(out, "test {} ... {status}", r.name);
    }
    let failed: Vec<&TestResult> = results.iter().filter(|r| r.failure.is_some()).collect();
    if !failed.is_empty() {
        out.push_str("\nfailures:\n");
        for r in &failed {
            let _ = writeln!(out, "\n---- {} ({}) ----", r.name, r.file.display());
            let _ = writeln!(out, "{}", r.failure.as_deref().unwrap_or(""));
        }
    }
    let passed = results.len() - failed.len();
    let verdict = if failed.is_empty() { "ok" } else { "FAILED" };
    let _ = writeln!(
        out,
        "\ntest result: {verdict}. {passed} passed; {} failed",
        failed.len()
    );
    out
}
