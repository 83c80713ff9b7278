//! Outbound webhooks against a loopback receiver that fails at random and
//! is slow at times, with the daemon killed in the middle: every message
//! arrives, in order, signed, none lost.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::common::*;

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    timestamp: String,
    signature: String,
    body: String,
    pub accepted: bool,
}

/// A receiver on a free loopback port; `answer(n)` says, for the n-th
/// request, the status to give and how long to wait first.
pub fn receiver(
    answer: impl Fn(usize) -> (u16, u64) + Send + 'static,
) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&got);
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = std::collections::HashMap::new();
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    headers.insert(name.trim().to_lowercase(), value.trim().to_string());
                }
            }
            let length: usize = headers
                .get("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let (status, delay_ms) = answer(n);
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            let header = |name: &str| headers.get(name).cloned().unwrap_or_default();
            log.lock().unwrap().push(Received {
                id: header("webhook-id"),
                timestamp: header("webhook-timestamp"),
                signature: header("webhook-signature"),
                body: String::from_utf8_lossy(&body).to_string(),
                accepted: status == 200,
            });
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

fn inbox_with_webhook(url: &str) -> Inbox {
    with_webhook(Inbox::new(), url)
}

/// `inbox` sending its changes and a notification per new conversation to
/// the webhook `hook` at `url`.
pub fn with_webhook(inbox: Inbox, url: &str) -> Inbox {
    let config = inbox.read("config/inboxd.toml");
    inbox.write(
        "config/inboxd.toml",
        &format!(
            "{config}\n[[webhook]]\nname = \"hook\"\nurl = \"{url}\"\nsecret_env = \"TEST_WEBHOOK_SECRET\"\nchanges = true\n"
        ),
    );
    inbox.add_rule(
        "tell",
        "conversation.created",
        "notify(\"hook\", #{conversation: event.conversation});",
    );
    inbox
}

/// The message ids the feed holds for the webhook, in order:
/// `inboxd_<store identity>_<cursor>_<part>`.
fn expected_ids(inbox: &Inbox) -> Vec<String> {
    let store: String = match inbox.database() {
        Some(database) => database
            .connect()
            .query_one("SELECT identity FROM store_identity", &[])
            .unwrap()
            .get(0),
        None => rusqlite::Connection::open(inbox.path("var/inboxd.db"))
            .unwrap()
            .query_row("SELECT identity FROM store_identity", [], |r| r.get(0))
            .unwrap(),
    };
    let mut ids = Vec::new();
    for entry in inbox.changes() {
        let cursor = entry["cursor"].as_i64().unwrap();
        let mut part = 0;
        if entry["outcome"] == "applied" && !entry["changes"].as_array().unwrap().is_empty() {
            ids.push(format!("inboxd_{store}_{cursor}_{part}"));
            part += 1;
        }
        for n in entry["notifications"].as_array().unwrap() {
            if n["webhook"] == "hook" {
                ids.push(format!("inboxd_{store}_{cursor}_{part}"));
                part += 1;
            }
        }
    }
    ids
}

pub fn delivered(got: &Arc<Mutex<Vec<Received>>>) -> Vec<Received> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|r| r.accepted)
        .cloned()
        .collect()
}

#[test]
fn every_message_arrives_in_order_signed_across_failures_and_a_kill() {
    every_message_arrives_in_order_on(Inbox::new());
}

/// Deliveries through a flaky receiver and a SIGKILL (also on PostgreSQL).
pub fn every_message_arrives_in_order_on(inbox: Inbox) {
    // About one request in three fails; one in seven is slow.
    let (url, got) = receiver(|n| {
        let status = if (n * 7 + 3) % 10 < 3 { 500 } else { 200 };
        (status, if n % 7 == 0 { 300 } else { 0 })
    });
    let inbox = with_webhook(inbox, &url);
    let events: Vec<Value> = (0..12)
        .flat_map(|i| {
            [
                conversation_created(&format!("e{i}"), &format!("c{i}")),
                conversation_event(&format!("x{i}"), "conversation.closed", "nope"),
            ]
        })
        .collect();
    let env = [("TEST_WEBHOOK_SECRET", SECRET)];
    let daemon = inbox.spawn_with_env(&[], &env);
    inbox.enqueue(&lines(&events));
    wait_until("some deliveries", || delivered(&got).len() >= 5);
    drop(daemon); // SIGKILL, in the middle of the deliveries
    let before_kill = delivered(&got).len();
    let _daemon = inbox.spawn_with_env(&[], &env);
    let expected = expected_ids(&inbox);
    assert_eq!(
        expected.len(),
        24,
        "12 creations: changes and a notification each"
    );
    assert!(
        before_kill < expected.len(),
        "the kill came after the work was done"
    );
    wait_until("every message", || {
        let ids: std::collections::HashSet<String> =
            delivered(&got).into_iter().map(|r| r.id).collect();
        expected.iter().all(|id| ids.contains(id))
    });

    let key = inboxd::daemon::webhook_signature::SigningKey::from_secret(SECRET).unwrap();
    let mut first_seen: Vec<String> = Vec::new();
    for r in delivered(&got) {
        let timestamp: i64 = r.timestamp.parse().unwrap();
        assert_eq!(key.sign(&r.id, timestamp, &r.body), r.signature, "{}", r.id);
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert!(["inboxd.changes", "inboxd.notification"].contains(&body["type"].as_str().unwrap()));
        if !first_seen.contains(&r.id) {
            first_seen.push(r.id);
        }
    }
    assert_eq!(
        first_seen, expected,
        "in order, none lost, nothing unexpected"
    );
    // A retry sends the very same body: its `timestamp` is when the event
    // happened (the attempt's time is in `webhook-timestamp`).
    let mut bodies: std::collections::HashMap<String, String> = Default::default();
    let mut retried = 0;
    let every_attempt = got.lock().unwrap().clone();
    for r in every_attempt {
        match bodies.get(&r.id) {
            Some(first) => {
                retried += 1;
                assert_eq!(first, &r.body, "{} sent again with another body", r.id);
            }
            None => {
                bodies.insert(r.id.clone(), r.body.clone());
            }
        }
        let body: Value = serde_json::from_str(&r.body).unwrap();
        if body["type"] == "inboxd.changes" {
            assert_eq!(body["timestamp"], body["data"]["at"], "{}", r.body);
        }
    }
    assert!(
        retried > 0,
        "no message was sent twice: the retries were not reached"
    );
    let notification: Value = serde_json::from_str(
        &delivered(&got)
            .into_iter()
            .find(|r| r.body.contains("inboxd.notification"))
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(
        notification["data"]["payload"],
        json!({"conversation": "c0"})
    );
    assert_eq!(notification["data"]["rule"], "tell");
}

#[test]
fn a_dead_receiver_never_holds_up_the_engine_and_status_says_why() {
    // Nothing listens on this port: every attempt fails at once.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let inbox = inbox_with_webhook(&format!("http://127.0.0.1:{port}/"));
    let _daemon = inbox.spawn_with_env(&[], &[("TEST_WEBHOOK_SECRET", SECRET)]);
    let events: Vec<Value> = (0..50)
        .map(|i| conversation_created(&format!("e{i}"), &format!("c{i}")))
        .collect();
    inbox.enqueue(&lines(&events));
    inbox.wait_outcome("e49");
    wait_until("the failure to be recorded", || {
        inbox.status()["webhooks"][0]["last_error"].is_string()
    });
    let status = inbox.status();
    let hook = &status["webhooks"][0];
    assert_eq!(hook["name"], "hook");
    assert_eq!(hook["lag"], 100, "{hook}");
    assert!(hook["next_attempt"].is_string(), "{hook}");
    let listed = inbox.cmd().arg("webhooks").assert().success();
    let text = String::from_utf8_lossy(&listed.get_output().stdout).to_string();
    assert!(
        text.starts_with("hook: 100 message(s) due, last error: no answer"),
        "{text}"
    );
    // The secret is never in the log.
    assert!(!inbox.log().contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
}

#[test]
fn notify_naming_no_webhook_is_a_validate_error() {
    let inbox = inbox_with_webhook("http://127.0.0.1:9/");
    inbox.add_rule("typo", "conversation.closed", "notify(\"hoook\", #{});");
    let out = inbox.cmd().arg("validate").assert().failure();
    let text = stderr_of(&out) + String::from_utf8_lossy(&out.get_output().stdout).as_ref();
    assert!(
        text.contains("no webhook named `hoook`; the config's webhooks: hook"),
        "{text}"
    );
}

#[test]
fn notifications_show_in_dry_run_and_rule_tests_and_only_if_applied() {
    let inbox = inbox_with_webhook("http://127.0.0.1:9/");
    let out = inbox
        .cmd()
        .args(["dry-run", "--format", "json"])
        .write_stdin(lines(&[conversation_created("e1", "c1")]))
        .assert()
        .success();
    let reports: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        reports[0]["notifications"],
        json!([{"webhook": "hook", "payload": {"conversation": "c1"}, "rule": "tell", "event": "e1"}])
    );
    inbox.write(
        "rules/tests/notify.toml",
        r#"
[[test]]
name = "a new conversation is told"
when = [{ id = "e1", type = "conversation.created", conversation = "c7" }]
expect.notifications = [{ webhook = "hook", payload = { conversation = "c7" } }]
"#,
    );
    inbox.cmd().args(["test", "notify"]).assert().success();
    // A rejected event sends nothing.
    inbox.add_rule("refuse", "conversation.created", "reject(\"no\");");
    inbox.send(&[conversation_created("e2", "c2")]);
    let feed = inbox.changes();
    assert_eq!(feed[0]["outcome"], "rejected");
    assert!(feed[0]["notifications"].as_array().unwrap().is_empty());
}

/// `[[webhook]]` is read at start, like `[store]`: a reload says so and
/// keeps the webhooks the delivery threads serve.
#[test]
fn webhooks_cannot_change_while_running() {
    let inbox = inbox_with_webhook("http://127.0.0.1:9/");
    let _daemon = inbox.start(&[]);
    let config = inbox.read("config/inboxd.toml");
    inbox.write(
        "config/inboxd.toml",
        &format!("{config}\n[[webhook]]\nname = \"other\"\nurl = \"http://127.0.0.1:9/\"\nsecret_env = \"OTHER_SECRET\"\n"),
    );
    wait_until("the reload's warning", || {
        inbox
            .log()
            .contains("[[webhook]] cannot change while running")
    });
}
