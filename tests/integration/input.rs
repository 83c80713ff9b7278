//! Bad input is refused before it enters the queue, naming line and problem.

use crate::common::*;
use predicates::prelude::*;

fn queue_is_empty(inbox: &Inbox) {
    inbox.drain();
    assert_eq!(inbox.outcomes(), Vec::<serde_json::Value>::new());
}

#[test]
fn each_kind_of_malformed_line_is_refused_with_its_line_number() {
    let good = r#"{"id":"ok","type":"conversation.created","conversation":"c1"}"#;
    let cases = [
        ("{not json", "not valid JSON"),
        (
            r#"{"type":"conversation.closed","conversation":"c1"}"#,
            "missing field `id`",
        ),
        (r#"{"id":"e"}"#, "missing field `type`"),
        (
            r#"{"id":"e","type":"conversation.melted","conversation":"c1"}"#,
            "unknown event type",
        ),
        (
            r#"{"id":"e","type":"conversation.closed","conversation":42}"#,
            "`conversation` must be a string, not 42",
        ),
        (
            r#"{"id":"e","type":"conversation.closed","conversation":"c1","at":1700000000}"#,
            "`at` must be a string (an RFC 3339 time)",
        ),
        (
            r#"{"id":"e","type":"conversation.closed","conversation":"c1","conversation":"c2"}"#,
            "`conversation` is given twice",
        ),
        (
            r#"{"id":"e\u0007","type":"conversation.closed","conversation":"c1"}"#,
            "`id` contains a control character",
        ),
        (
            r#"{"id":"e","type":"conversation.closed"}"#,
            "missing field `conversation`",
        ),
        (
            r#"{"id":"e","type":"ticket.status_changed","ticket":"t","status":"done"}"#,
            "unknown status",
        ),
        (
            r#"{"id":"e","type":"ticket.property_changed","ticket":"t","property":"p"}"#,
            "missing field `value`",
        ),
        (
            r#"{"id":"e","type":"conversation.closed","conversation":"c1","at":"noon"}"#,
            "RFC 3339",
        ),
        (r#"["id"]"#, "JSON object"),
    ];
    for (bad, expected) in cases {
        let inbox = Inbox::new();
        inbox
            .cmd()
            .arg("enqueue")
            .write_stdin(format!("{good}\n\n{bad}\n"))
            .assert()
            .failure()
            .stderr(predicate::str::contains("line 3:").and(predicate::str::contains(expected)));
        queue_is_empty(&inbox);
    }
}

/// A file is queued as it is read (a pipe is staged first): a bad line
/// after thousands of good ones, read by then, still leaves the queue
/// empty, whether the file is named or redirected to standard input.
#[test]
fn a_bad_line_deep_in_a_file_queues_nothing() {
    let good: String = (0..5000)
        .map(|i| {
            format!(
                "{{\"id\":\"e{i}\",\"type\":\"conversation.created\",\"conversation\":\"c{i}\"}}\n"
            )
        })
        .collect();
    let inbox = Inbox::new();
    inbox.write("events.jsonl", &format!("{good}{{not json\n"));
    inbox
        .cmd()
        .args(["enqueue", "events.jsonl"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "events.jsonl: line 5001: not valid JSON",
        ));
    let redirected = || {
        let file = std::fs::File::open(inbox.path("events.jsonl")).unwrap();
        (inbox.process().args(["enqueue", "-"]).stdin(file))
            .output()
            .unwrap()
    };
    let out = redirected();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stdin: line 5001: not valid JSON"),
        "{stderr}"
    );
    queue_is_empty(&inbox);
    // And the same file, mended, is queued whole both ways.
    inbox.write("events.jsonl", &good);
    inbox
        .cmd()
        .args(["enqueue", "events.jsonl"])
        .assert()
        .success();
    assert!(redirected().status.success());
    inbox.drain();
    let outcomes = inbox.outcomes();
    assert_eq!(outcomes.len(), 10_000);
    assert_eq!(outcomes[9999]["outcome"], "duplicate");
}

#[test]
fn the_error_is_one_line_and_names_the_file() {
    let inbox = Inbox::new();
    inbox.write("events.jsonl", "{\"id\":1}\n");
    let out = inbox
        .cmd()
        .args(["enqueue", "events.jsonl"])
        .assert()
        .failure()
        .code(1);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("events.jsonl: line 1:"), "{stderr}");
}

#[test]
fn a_missing_file_or_config_is_a_clear_error() {
    let inbox = Inbox::new();
    inbox
        .cmd()
        .args(["enqueue", "nowhere.jsonl"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("cannot read nowhere.jsonl"));
    inbox
        .cmd()
        .args(["--config", "missing.toml", "export"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("missing.toml"));
}

#[test]
fn an_invalid_config_names_file_and_line() {
    let inbox = Inbox::new();
    let config = inbox.read("config/inboxd.toml");
    inbox.write(
        "config/inboxd.toml",
        &config.replace("[rules]", "[rules]\nspeed = 3"),
    );
    // The line after `[rules]`, wherever the shipped config has it.
    let line = config.lines().position(|l| l == "[rules]").unwrap() + 2;
    inbox.cmd().arg("validate").assert().failure().stderr(
        predicate::str::contains(format!("inboxd.toml:{line}:"))
            .and(predicate::str::contains("speed")),
    );
}

#[test]
fn config_is_found_through_the_environment_and_after_the_subcommand() {
    let inbox = Inbox::new();
    std::fs::rename(inbox.path("config"), inbox.path("etc")).unwrap();
    inbox
        .cmd()
        .env("INBOXD_CONFIG", "etc/inboxd.toml")
        .arg("validate")
        .assert()
        .success();
    inbox.cmd().arg("validate").assert().failure();
    inbox
        .cmd()
        .args(["export", "--config", "etc/inboxd.toml"])
        .assert()
        .success();
}
