//! The running daemon: prompt pickup, hot reload in every save style,
//! signals, clean shutdown, one daemon per database, status.

use std::time::Duration;

use predicates::prelude::*;
use serde_json::{json, Value};

use crate::common::*;

/// An inbox with a rule `probe` that rejects every new conversation with
/// its version string, so that the live rules can be read off an event.
fn probed() -> Inbox {
    let inbox = Inbox::new();
    inbox.add_rule("probe", "conversation.created", "reject(\"v1\");\n");
    inbox
}

/// Sends a probe event and returns the version the live rules gave it.
fn probe(inbox: &Inbox, n: &mut u32) -> String {
    *n += 1;
    let id = format!("probe{n}");
    inbox.enqueue(&lines(&[conversation_created(&id, &format!("pc{n}"))]));
    let (_, reason) = inbox.wait_outcome(&id);
    reason
        .unwrap_or_default()
        .trim_start_matches("rule probe: ")
        .to_string()
}

fn ruleset(inbox: &Inbox) -> Value {
    inbox.status()["daemon"]["ruleset"].clone()
}

/// Waits for the live ruleset to change from `before`, then for the
/// debounce window to pass, so that the final content is live.
fn wait_reload(inbox: &Inbox, before: &Value) {
    wait_until("a reload", || &ruleset(inbox) != before);
    std::thread::sleep(Duration::from_millis(600));
}

fn script(version: &str) -> String {
    format!("reject(\"{version}\");\n")
}

#[test]
fn events_enqueued_while_running_are_processed() {
    let inbox = Inbox::new();
    let _daemon = inbox.start(&[]);
    inbox.enqueue(&lines(&[conversation_created("e1", "c1")]));
    assert_eq!(inbox.wait_outcome("e1").0, "applied");
    assert_eq!(inbox.status()["queued"], 0);
}

#[test]
fn rules_reload_in_every_save_style() {
    let inbox = probed();
    let mut daemon = inbox.start(&[]);
    let mut n = 0;
    assert_eq!(probe(&inbox, &mut n), "v1");
    let file = inbox.path("rules/probe.rhai");

    // Write a temp file, rename it over the script.
    let before = ruleset(&inbox);
    inbox.write("rules/.probe.rhai.swp", &script("v2"));
    std::fs::rename(inbox.path("rules/.probe.rhai.swp"), &file).unwrap();
    wait_reload(&inbox, &before);
    assert_eq!(probe(&inbox, &mut n), "v2");

    // Write in place.
    let before = ruleset(&inbox);
    std::fs::write(&file, script("v3")).unwrap();
    wait_reload(&inbox, &before);
    assert_eq!(probe(&inbox, &mut n), "v3");

    // Truncate, then write.
    let before = ruleset(&inbox);
    std::fs::write(&file, "").unwrap();
    std::thread::sleep(Duration::from_millis(30));
    std::fs::write(&file, script("v4")).unwrap();
    wait_reload(&inbox, &before);
    assert_eq!(probe(&inbox, &mut n), "v4");

    // Delete, then recreate.
    let before = ruleset(&inbox);
    std::fs::remove_file(&file).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    std::fs::write(&file, script("v5")).unwrap();
    wait_reload(&inbox, &before);
    assert_eq!(probe(&inbox, &mut n), "v5");

    // Several quick saves: the last one is live.
    let before = ruleset(&inbox);
    for v in ["v6", "v7", "v8"] {
        std::fs::write(&file, script(v)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_reload(&inbox, &before);
    assert_eq!(probe(&inbox, &mut n), "v8");

    assert!(daemon.is_running());
    assert!(
        inbox.log().contains("rules reloaded: changed"),
        "{}",
        inbox.log()
    );
}

#[test]
fn a_rules_directory_swapped_by_a_deploy_is_followed() {
    let inbox = probed();
    let _daemon = inbox.start(&[]);
    let mut n = 0;
    assert_eq!(probe(&inbox, &mut n), "v1");
    // Deploy: build the new rules beside, then swap the directories.
    let before = ruleset(&inbox);
    std::fs::create_dir(inbox.path("rules.new")).unwrap();
    for entry in std::fs::read_dir(inbox.path("rules")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            inbox.path("rules.new").join(entry.file_name()),
        )
        .unwrap();
    }
    inbox.write("rules.new/probe.rhai", &script("v2"));
    std::fs::rename(inbox.path("rules"), inbox.path("rules.old")).unwrap();
    std::fs::rename(inbox.path("rules.new"), inbox.path("rules")).unwrap();
    wait_reload(&inbox, &before);
    assert_eq!(probe(&inbox, &mut n), "v2");
    // Edits in the new directory are seen too.
    let before = ruleset(&inbox);
    inbox.write("rules/probe.rhai", &script("v3"));
    wait_reload(&inbox, &before);
    assert_eq!(probe(&inbox, &mut n), "v3");
}

#[test]
fn a_broken_change_keeps_the_last_good_rules() {
    let inbox = probed();
    let mut daemon = inbox.start(&[]);
    let mut n = 0;
    inbox.write("rules/probe.rhai", "reject(\"v2\"\n");
    wait_until("the reload error", || {
        inbox.status()["daemon"]["reload_error"].is_string()
    });
    let error = inbox.status()["daemon"]["reload_error"].clone();
    assert!(error.as_str().unwrap().contains("probe.rhai:"), "{error}");
    assert_eq!(probe(&inbox, &mut n), "v1");
    assert!(daemon.is_running());
    assert!(inbox.log().contains("keeping the last good rules"));

    inbox.write("rules/probe.rhai", &script("v3"));
    wait_until("the fix", || {
        inbox.status()["daemon"]["reload_error"].is_null()
    });
    assert_eq!(probe(&inbox, &mut n), "v3");
}

#[test]
fn sighup_reloads() {
    let inbox = probed();
    let daemon = inbox.start(&["--no-watch"]);
    let mut n = 0;
    let before = ruleset(&inbox);
    inbox.write("rules/probe.rhai", &script("v2"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(probe(&inbox, &mut n), "v1", "reloaded without being asked");
    daemon.signal("HUP");
    wait_until("a reload", || ruleset(&inbox) != before);
    assert_eq!(probe(&inbox, &mut n), "v2");
}

#[test]
fn the_store_path_cannot_change_live_but_the_rest_applies() {
    let inbox = Inbox::with_settings("who = \"one\"");
    inbox.add_rule("probe", "conversation.created", "reject(settings.who);\n");
    // Clients keep using the original database through a copy of the config.
    inbox.write("config/client.toml", &inbox.read("config/inboxd.toml"));
    let client = |args: &[&str]| {
        let out = inbox
            .cmd()
            .args(["--config", "config/client.toml"])
            .args(args)
            .assert()
            .success();
        out.get_output().stdout.clone()
    };
    let _daemon = inbox.start(&[]);
    let config = inbox
        .read("config/inboxd.toml")
        .replace("../var/inboxd.db", "../elsewhere.db")
        .replace("who = \"one\"", "who = \"two\"");
    inbox.write("config/inboxd.toml", &config);
    wait_until("the reload", || {
        inbox.log().contains("path cannot change while running")
    });
    std::thread::sleep(Duration::from_millis(300));
    inbox
        .cmd()
        .args(["--config", "config/client.toml", "enqueue"])
        .write_stdin(lines(&[conversation_created("e1", "c1")]))
        .assert()
        .success();
    let outcome = || -> Option<Value> {
        let rows: Vec<Value> =
            serde_json::from_slice(&client(&["events", "--format", "json"])).unwrap();
        rows.into_iter().find(|r| r["id"] == "e1")
    };
    wait_until("e1", || outcome().is_some());
    assert_eq!(outcome().unwrap()["reason"], "rule probe: two");
    assert!(!inbox.path("elsewhere.db").exists());
}

#[test]
fn a_reloaded_pipeline_is_the_one_the_rules_see() {
    let inbox = Inbox::new();
    let _daemon = inbox.start(&[]);
    inbox.enqueue(&lines(&two_tickets_events("s")));
    inbox.wait_outcome("s6");
    let before = ruleset(&inbox);
    let config = inbox.read("config/inboxd.toml").replace(
        "{ id = \"closed\", closed = true },",
        "{ id = \"closed\", closed = true },\n    { id = \"resolved\", closed = true },",
    );
    assert!(config.contains("resolved"));
    inbox.write("config/inboxd.toml", &config);
    wait_reload(&inbox, &before);
    inbox.enqueue(&lines(&[ticket_status("e1", "T", "resolved")]));
    assert_eq!(inbox.wait_outcome("e1").0, "applied");
    // P6 saw the new stage as closed.
    assert_eq!(inbox.conversation("c1")["status"], "closed");
    assert_eq!(inbox.conversation("c2")["status"], "closed");
}

#[test]
fn sigterm_during_a_burst_loses_nothing_and_exits_0() {
    let events: Vec<Value> = (0..1000)
        .map(|i| conversation_created(&format!("e{i}"), &format!("c{i}")))
        .collect();
    let inbox = Inbox::new();
    // A few milliseconds an event (no change to the state): the burst
    // lasts seconds, and the signal lands in the middle of it.
    inbox.add_rule(
        "pause",
        "conversation.created",
        "let s = \"x\"; for i in 0..12 { s += s; }\nfor i in 0..100 { s.replace(\"x\", \"y\"); }\n",
    );
    inbox.enqueue(&lines(&events));
    let daemon = inbox.start(&[]);
    wait_until("the first events to be applied", || {
        inbox.status()["processed"]["applied"].as_u64().unwrap_or(0) > 0
    });
    daemon.signal("TERM");
    assert_eq!(daemon.wait(), Some(0));

    let status = inbox.status();
    let applied = status["processed"]["applied"].as_u64().unwrap_or(0);
    let queued = status["queued"].as_u64().unwrap();
    assert!(
        queued > 0,
        "every event was applied before the signal: the test proves nothing ({status})"
    );
    assert_eq!(applied + queued, 1000, "{status}");
    let conversations = inbox.export()["conversations"].as_array().unwrap().len() as u64;
    assert_eq!(conversations, applied);

    inbox.drain();
    let reference = Inbox::new();
    reference.send(&events);
    assert_eq!(inbox.export(), reference.export());
}

/// The daemon reads each batch while the one before commits: across batch
/// boundaries (4,096 events), every event is processed once, in order,
/// seeing what the batches before did, as when each drain holds one batch.
#[test]
fn a_drain_of_several_batches_gives_what_one_batch_at_a_time_gives() {
    let created = (0..3000).map(|i| conversation_created(&format!("e{i}"), &format!("c{i}")));
    // The same ids again (duplicates), then the conversations closed: both
    // reach back to events of earlier batches.
    let again = (0..3000).map(|i| conversation_created(&format!("e{i}"), &format!("c{i}")));
    let closed = (0..3000)
        .map(|i| conversation_event(&format!("x{i}"), "conversation.closed", &format!("c{i}")));
    let events: Vec<Value> = created.chain(again).chain(closed).collect();

    let inbox = Inbox::new();
    inbox.send(&events);
    let reference = Inbox::new();
    for part in events.chunks(1000) {
        reference.send(part);
    }
    let outcomes = |inbox: &Inbox| -> Vec<(Value, Value)> {
        let rows = inbox.outcomes().into_iter();
        rows.map(|r| (r["id"].clone(), r["outcome"].clone()))
            .collect()
    };
    let got = outcomes(&inbox);
    assert_eq!(got.len(), 9000);
    assert_eq!(got, outcomes(&reference));
    assert_eq!(got[5000].1, "duplicate");
    assert_eq!(inbox.export(), reference.export());
    assert_eq!(inbox.conversation("c2999")["status"], "closed");
}

#[test]
fn a_second_daemon_on_the_same_database_refuses_to_start() {
    let inbox = Inbox::new();
    let first = inbox.start(&[]);
    inbox
        .cmd()
        .args(["run", "--drain"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "another inboxd daemon is already consuming",
        ));
    // A killed daemon leaves no stale lock.
    first.signal("KILL");
    first.wait();
    inbox.enqueue(&lines(&[conversation_created("e1", "c1")]));
    inbox.drain();
    assert_eq!(inbox.outcome("e1").0, "applied");
}

#[test]
fn status_reports_queue_outcomes_and_ruleset() {
    let inbox = Inbox::new();
    inbox.send(&[
        conversation_created("e1", "c1"),
        conversation_event("e2", "conversation.closed", "nope"),
    ]);
    inbox.enqueue(&lines(&[conversation_created("e3", "c3")]));
    let status = inbox.status();
    assert_eq!(status["running"], false);
    assert_eq!(status["queued"], 1);
    assert_eq!(status["processed"], json!({"applied": 1, "rejected": 1}));
    inbox.cmd().arg("status").assert().success().stdout(
        predicate::str::contains("daemon:    not running")
            .and(predicate::str::contains("queued:    1"))
            .and(predicate::str::contains(
                "processed: 1 applied, 1 rejected, 0 failed",
            )),
    );
}

#[test]
fn json_logs_have_one_object_per_line() {
    let inbox = Inbox::new();
    inbox.enqueue(&lines(&[conversation_event(
        "e1",
        "conversation.closed",
        "nope",
    )]));
    let out = inbox
        .cmd()
        .env("RUST_LOG", "debug")
        .args(["run", "--drain", "--log-format", "json"])
        .assert()
        .success();
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|l| l["fields"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("rejected: unknown conversation nope"))));
}
