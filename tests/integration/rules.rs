//! Rules as admins write them: validation, errors, limits, rejections.

use predicates::prelude::*;
use serde_json::json;

use crate::common::*;

#[test]
fn the_shipped_rules_are_valid() {
    Inbox::new()
        .cmd()
        .arg("validate")
        .assert()
        .success()
        .stdout(predicate::str::contains("valid: 10 rule(s)"));
}

#[test]
fn validate_names_file_and_line_of_every_error() {
    let inbox = Inbox::new();
    inbox.write("rules/owner_sync.rhai", "let x = 1;\nlet y = ;\n");
    inbox.write("rules/spam_close.rhai", "// fine\n\nif true {\n");
    let pipeline = inbox.read("rules/pipeline.toml");
    inbox.write(
        "rules/pipeline.toml",
        &pipeline.replace("on = [\"ticket.deleted\"]", "on = [\"ticket.vanished\"]"),
    );
    let out = inbox.cmd().arg("validate").assert().failure();
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("owner_sync.rhai:2:"), "{stderr}");
    assert!(stderr.contains("spam_close.rhai:"), "{stderr}");
    assert!(stderr.contains("pipeline.toml:"), "{stderr}");
    assert!(stderr.contains("ticket.vanished"), "{stderr}");
    assert!(stderr.contains("3 error(s)"), "{stderr}");
    // The offending source line is shown.
    assert!(stderr.contains("| let y = ;"), "{stderr}");
}

#[test]
fn validate_refuses_unknown_variables_and_missing_scripts() {
    let inbox = Inbox::new();
    inbox.add_rule("typo", "ticket.deleted", "if evnt.ticket == () { }\n");
    inbox.write(
        "rules/zz_test.toml",
        &format!(
            "{}\n[[rule]]\nname = \"ghost\"\non = [\"ticket.deleted\"]\nscript = \"ghost.rhai\"\n",
            inbox.read("rules/zz_test.toml")
        ),
    );
    inbox.cmd().arg("validate").assert().failure().stderr(
        predicate::str::contains("typo.rhai:1:")
            .and(predicate::str::contains("evnt"))
            .and(predicate::str::contains("zz_test.toml:10:"))
            .and(predicate::str::contains("no script ghost.rhai")),
    );
}

#[test]
fn validate_with_rules_checks_a_candidate_directory() {
    let inbox = Inbox::new();
    inbox.write("candidate/bad.rhai", "let = 3;\n");
    inbox
        .cmd()
        .args(["validate", "--rules", "candidate"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("bad.rhai:1:"));
    inbox.cmd().arg("validate").assert().success();
}

#[test]
fn an_empty_script_is_a_rule_that_does_nothing() {
    let inbox = Inbox::new();
    inbox.add_rule("empty", "conversation.created", "");
    inbox.cmd().arg("validate").assert().success();
    inbox.send(&[conversation_created("e1", "c1")]);
    assert_eq!(inbox.outcome("e1").0, "applied");
}

#[test]
fn a_runaway_script_fails_its_event_and_later_events_go_on() {
    let inbox = Inbox::new();
    inbox.add_rule("forever", "conversation.closed", "loop { }\n");
    inbox.send(&[
        conversation_created("e1", "c1"),
        conversation_event("e2", "conversation.closed", "c1"),
        conversation_created("e3", "c2"),
    ]);
    let (outcome, reason) = inbox.outcome("e2");
    assert_eq!(outcome, "failed");
    let reason = reason.unwrap();
    assert!(reason.contains("forever"), "{reason}");
    assert!(reason.contains("forever.rhai:1:"), "{reason}");
    // Nothing of the failed event stays applied.
    assert_eq!(inbox.conversation("c1")["status"], "open");
    assert_eq!(inbox.outcome("e3").0, "applied");
}

#[test]
fn runaway_recursion_and_growth_are_stopped() {
    let scripts = [
        ("recurse", "fn f(n) { f(n + 1) }\nf(0);\n"),
        ("grow", "let s = \"x\";\nloop { s += s; }\n"),
        ("array", "let a = [];\nloop { a.push(1); }\n"),
    ];
    for (name, script) in scripts {
        let inbox = Inbox::new();
        inbox.add_rule(name, "conversation.created", script);
        inbox.send(&[conversation_created("e1", "c1")]);
        let (outcome, reason) = inbox.outcome("e1");
        assert_eq!(outcome, "failed", "{name}");
        assert!(reason.unwrap().contains(name));
        assert_eq!(inbox.export()["conversations"], json!([]));
    }
}

#[test]
fn a_script_error_after_an_action_undoes_the_action() {
    let inbox = Inbox::new();
    inbox.add_rule(
        "half",
        "conversation.owner_changed",
        "close_conversation(event.conversation);\nthrow \"boom\";\n",
    );
    inbox.send(&[
        conversation_created("e1", "c1"),
        ev(
            "e2",
            "conversation.owner_changed",
            json!({"conversation": "c1", "owner": "x"}),
        ),
    ]);
    let (outcome, reason) = inbox.outcome("e2");
    assert_eq!(outcome, "failed");
    assert!(reason.unwrap().contains("half.rhai:2:"));
    let c1 = inbox.conversation("c1");
    assert_eq!(
        (c1["status"].clone(), c1["owner"].clone()),
        (json!("open"), json!(null))
    );
}

#[test]
fn reject_refuses_the_whole_event_with_the_rules_reason() {
    let inbox = Inbox::new();
    inbox.add_rule(
        "no-bob",
        "conversation.owner_changed",
        "if event.owner == \"bob\" { reject(\"bob is on holiday\"); }\n",
    );
    inbox.send(&[
        conversation_created("e1", "c1"),
        ev(
            "e2",
            "conversation.owner_changed",
            json!({"conversation": "c1", "owner": "bob"}),
        ),
        ev(
            "e3",
            "conversation.owner_changed",
            json!({"conversation": "c1", "owner": "ann"}),
        ),
    ]);
    assert_eq!(
        inbox.outcome("e2"),
        (
            "rejected".into(),
            Some("rule no-bob: bob is on holiday".into())
        )
    );
    assert_eq!(inbox.conversation("c1")["owner"], "ann");
}

#[test]
fn an_invalid_action_rejects_the_event() {
    let inbox = Inbox::new();
    inbox.add_rule(
        "wrong",
        "conversation.created",
        "close_conversation(\"ghost\");\n",
    );
    inbox.send(&[conversation_created("e1", "c1")]);
    let (outcome, reason) = inbox.outcome("e1");
    assert_eq!(outcome, "rejected");
    assert!(reason.unwrap().contains("unknown conversation ghost"));
    assert_eq!(inbox.export()["conversations"], json!([]));
}

/// Conversation c1 with ticket T (events e1, e2), then e3 sets T's owner.
fn set_ticket_owner_on_a_new_ticket(inbox: &Inbox, owner: &str) {
    inbox.send(&[
        conversation_created("e1", "c1"),
        ticket_created("e2", "T", "c1"),
        ev(
            "e3",
            "ticket.owner_changed",
            json!({"ticket": "T", "owner": owner}),
        ),
    ]);
}

#[test]
fn a_rule_cannot_give_a_conversation_a_second_ticket() {
    let inbox = Inbox::new();
    inbox.add_rule(
        "second",
        "ticket.owner_changed",
        "create_ticket(\"T2\", \"c1\");\n",
    );
    set_ticket_owner_on_a_new_ticket(&inbox, "x");
    let (outcome, reason) = inbox.outcome("e3");
    assert_eq!(outcome, "rejected");
    assert!(reason.unwrap().contains("P2"));
    assert_eq!(inbox.ticket("T")["owner"], json!(null));
}

#[test]
fn a_cascade_cycle_fails_at_the_maximum_depth_naming_the_rules() {
    let inbox = Inbox::new();
    inbox.add_rule(
        "ping",
        "ticket.owner_changed",
        "if event.owner == \"a\" { set_ticket_owner(event.ticket, \"b\"); }\n",
    );
    inbox.add_rule(
        "pong",
        "ticket.owner_changed",
        "if event.owner == \"b\" { set_ticket_owner(event.ticket, \"a\"); }\n",
    );
    set_ticket_owner_on_a_new_ticket(&inbox, "a");
    let (outcome, reason) = inbox.outcome("e3");
    assert_eq!(outcome, "failed");
    let reason = reason.unwrap();
    assert!(reason.contains("maximum of 16"), "{reason}");
    assert!(
        reason.contains("ping (e3) -> pong (e3/1) -> ping"),
        "{reason}"
    );
    assert_eq!(inbox.ticket("T")["owner"], json!(null));
}

#[test]
fn a_disabled_rule_does_not_run() {
    let inbox = Inbox::new();
    let pipeline = inbox.read("rules/pipeline.toml").replace(
        "script = \"cascade_close.rhai\"",
        "script = \"cascade_close.rhai\"\nenabled = false",
    );
    inbox.write("rules/pipeline.toml", &pipeline);
    inbox.send(&[
        conversation_created("e1", "c1"),
        ticket_created("e2", "T", "c1"),
        ticket_status("e3", "T", "closed"),
    ]);
    assert_eq!(inbox.conversation("c1")["status"], "open");
}

#[test]
fn scripts_see_settings_and_the_event_time() {
    let inbox = Inbox::with_settings("team = \"support\"");
    inbox.add_rule(
        "show",
        "conversation.created",
        "reject(settings.team + \" \" + event.at + \" \" + event.derived);\n",
    );
    inbox.send(&[conversation_created("e1", "c1")]);
    let reason = inbox.outcome("e1").1.unwrap();
    // `at` was filled in at enqueue time.
    assert!(reason.starts_with("rule show: support 20"), "{reason}");
    assert!(reason.ends_with("false"), "{reason}");
}

#[test]
fn scripts_cannot_change_the_event_or_the_settings() {
    let inbox = Inbox::with_settings("team = \"support\"");
    inbox.add_rule(
        "meddle",
        "conversation.created",
        "if event.conversation == \"c1\" { settings.team = \"sales\"; }\n\
         if event.conversation == \"c2\" { event.conversation = \"c9\"; }\n\
         if event.conversation == \"c4\" { settings = #{}; }\n\
         if event.conversation == \"c5\" { event = #{}; }\n\
         if event.conversation == \"c3\" { reject(settings.team); }\n",
    );
    inbox.send(&[
        conversation_created("e1", "c1"),
        conversation_created("e2", "c2"),
        conversation_created("e4", "c4"),
        conversation_created("e5", "c5"),
        conversation_created("e3", "c3"),
    ]);
    for id in ["e1", "e2", "e4", "e5"] {
        let (outcome, reason) = inbox.outcome(id);
        assert_eq!(outcome, "failed");
        assert!(
            reason.as_deref().unwrap_or("").contains("constant"),
            "{reason:?}"
        );
    }
    // The first rule's attempt changed nothing for the next event.
    assert_eq!(
        inbox.outcome("e3").1.as_deref(),
        Some("rule meddle: support")
    );
}

#[test]
fn a_failed_event_can_be_sent_again_once_the_rules_are_fixed() {
    let inbox = Inbox::new();
    inbox.add_rule("broken", "conversation.created", "throw \"not yet\";\n");
    inbox.send(&[conversation_created("e1", "c1")]);
    assert_eq!(inbox.outcome("e1").0, "failed");
    inbox.write("rules/broken.rhai", "");
    inbox.send(&[conversation_created("e1", "c1")]);
    assert_eq!(inbox.outcome("e1").0, "applied");
    assert_eq!(inbox.conversation("c1")["status"], "open");
}

#[test]
fn the_daemon_refuses_to_start_on_broken_rules() {
    let inbox = Inbox::new();
    inbox.write("rules/owner_sync.rhai", "let = ;\n");
    inbox
        .cmd()
        .args(["run", "--drain"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("owner_sync.rhai:1:"));
}

#[test]
fn scripts_may_live_in_subdirectories_and_their_errors_say_where() {
    let inbox = Inbox::new();
    inbox.write(
        "rules/team/escalate.rhai",
        "reject(\"from a subdirectory\");\n",
    );
    inbox.write(
        "rules/zz_team.toml",
        "[[rule]]\nname = \"escalate\"\non = [\"conversation.created\"]\nscript = \"team/escalate.rhai\"\n",
    );
    // A TOML file below the top is not a pipeline (rules/tests/ holds tests).
    inbox.write("rules/team/not_a_pipeline.toml", "this is not toml at all");
    inbox.cmd().arg("validate").assert().success();
    inbox.send(&[conversation_created("e1", "c1")]);
    assert_eq!(
        inbox.outcome("e1").1.as_deref(),
        Some("rule escalate: from a subdirectory")
    );
    inbox.write("rules/team/escalate.rhai", "let = 1;\n");
    inbox
        .cmd()
        .arg("validate")
        .assert()
        .failure()
        .stderr(predicate::str::contains("team/escalate.rhai:1:"));
}

#[test]
fn scripts_read_the_state_through_the_api() {
    let inbox = Inbox::new();
    inbox.add_rule(
        "reader",
        "ticket.owner_changed",
        r#"let t = ticket(event.ticket);
let c = conversation(t.conversations[0]);
let parts = [
    first_stage(),
    stage_is_closed("closed"),
    stage_is_closed("new"),
    is_blocked("spam@example.com"),
    is_blocked("ana@example.com"),
    c.contact,
    c.ticket,
    t.owner,
    event.previous.owner,
    ticket("nope") == (),
    conversation("nope") == (),
];
reject(parts.reduce(|sum, v| sum + "|" + v, ""));
"#,
    );
    inbox.send(&[
        ev(
            "e1",
            "conversation.created",
            json!({"conversation": "c1", "contact": "ana@example.com"}),
        ),
        ev(
            "e2",
            "conversation.created",
            json!({"conversation": "c2", "contact": "spam@example.com"}),
        ),
        conversation_event("e3", "conversation.sender_blocked", "c2"),
        ticket_created("e4", "T", "c1"),
        ev(
            "e5",
            "ticket.owner_changed",
            json!({"ticket": "T", "owner": "bob"}),
        ),
    ]);
    assert_eq!(
        inbox.outcome("e5").1.as_deref(),
        Some("rule reader: |new|true|false|true|false|ana@example.com|T|bob||true|true")
    );
}

#[test]
fn a_script_may_change_its_own_copy_of_the_event() {
    let inbox = Inbox::new();
    inbox.add_rule(
        "copy",
        "conversation.created",
        "let e = event; e.conversation = \"x\";\n\
         let s = settings; s.auto_ticket = true;\n\
         reject(e.conversation + \" \" + event.conversation + \" \" + settings.auto_ticket);\n",
    );
    inbox.send(&[conversation_created("e1", "c1")]);
    assert_eq!(
        inbox.outcome("e1").1.as_deref(),
        Some("rule copy: x c1 false")
    );
}
