//! What a new admin trips over (issue #11): output for people, status,
//! explain, help and man pages.

use predicates::prelude::*;
use serde_json::json;

use crate::common::*;

/// Script calls in dry-run read as a script writes them, and Rhai's type
/// names as the script's words: no `Some(..)`, `None` or `ImmutableString`.
#[test]
fn output_has_no_rust_debug_formatting() {
    let inbox = Inbox::new();
    inbox.add_rule(
        "assign",
        "ticket.created",
        "set_ticket_owner(event.ticket, \"oncall\");\nset_ticket_property(event.ticket, \"p\", ());\n",
    );
    inbox.add_rule(
        "typo",
        "conversation.closed",
        "set_ticket_owner(\"T\", 5);\n",
    );
    inbox.send(&[conversation_created("e1", "c1")]);
    let out = inbox
        .cmd()
        .arg("dry-run")
        .write_stdin(lines(&[
            ticket_created("e2", "T", "c1"),
            conversation_event("e3", "conversation.closed", "c1"),
        ]))
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains(r#"set_ticket_owner("T", "oncall")"#),
        "{text}"
    );
    assert!(
        text.contains(r#"set_ticket_property("T", "p", ())"#),
        "{text}"
    );
    assert!(text.contains("not integer"), "{text}");
    for leak in ["Some(", "None", "ImmutableString", "i64", "&str"] {
        assert!(!text.contains(leak), "{leak} in: {text}");
    }
}

/// `reject()` in a `when` condition names its rule and rejects the event.
#[test]
fn reject_in_a_condition_names_its_rule() {
    let inbox = Inbox::new();
    inbox.write(
        "rules/zz_test.toml",
        "[[rule]]\nname = \"gate\"\non = [\"conversation.created\"]\nscript = \"gate.rhai\"\nwhen = 'if event.conversation == \"bad\" { reject(\"no bad ones\") } else { false }'\n",
    );
    inbox.write("rules/gate.rhai", "");
    inbox.send(&[
        conversation_created("e1", "bad"),
        conversation_created("e2", "good"),
    ]);
    let (outcome, reason) = inbox.outcome("e1");
    assert_eq!(outcome, "rejected");
    assert_eq!(reason.as_deref(), Some("rule gate: no bad ones"));
    assert_eq!(inbox.outcome("e2").0, "applied");
}

/// A failed reload keeps the time the live rules were loaded; a retried
/// event that is applied no longer counts as failed.
#[test]
fn status_tells_the_truth_after_a_failed_reload_and_a_retry() {
    let inbox = Inbox::new();
    inbox.add_rule("broken", "conversation.owner_changed", "throw \"bug\";\n");
    let daemon = inbox.start(&[]);
    inbox.enqueue(&lines(&[
        conversation_created("e1", "c1"),
        ev(
            "e2",
            "conversation.owner_changed",
            json!({"conversation": "c1", "owner": "ann"}),
        ),
    ]));
    assert_eq!(inbox.wait_outcome("e2").0, "failed");
    let loaded = inbox.status()["daemon"].clone();
    inbox.write("rules/pipeline.toml", "[[rule]\nbroken");
    wait_until("the failed reload", || {
        inbox.status()["daemon"]["reload_error"].is_string()
    });
    let after = inbox.status()["daemon"].clone();
    assert_eq!(after["reloaded_at"], loaded["reloaded_at"]);
    assert_eq!(after["ruleset"], loaded["ruleset"]);
    let text = inbox.cmd().arg("status").assert().success();
    let text = String::from_utf8_lossy(&text.get_output().stdout).to_string();
    assert!(
        text.contains(&format!(
            "(loaded {})",
            loaded["started_at"].as_str().unwrap()
        )),
        "{text}"
    );
    drop(daemon);

    let (_, pipeline) = inboxd::tools::init::FILES
        .iter()
        .find(|(p, _)| *p == "rules/pipeline.toml")
        .unwrap();
    inbox.write("rules/pipeline.toml", pipeline);
    inbox.write("rules/broken.rhai", "");
    inbox.cmd().args(["retry", "e2"]).assert().success();
    inbox.drain();
    let status = inbox.status();
    assert_eq!(status["processed"]["applied"], 2, "{status}");
    assert_eq!(status["processed"].get("failed"), None, "{status}");
}

/// `explain ticket T` lists the conversations associated with it.
#[test]
fn explaining_a_ticket_shows_its_conversations_joining_it() {
    let inbox = Inbox::new();
    inbox.send(&two_tickets_events("s"));
    let out = inbox
        .cmd()
        .args(["explain", "ticket", "T"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("conversation c1 ticket: null -> \"T\""),
        "{text}"
    );
    assert!(
        text.contains("conversation c2 ticket: null -> \"T\""),
        "{text}"
    );
    assert!(!text.contains("c3"), "{text}");
}

/// Every `--format` says what it does, and the man pages the main page
/// refers to can be written.
#[test]
fn help_documents_every_option_and_the_man_pages_exist() {
    let inbox = Inbox::new();
    for command in [
        "dry-run", "validate", "test", "replay", "explain", "events", "status",
    ] {
        inbox
            .cmd()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains(
                "--format <FORMAT>\n          Output for people (text) or for programs (json)",
            ));
    }
    inbox.cmd().args(["man", "--dir", "man"]).assert().success();
    let main = inbox.read("man/inboxd.1");
    for page in ["run", "enqueue", "dry-run", "validate", "export", "status"] {
        let roff = format!("inboxd-{page}(1)").replace('-', "\\-");
        assert!(main.contains(&roff), "{page}");
        assert!(
            inbox.path(&format!("man/inboxd-{page}.1")).exists(),
            "{page}"
        );
    }
}

fn validate_stderr(inbox: &Inbox, args: &[&str]) -> String {
    let out = inbox.cmd().arg("validate").args(args).assert().failure();
    stderr_of(&out)
}

/// A typo in a function name and a setting the config does not have are
/// `validate` errors, shown as rustc shows them; the running daemon
/// refuses such a reload and keeps its rules.
#[test]
fn validate_finds_unknown_functions_and_settings_with_a_caret() {
    let inbox = Inbox::new();
    inbox.add_rule(
        "escalate",
        "ticket.created",
        "if settings.lead != () {\n    set_ticket_owner(event.ticket, settings.lead);\n}\nclose_conversaton(event.conversation);\n",
    );
    let stderr = validate_stderr(&inbox, &[]);
    assert!(
        stderr.contains(
            "rules/escalate.rhai:1:13: `settings.lead` is not set in the config's [settings]"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("rules/escalate.rhai:4:1: unknown function `close_conversaton`; did you mean `close_conversation`?"),
        "{stderr}"
    );
    assert!(
        stderr.contains(" 4 | close_conversaton(event.conversation);\n   | ^\n"),
        "{stderr}"
    );
    assert!(stderr.contains("3 error(s)"), "{stderr}");

    // The same typo saved while the daemon runs: refused, rules kept.
    let fixed = Inbox::with_settings("lead = \"ann\"");
    fixed.add_rule(
        "escalate",
        "ticket.created",
        "set_ticket_owner(event.ticket, settings.lead);\n",
    );
    fixed.cmd().arg("validate").assert().success();
    let _daemon = fixed.start(&[]);
    fixed.write(
        "rules/escalate.rhai",
        "set_ticket_ownr(event.ticket, settings.lead);\n",
    );
    wait_until("the refused reload", || {
        fixed.status()["daemon"]["reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("set_ticket_ownr"))
    });
    fixed.enqueue(&lines(&[
        conversation_created("e1", "c1"),
        ticket_created("e2", "T", "c1"),
    ]));
    assert_eq!(fixed.wait_outcome("e2").0, "applied");
    assert_eq!(fixed.ticket("T")["owner"], "ann");
}

/// Rules that cannot work as configured are errors; a script no rule runs
/// is a warning.
#[test]
fn validate_finds_what_cannot_work_and_warns_of_unused_scripts() {
    let inbox = Inbox::new();
    inbox.write("rules/forgotten.rhai", "log(\"never\");\n");
    let out = inbox.cmd().arg("validate").assert().success();
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("warning: ")
            && stderr.contains("forgotten.rhai: no rule of any pipeline runs this script"),
        "{stderr}"
    );

    let no_pipeline = Inbox::new();
    std::fs::remove_file(no_pipeline.path("rules/pipeline.toml")).unwrap();
    assert!(validate_stderr(&no_pipeline, &[]).contains("has no pipeline"));

    let no_closed = Inbox::new();
    let config = no_closed
        .read("config/inboxd.toml")
        .replace("{ id = \"closed\", closed = true }", "{ id = \"done\" }");
    no_closed.write("config/inboxd.toml", &config);
    assert!(validate_stderr(&no_closed, &[]).contains("no stage is closed"));

    let file_as_dir = Inbox::new();
    let config = file_as_dir
        .read("config/inboxd.toml")
        .replace("dir = \"../rules\"", "dir = \"../rules/pipeline.toml\"");
    file_as_dir.write("config/inboxd.toml", &config);
    assert!(validate_stderr(&file_as_dir, &[]).contains("is not a directory"));
}

fn replay_json(inbox: &Inbox, args: &[&str]) -> serde_json::Value {
    let out = inbox
        .cmd()
        .arg("replay")
        .args(args)
        .args(["--format", "json"])
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

/// Settings changed between events: replay with unchanged rules runs each
/// event under the settings it met and finds nothing; a candidate config
/// is used for every event when given.
#[test]
fn replay_runs_each_event_under_the_config_it_met() {
    let inbox = Inbox::new();
    inbox.send(&[conversation_created("e1", "c1")]);
    let config = inbox.read("config/inboxd.toml");
    let auto = config.replace("auto_ticket = false", "auto_ticket = true");
    assert_ne!(auto, config);
    inbox.write("config/inboxd.toml", &auto);
    inbox.send(&[conversation_created("e2", "c2")]);
    assert_eq!(inbox.conversation("c2")["ticket"], "ticket-c2");
    assert_eq!(inbox.conversation("c1")["ticket"], serde_json::Value::Null);

    let report = replay_json(&inbox, &[]);
    assert_eq!(report["compared"], 2);
    assert_eq!(report["differences"], json!([]), "{report}");

    // Every event under the first config: e2 would create no ticket.
    inbox.write("config/candidate.toml", &config);
    let report = replay_json(&inbox, &["--candidate-config", "config/candidate.toml"]);
    let differences = report["differences"].as_array().unwrap();
    assert_eq!(differences.len(), 1, "{report}");
    assert_eq!(differences[0]["event"], "e2");
}

/// Bad arguments are refused before the history is read.
#[test]
fn replay_refuses_bad_windows_and_rules_without_pipeline() {
    let inbox = Inbox::new();
    inbox.send(&[conversation_created("e1", "c1")]);
    inbox
        .cmd()
        .args(["replay", "--since", "yesterday"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "--since \"yesterday\" is not an RFC 3339 time",
        ));
    std::fs::create_dir_all(inbox.path("empty")).unwrap();
    inbox
        .cmd()
        .args(["replay", "--rules", "empty"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("has no pipeline"));
}

/// A user who may read the store but not write it: `status` tells that
/// the daemon runs (its lock is probed with read access), `export` works,
/// and `enqueue` says what is missing. Needs root to switch user; skipped
/// with a message otherwise.
#[test]
fn a_user_who_may_only_read_sees_the_daemon_and_is_told_why_enqueue_fails() {
    let as_nobody = |inbox: &Inbox, args: &[&str], input: &str| {
        let mut child = std::process::Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(assert_cmd::cargo::cargo_bin("inboxd"))
            .args(args)
            .current_dir(inbox.path(""))
            .env_remove("INBOXD_CONFIG")
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let probe = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: switching to user nobody needs root and runuser");
        return;
    }
    let inbox = Inbox::new();
    inbox.send(&[conversation_created("e1", "c1")]);
    let _daemon = inbox.start(&[]);
    // Readable by all, as a store in a world-readable directory is.
    let mut dir = inbox.path("");
    while dir.parent().is_some() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode | 0o005)).unwrap();
        if dir == std::env::temp_dir() {
            break;
        }
        dir.pop();
    }
    let status = as_nobody(&inbox, &["status", "--format", "json"], "");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["running"], true, "{status}");
    let export = as_nobody(&inbox, &["export"], "");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let enqueue = as_nobody(
        &inbox,
        &["enqueue"],
        &lines(&[conversation_created("e2", "c2")]),
    );
    assert!(!enqueue.status.success());
    let stderr = String::from_utf8_lossy(&enqueue.stderr);
    assert!(
        stderr.contains("may not write") && stderr.contains("inboxd.db.queue"),
        "{stderr}"
    );
}

/// A rule may not make what an event may not name: an id with a control
/// character (it would be printed raw) or past the size limits. The event
/// is rejected, naming the rule and the call.
#[test]
fn actions_are_held_to_the_limits_of_events() {
    let inbox = Inbox::new();
    inbox.add_rule(
        "sneaky",
        "conversation.created",
        "if event.conversation == \"c1\" { create_ticket(\"T\\x1b[31m\", event.conversation); }\nif event.conversation == \"c2\" { let s = \"x\"; for i in 0..10 { s += s; } create_ticket(s, event.conversation); }\n",
    );
    inbox.send(&[
        conversation_created("e1", "c1"),
        conversation_created("e2", "c2"),
    ]);
    let (outcome, reason) = inbox.outcome("e1");
    assert_eq!(outcome, "rejected");
    let reason = reason.unwrap();
    assert!(
        reason.contains("rule sneaky: create_ticket(") && reason.contains("control character"),
        "{reason}"
    );
    let (outcome, reason) = inbox.outcome("e2");
    assert_eq!(outcome, "rejected");
    assert!(reason.unwrap().contains("`ticket` is 1024 bytes long"));
    assert_eq!(inbox.export()["tickets"], serde_json::json!([]));
}
