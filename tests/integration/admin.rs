//! Admin tools: rule tests, replay, explain, init, completions, HubSpot
//! input, JSON output.

use predicates::prelude::*;
use serde_json::{json, Value};

use crate::common::*;

fn with_rule_tests() -> Inbox {
    let inbox = Inbox::new();
    let (_, tests) = inboxd::tools::init::FILES
        .iter()
        .find(|(path, _)| *path == "rules/tests/policies.toml")
        .unwrap();
    inbox.write("rules/tests/policies.toml", tests);
    inbox
}

fn json_of(out: &assert_cmd::assert::Assert) -> Value {
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

#[test]
fn the_shipped_rule_tests_pass() {
    with_rule_tests()
        .cmd()
        .arg("test")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "test result: ok. 20 passed; 0 failed",
        ));
}

#[test]
fn a_failing_rule_test_shows_the_difference_and_fails() {
    let inbox = with_rule_tests();
    // Break P6: closing a ticket no longer closes its conversations.
    inbox.write("rules/cascade_close.rhai", "");
    let out = inbox.cmd().args(["test", "P6"]).assert().failure();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        stdout
            .contains("test example 1 (P6): closing a ticket closes its conversations ... FAILED"),
        "{stdout}"
    );
    assert!(
        stdout.contains("conversation c1 status: expected \"closed\", got \"open\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("test result: FAILED. 1 passed; 1 failed"),
        "{stdout}"
    );

    let report = json_of(
        &inbox
            .cmd()
            .args(["test", "P6", "--format", "json"])
            .assert()
            .failure(),
    );
    assert_eq!(
        report[0]["name"],
        "example 1 (P6): closing a ticket closes its conversations"
    );
    assert!(report[0]["failure"].is_string());
}

/// A test file that cannot be read is named, whatever is wrong with it.
#[test]
fn an_unreadable_rule_test_file_is_named() {
    let inbox = with_rule_tests();
    let fails_naming = |expected: &str| {
        inbox
            .cmd()
            .arg("test")
            .assert()
            .failure()
            .stderr(predicate::str::contains(expected));
    };
    let latin1 = inbox.path("rules/tests/latin1.toml");
    std::fs::write(&latin1, b"name = \"caf\xe9\"").unwrap();
    fails_naming(
        "rules/tests/latin1.toml: cannot read: not UTF-8 text (line 1, byte 12 of the line)",
    );
    std::fs::remove_file(&latin1).unwrap();
    std::fs::create_dir(inbox.path("rules/tests/folder.toml")).unwrap();
    fails_naming("rules/tests/folder.toml: cannot read: not a regular file (a directory)");
}

fn history() -> Inbox {
    let inbox = Inbox::new();
    let mut events = two_tickets_events("e");
    events.extend([
        ev(
            "e7",
            "conversation.owner_changed",
            json!({"conversation": "c1", "owner": "ann"}),
        ),
        conversation_event("e8", "conversation.trashed", "c2"),
        ticket_status("e9", "U", "closed"),
        conversation_event("e10", "conversation.trashed", "c3"),
    ]);
    inbox.send(&events);
    inbox
}

fn candidate(inbox: &Inbox, changes: &[(&str, &str)]) {
    for entry in std::fs::read_dir(inbox.path("rules")).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            let name = entry.file_name().to_string_lossy().to_string();
            inbox.write(
                &format!("candidate/{name}"),
                &inbox.read(&format!("rules/{name}")),
            );
        }
    }
    for (file, text) in changes {
        inbox.write(&format!("candidate/{file}"), text);
    }
}

#[test]
fn replay_under_unchanged_rules_finds_no_difference() {
    let inbox = history();
    let report = json_of(
        &inbox
            .cmd()
            .args(["replay", "--format", "json"])
            .assert()
            .success(),
    );
    assert_eq!(report["replayed"], 10);
    assert_eq!(report["differences"], json!([]));
}

#[test]
fn replay_finds_exactly_the_events_a_changed_rule_affects() {
    let inbox = history();
    let before = inbox.export();
    candidate(&inbox, &[("trash_cascade.rhai", "")]);
    let out = inbox
        .cmd()
        .args(["replay", "--rules", "candidate", "--format", "json"])
        .assert()
        .success();
    let report = json_of(&out);
    let events: Vec<&str> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["e8", "e10"]);
    let e8 = &report["differences"][0];
    assert_eq!(e8["recorded"]["changes"].as_array().unwrap().len(), 3);
    assert_eq!(e8["candidate"]["changes"].as_array().unwrap().len(), 1);
    // The live state is untouched.
    assert_eq!(inbox.export(), before);

    inbox
        .cmd()
        .args(["replay", "--rules", "candidate", "--from", "10"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("event e10 (conversation.trashed) #10")
                .and(predicate::str::contains("event e8").not())
                .and(predicate::str::contains("1 of 1 compared would differ")),
        );
}

#[test]
fn explain_tells_why_a_record_changed() {
    let inbox = history();
    inbox
        .cmd()
        .args(["explain", "conversation", "c1"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("event e7 (conversation.owner_changed): the event itself")
                .and(predicate::str::contains("owner: null -> \"ann\""))
                .and(predicate::str::contains(
                    "rule delete-cascade, via e8 → trash-cascade → e8/1 → delete-cascade → e8/2",
                ))
                .and(predicate::str::contains("status: \"open\" -> \"trashed\"")),
        );
    let explained = json_of(
        &inbox
            .cmd()
            .args(["explain", "event", "e8", "--format", "json"])
            .assert()
            .success(),
    );
    assert_eq!(explained["outcomes"][0]["outcome"], "applied");
    let changed: Vec<(&str, &str)> = explained["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changed,
        [("c2", "status"), ("T", "deleted"), ("c1", "status")]
    );
    inbox
        .cmd()
        .args(["explain", "ticket", "nope"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no ticket nope in the history"));
}

#[test]
fn init_scaffolds_a_working_installation() {
    let dir = tempfile::tempdir().unwrap();
    let bin = || assert_cmd::Command::cargo_bin("inboxd").unwrap();
    bin().args(["init"]).arg(dir.path()).assert().success();
    let config = dir.path().join("config/inboxd.toml");
    bin()
        .arg("--config")
        .arg(&config)
        .arg("validate")
        .assert()
        .success();
    bin()
        .arg("--config")
        .arg(&config)
        .arg("test")
        .assert()
        .success()
        .stdout(predicate::str::contains("0 failed"));
    bin()
        .args(["init"])
        .arg(dir.path())
        .assert()
        .failure()
        .stderr(predicate::str::contains("already exists"));
}

#[test]
fn completions_and_man_page_are_generated() {
    let inbox = Inbox::new();
    inbox
        .cmd()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("dry-run"));
    inbox
        .cmd()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH inboxd"));
}

#[test]
fn hubspot_webhooks_are_mapped_and_unmapped_ones_reported() {
    let inbox = Inbox::new();
    let body = r#"[
      {"eventId": 10, "subscriptionType": "conversation.creation", "objectId": 501, "occurredAt": 1700000000000},
      {"eventId": 11, "subscriptionType": "conversation.newMessage", "objectId": 501},
      {"eventId": 12, "subscriptionType": "conversation.propertyChange", "objectId": 501, "propertyName": "assignedTo", "propertyValue": "42"}
    ]"#;
    inbox
        .cmd()
        .args(["enqueue", "--format", "hubspot"])
        .write_stdin(body)
        .assert()
        .success()
        .stderr(
            predicate::str::contains("skipped line 1, notification 2 (conversation.newMessage)")
                .and(predicate::str::contains("enqueued 2 event(s)")),
        );
    inbox.drain();
    assert_eq!(inbox.conversation("501")["owner"], "42");
    assert_eq!(inbox.outcome("hubspot-12").0, "applied");
}

#[test]
fn piped_output_has_no_progress_bar() {
    let inbox = Inbox::new();
    let events: Vec<Value> = (0..500)
        .map(|i| conversation_created(&format!("e{i}"), &format!("c{i}")))
        .collect();
    let out = inbox
        .cmd()
        .arg("enqueue")
        .write_stdin(lines(&events))
        .assert()
        .success();
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stderr),
        "enqueued 500 event(s)\n"
    );
}

#[test]
fn validate_reports_in_json() {
    let inbox = Inbox::new();
    let ok = json_of(
        &inbox
            .cmd()
            .args(["validate", "--format", "json"])
            .assert()
            .success(),
    );
    assert_eq!(
        (ok["valid"].clone(), ok["rules"].clone()),
        (json!(true), json!(10))
    );
    inbox.write("rules/owner_sync.rhai", "let = ;\n");
    let bad = json_of(
        &inbox
            .cmd()
            .args(["validate", "--format", "json"])
            .assert()
            .failure(),
    );
    assert_eq!(bad["valid"], false);
    assert_eq!(bad["errors"][0]["line"], 1);
    assert!(bad["errors"][0]["file"]
        .as_str()
        .unwrap()
        .ends_with("owner_sync.rhai"));
}
