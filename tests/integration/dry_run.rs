//! `dry-run`: what events would do, changing nothing at all.

use predicates::prelude::*;
use serde_json::{json, Value};

use crate::common::*;

fn setup() -> Inbox {
    let inbox = Inbox::new();
    inbox.send(&[
        conversation_created("s1", "c1"),
        conversation_created("s2", "c2"),
        ticket_created("s3", "T", "c1"),
        associated("s4", "T", "c2"),
    ]);
    inbox
}

fn dry_run_json(inbox: &Inbox, args: &[&str], events: &[Value]) -> Value {
    let out = inbox
        .cmd()
        .arg("dry-run")
        .args(args)
        .args(["--format", "json"])
        .write_stdin(lines(events))
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

#[test]
fn dry_run_shows_rules_actions_and_changes_of_the_cascade() {
    let inbox = setup();
    let reports = dry_run_json(
        &inbox,
        &[],
        &[conversation_event("x1", "conversation.trashed", "c1")],
    );
    let report = &reports[0];
    assert_eq!(report["outcome"], "applied");
    let fired: Vec<(&str, &str, bool)> = report["rules_fired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap(),
                f["event"].as_str().unwrap(),
                f["derived"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fired,
        [
            ("trash-cascade", "x1", false),
            ("delete-cascade", "x1/1", true),
            ("trash-cascade", "x1/2", true)
        ]
    );
    assert_eq!(
        report["rules_fired"][1]["actions"][1],
        json!({"call": "trash_conversation(\"c2\")", "changed": true, "derived_event": "x1/2"})
    );
    let changes: Vec<(&str, &str, &str)> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap(),
                c["field"].as_str().unwrap(),
                c["after"].as_str().map_or("-", |s| s),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("c1", "status", "trashed"),
            ("T", "deleted", "-"),
            ("c2", "status", "trashed")
        ]
    );
}

#[test]
fn dry_run_changes_nothing_and_keeps_the_queue_and_the_event_id() {
    let inbox = setup();
    inbox.enqueue(&lines(&[conversation_created("q1", "c9")]));
    let db = inbox.path("var/inboxd.db");
    let before = (inbox.export(), inbox.outcomes());
    let bytes = std::fs::read(&db).unwrap();
    inbox
        .cmd()
        .arg("dry-run")
        .write_stdin(lines(&[ticket_status("x1", "T", "closed")]))
        .assert()
        .success()
        .stdout(predicate::str::contains("rule cascade-close"));
    assert_eq!((inbox.export(), inbox.outcomes()), before);
    assert_eq!(std::fs::read(&db).unwrap(), bytes);
    // The queued event is still there, and x1 can still be applied.
    inbox.send(&[ticket_status("x1", "T", "closed")]);
    assert_eq!(inbox.outcome("q1").0, "applied");
    assert_eq!(inbox.outcome("x1").0, "applied");
    assert_eq!(inbox.conversation("c2")["status"], "closed");
}

#[test]
fn dry_run_events_see_each_other_in_order() {
    let inbox = setup();
    let reports = dry_run_json(
        &inbox,
        &[],
        &[
            conversation_created("x1", "c3"),
            ticket_created("x2", "U", "c3"),
            ticket_created("x2", "U", "c3"),
        ],
    );
    let outcomes: Vec<&str> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["applied", "applied", "duplicate"]);
    assert!(inbox.export()["conversations"].as_array().unwrap().len() == 2);
}

#[test]
fn dry_run_with_candidate_rules_shows_their_effect() {
    let inbox = setup();
    std::fs::create_dir_all(inbox.path("candidate")).unwrap();
    for entry in std::fs::read_dir(inbox.path("rules")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            inbox.path("candidate").join(entry.file_name()),
        )
        .unwrap();
    }
    // The candidate rules no longer let a trash delete the ticket.
    inbox.write("candidate/trash_cascade.rhai", "");
    let event = [conversation_event("x1", "conversation.trashed", "c1")];
    let live = dry_run_json(&inbox, &[], &event);
    let candidate = dry_run_json(&inbox, &["--rules", "candidate"], &event);
    assert_eq!(live[0]["changes"].as_array().unwrap().len(), 3);
    assert_eq!(candidate[0]["changes"].as_array().unwrap().len(), 1);
    assert_ne!(live[0]["ruleset"], candidate[0]["ruleset"]);
}

#[test]
fn dry_run_shows_rejections_with_their_reason() {
    let inbox = setup();
    inbox
        .cmd()
        .arg("dry-run")
        .write_stdin(lines(&[ticket_created("x1", "U", "c1")]))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "event x1 (ticket.created): rejected: P2: conversation c1 already has ticket T",
        ));
}

#[test]
fn dry_run_refuses_malformed_input() {
    let inbox = setup();
    inbox
        .cmd()
        .arg("dry-run")
        .write_stdin("{}\n")
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "stdin: line 1: missing field `id`",
        ));
}
