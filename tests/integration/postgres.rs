//! The PostgreSQL store: the reference model, crashes, standby daemons
//! and the lease, against a database of each test's own. Skipped, with a
//! message, without `INBOXD_TEST_PG_URL`.

use std::time::{Duration, Instant};

use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use crate::common::*;
use crate::model::{check_on, check_timed_on, event, model_inbox, timed_inbox, Model};
use crate::reliability::{from_env, kill_at_random_points, random_events, slow_down};

/// Streams per property: each makes a database (`PROPTEST_CASES` raises it).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(default_cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases(default_cases),
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn random_streams_agree_with_the_reference_model_on_postgres() {
    const TEST: &str = "random_streams_agree_with_the_reference_model_on_postgres";
    if crate::pg::server(TEST).is_none() {
        return;
    }
    for auto_ticket in [false, true] {
        let strategy = proptest::collection::vec(event(), 1..60);
        runner(6)
            .run(&strategy, |events| {
                let inbox = model_inbox(auto_ticket).on_postgres(TEST).unwrap();
                check_on(&inbox, &events, auto_ticket);
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn timers_agree_with_the_model_on_postgres() {
    const TEST: &str = "timers_agree_with_the_model_on_postgres";
    if crate::pg::server(TEST).is_none() {
        return;
    }
    let strategy = (
        proptest::collection::vec(event(), 1..50),
        proptest::collection::vec(0..90i64, 50),
        0..50usize,
        0..120i64,
    );
    runner(6)
        .run(&strategy, |(events, gaps, split, pause)| {
            let inbox = timed_inbox().on_postgres(TEST).unwrap();
            check_timed_on(&inbox, &events, &gaps, split, pause);
            Ok(())
        })
        .unwrap();
}

#[test]
fn killing_the_daemon_on_postgres_loses_and_repeats_nothing() {
    let Some(inbox) = Inbox::new().on_postgres("killing_the_daemon_on_postgres") else {
        return;
    };
    let events = random_events(from_env("INBOXD_CRASH_EVENTS", 1500), 7);
    slow_down(&inbox);
    kill_at_random_points(&inbox, &events, from_env("INBOXD_CRASH_ROUNDS", 6));
    each_event_once_as_the_model(&inbox, &events);
}

/// Waits for `what`, up to `limit`; how long it took.
fn within(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// The export is the model's, and the outcomes are the events', once each,
/// in queue order: nothing lost, doubled or reordered.
fn each_event_once_as_the_model(inbox: &Inbox, events: &[Value]) {
    let mut model = Model::default();
    for e in events {
        model.apply(e);
    }
    assert_eq!(inbox.export(), model.export());
    let ids: Vec<Value> = inbox.outcomes().iter().map(|o| o["id"].clone()).collect();
    let sent: Vec<Value> = events.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(ids, sent, "nothing lost, doubled or reordered");
}

/// Daemon A holding the lease (log `a.log`), then B standing by (`b.log`).
fn holder_and_standby(inbox: &Inbox) -> (Running, Running) {
    let holder = inbox.spawn_logged("a.log", &[], &[]);
    within(
        Duration::from_secs(60),
        "the first daemon to hold the lease",
        || holder_pid(inbox) == Some(holder.child.id()),
    );
    let standby = inbox.spawn_logged("b.log", &[], &[]);
    within(
        Duration::from_secs(60),
        "the second daemon to stand by",
        || inbox.read("b.log").contains("standing by"),
    );
    (holder, standby)
}

/// `events`, then 1,500 new conversations, each slowed down by
/// `slow_down`'s rule: most random events are duplicates or rejected and
/// run no rule, so a backlog of them alone can be done before a test's
/// kill or cut lands.
fn with_slow_tail(events: &[Value]) -> Vec<Value> {
    let tail = (0..1500).map(|i| conversation_created(&format!("n{i}"), &format!("n{i}")));
    events.iter().cloned().chain(tail).collect()
}

fn holder_pid(inbox: &Inbox) -> Option<u32> {
    let status = inbox.status();
    let holder = status["holder"].as_str()?;
    holder.rsplit(':').next()?.parse().ok()
}

#[test]
fn a_standby_takes_over_within_5_s_of_the_holder_s_death_under_load() {
    let Some(inbox) = Inbox::new().on_postgres("a_standby_takes_over") else {
        return;
    };
    slow_down(&inbox);
    let random = random_events(1200, 5);
    let (first, second) = random.split_at(random.len() / 2);
    let first = with_slow_tail(first);
    let events: Vec<Value> = first.iter().chain(second).cloned().collect();
    inbox.enqueue(&lines(&first));
    let (mut holder, mut standby) = holder_and_standby(&inbox);
    assert_eq!(inbox.status()["running"], true);
    // Under load: the holder is inside the backlog, producers still write.
    within(
        Duration::from_secs(60),
        "the holder to start on the backlog",
        || inbox.outcomes().len() > 50,
    );
    let producer = {
        let lines = lines(second);
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("inboxd"));
        cmd.current_dir(inbox.path(""))
            .env_remove("INBOXD_STORE_URL")
            .args(["enqueue", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(lines.as_bytes())
            .unwrap();
        child
    };
    let queued = inbox.status()["queued"].as_u64().unwrap();
    assert!(queued > 0, "the kill must land with events queued");
    holder.child.kill().unwrap();
    holder.child.wait().unwrap();
    let took = within(
        Duration::from_secs(5),
        "the standby to take the lease",
        || holder_pid(&inbox) == Some(standby.child.id()),
    );
    eprintln!("takeover after SIGKILL of the holder: {took:?}, {queued} events queued");
    let mut producer = producer;
    assert!(producer.wait().unwrap().success());
    within(Duration::from_secs(120), "the standby to finish", || {
        inbox.status()["queued"] == 0 && inbox.outcomes().len() == events.len()
    });
    assert!(standby.is_running());
    each_event_once_as_the_model(&inbox, &events);
}

#[test]
fn status_names_the_holder_and_a_drain_does_not_steal_the_lease() {
    let Some(inbox) = Inbox::new().on_postgres("status_names_the_holder") else {
        return;
    };
    let status = inbox.status();
    assert_eq!(status["running"], false);
    let daemon = inbox.start(&[]);
    let status = inbox.status();
    assert_eq!(status["running"], true);
    let holder = status["holder"].as_str().unwrap();
    assert!(
        holder.ends_with(&format!(":{}", daemon.child.id())),
        "{holder}"
    );
    let refused = inbox.cmd().args(["run", "--drain"]).assert().failure();
    let error = stderr_of(&refused);
    assert!(error.contains("holds the lease"), "{error}");
    // The idle daemon is woken by each producer (LISTEN/NOTIFY): back to
    // back, within 3 s each, where looking at the queue (every 10 s) could
    // not serve the second.
    for (event, conversation) in [("e1", "c1"), ("e2", "c2")] {
        inbox.enqueue(&lines(&[conversation_created(event, conversation)]));
        within(Duration::from_secs(3), "the event to be applied", || {
            inbox.outcomes().iter().any(|o| o["id"] == event)
        });
        assert_eq!(inbox.outcome(event).0, "applied");
    }
    daemon.signal("TERM");
    assert_eq!(daemon.wait(), Some(0));
    assert_eq!(inbox.status()["running"], false);
}

#[test]
fn the_schema_is_versioned_and_a_newer_one_is_refused() {
    let Some(inbox) = Inbox::new().on_postgres("the_schema_is_versioned") else {
        return;
    };
    inbox.enqueue(&lines(&[conversation_created("e1", "c1")]));
    let mut db = inbox.database().unwrap().connect();
    let version: i32 = db
        .query_one("SELECT max(version) FROM inboxd_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, 1);
    db.execute("INSERT INTO inboxd_schema (version) VALUES (99)", &[])
        .unwrap();
    let refused = inbox.cmd().args(["run", "--drain"]).assert().failure();
    let error = stderr_of(&refused);
    assert!(error.contains("newer than this inboxd"), "{error}");
}

#[test]
fn commands_read_the_postgresql_store() {
    let Some(inbox) = Inbox::new().on_postgres("commands_read_the_postgresql_store") else {
        return;
    };
    inbox.send(&[
        conversation_created("e1", "c1"),
        ticket_created("e2", "t1", "c1"),
    ]);
    let status = inbox.status();
    assert_eq!(status["processed"]["applied"], 2);
    assert_eq!(status["queued"], 0);
    assert_eq!(inbox.conversation("c1")["ticket"], "t1");
    assert_eq!(inbox.changes().len(), 2);
    // A dry-run writes nothing.
    let out = inbox
        .cmd()
        .args(["dry-run", "--format", "json"])
        .write_stdin(lines(&[ev(
            "e3",
            "conversation.closed",
            json!({"conversation": "c1"}),
        )]))
        .assert()
        .success();
    let reports: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(reports[0]["outcome"], "applied");
    assert_eq!(inbox.conversation("c1")["status"], "open");
    let password = "hunter2-never-shown";
    let config = inbox.read("config/inboxd.toml");
    let url = &inbox.database().unwrap().url;
    let with_password = url.replacen("://", &format!("://postgres:{password}@"), 1);
    inbox.write(
        "config/inboxd.toml",
        &config.replace(url.as_str(), &with_password),
    );
    let out = inbox.cmd().args(["status"]).assert();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.get_output().stdout),
        stderr_of(&out)
    );
    assert!(!shown.contains(password), "{shown}");
}

/// The holder's connection is cut (as by a network failure or an admin):
/// its batch in flight is lost with the session, the standby takes over,
/// and the old holder, reconnected, stands by instead of committing.
#[test]
fn a_holder_that_loses_its_connection_commits_nothing_more() {
    let Some(inbox) = Inbox::new().on_postgres("a_holder_that_loses_its_connection") else {
        return;
    };
    slow_down(&inbox);
    let events = with_slow_tail(&random_events(900, 9));
    inbox.enqueue(&lines(&events));
    let (holder, mut standby) = holder_and_standby(&inbox);
    within(
        Duration::from_secs(60),
        "the holder to start on the backlog",
        || inbox.outcomes().len() > 50,
    );
    let name = inbox.status()["holder"].as_str().unwrap().to_string();
    let mut db = inbox.database().unwrap().connect();
    let cut = db
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("inboxd {name}")],
        )
        .unwrap();
    assert_eq!(cut, 1, "the holder's connection");
    within(
        Duration::from_secs(5),
        "the standby to take the lease",
        || holder_pid(&inbox) == Some(standby.child.id()),
    );
    within(Duration::from_secs(120), "the standby to finish", || {
        inbox.status()["queued"] == 0
    });
    let mut holder = holder;
    assert!(holder.is_running(), "the old holder stands by");
    assert!(standby.is_running());
    within(
        Duration::from_secs(30),
        "the old holder to stand by",
        || inbox.read("a.log").contains("standing by"),
    );
    each_event_once_as_the_model(&inbox, &events);
}

#[test]
fn the_http_api_on_postgres() {
    let Some(inbox) = Inbox::new().on_postgres("the_http_api_on_postgres") else {
        return;
    };
    let env = [
        ("INBOXD_TOKEN", crate::http::TOKEN),
        ("INBOXD_HUBSPOT_SECRET", crate::http::SECRET),
    ];
    let served = crate::http::serve_inbox(inbox, "", &env);
    crate::http::events_go_in_and_records_come_out_of(served);
}

#[test]
fn webhooks_deliver_every_message_in_order_on_postgres() {
    let Some(inbox) = Inbox::new().on_postgres("webhooks_deliver_on_postgres") else {
        return;
    };
    crate::webhooks::every_message_arrives_in_order_on(inbox);
}

#[test]
fn explain_replay_and_retry_on_postgres() {
    let Some(inbox) = Inbox::new().on_postgres("explain_replay_and_retry_on_postgres") else {
        return;
    };
    inbox.add_rule(
        "fragile",
        "conversation.closed",
        "if event.conversation == \"c2\" { throw \"broken\"; }",
    );
    inbox.send(&[
        conversation_created("e1", "c1"),
        ticket_created("e2", "t1", "c1"),
        conversation_created("e3", "c2"),
        conversation_event("e4", "conversation.closed", "c2"),
    ]);
    assert_eq!(inbox.outcome("e4").0, "failed");
    let out = inbox
        .cmd()
        .args(["explain", "ticket", "t1", "--format", "json"])
        .assert()
        .success();
    let explained: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(
        explained["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["entity"] == "conversation" && c["field"] == "ticket"),
        "{explained}"
    );
    let out = inbox
        .cmd()
        .args(["replay", "--format", "json"])
        .assert()
        .success();
    let replayed: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(replayed["replayed"], 4, "{replayed}");
    assert_eq!(replayed["differences"], json!([]), "{replayed}");
    inbox.write("rules/fragile.rhai", "// mended\n");
    inbox.cmd().args(["retry", "e4"]).assert().success();
    inbox.drain();
    assert_eq!(inbox.outcome("e4").0, "applied");
    assert_eq!(inbox.conversation("c2")["status"], "closed");
}

/// With `sslmode=require` every connection of the daemon is encrypted
/// (rustls), as the server's own view of its sessions says. Skipped when
/// the test server has no TLS.
#[test]
fn with_sslmode_require_the_daemon_s_connections_are_encrypted() {
    let Some(inbox) = Inbox::new().on_postgres("with_sslmode_require") else {
        return;
    };
    let mut db = inbox.database().unwrap().connect();
    let ssl: String = db.query_one("SHOW ssl", &[]).unwrap().get(0);
    if ssl != "on" {
        eprintln!("SKIPPED with_sslmode_require: the test server has no TLS");
        return;
    }
    let url = inbox.database().unwrap().url.clone();
    let required = if url.contains('?') {
        format!("{url}&sslmode=require")
    } else {
        format!("{url}?sslmode=require")
    };
    let config = inbox.read("config/inboxd.toml");
    inbox.write("config/inboxd.toml", &config.replace(&url, &required));
    let daemon = inbox.start(&[]);
    inbox.enqueue(&lines(&[conversation_created("e1", "c1")]));
    assert_eq!(inbox.wait_outcome("e1").0, "applied");
    let sessions: Vec<(String, bool)> = db
        .query(
            "SELECT a.application_name, s.ssl FROM pg_stat_activity a
             JOIN pg_stat_ssl s ON s.pid = a.pid
             WHERE a.datname = current_database() AND a.application_name LIKE 'inboxd%'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(
        sessions.len() >= 2,
        "the daemon and its listener: {sessions:?}"
    );
    assert!(sessions.iter().all(|(_, ssl)| *ssl), "{sessions:?}");
    drop(daemon);
}

/// A daemon that lost the lease stops delivering webhooks: after the
/// standby took over, each new message is sent once, by the new holder.
#[test]
fn only_the_lease_holder_delivers_webhooks() {
    let Some(inbox) = Inbox::new().on_postgres("only_the_lease_holder_delivers") else {
        return;
    };
    let (url, got) = crate::webhooks::receiver(|_| (200, 0));
    let inbox = crate::webhooks::with_webhook(inbox, &url);
    let env = [("TEST_WEBHOOK_SECRET", crate::webhooks::SECRET)];
    let holder = inbox.spawn_logged("a.log", &[], &env);
    within(
        Duration::from_secs(60),
        "the first daemon to hold the lease",
        || holder_pid(&inbox) == Some(holder.child.id()),
    );
    let standby = inbox.spawn_logged("b.log", &[], &env);
    within(
        Duration::from_secs(60),
        "the second daemon to stand by",
        || inbox.read("b.log").contains("standing by"),
    );
    inbox.enqueue(&lines(&[conversation_created("e1", "c1")]));
    within(Duration::from_secs(30), "the first messages", || {
        crate::webhooks::delivered(&got).len() >= 2
    });
    let name = inbox.status()["holder"].as_str().unwrap().to_string();
    let cut = inbox
        .database()
        .unwrap()
        .connect()
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("inboxd {name}")],
        )
        .unwrap();
    assert_eq!(cut, 1);
    within(
        Duration::from_secs(5),
        "the standby to take the lease",
        || holder_pid(&inbox) == Some(standby.child.id()),
    );
    // Past the old holder's next look at the lease (each page, each second).
    std::thread::sleep(Duration::from_secs(2));
    let before = crate::webhooks::delivered(&got).len();
    let events: Vec<Value> = (2..8)
        .map(|i| conversation_created(&format!("e{i}"), &format!("c{i}")))
        .collect();
    inbox.enqueue(&lines(&events));
    within(Duration::from_secs(30), "the new messages", || {
        crate::webhooks::delivered(&got).len() >= before + 12
    });
    std::thread::sleep(Duration::from_secs(2));
    let after: Vec<String> = crate::webhooks::delivered(&got)[before..]
        .iter()
        .map(|r| r.id.clone())
        .collect();
    let distinct: std::collections::BTreeSet<&String> = after.iter().collect();
    assert_eq!(
        after.len(),
        12,
        "6 events: changes and a notification each: {after:?}"
    );
    assert_eq!(
        distinct.len(),
        after.len(),
        "a message sent twice: {after:?}"
    );
}

/// Every connection of a lone daemon cut mid-backlog, twice (as a server
/// restart does): it reconnects, takes the lease again and finishes, each
/// event once, in order.
#[test]
fn a_daemon_whose_connections_are_all_cut_reconnects_and_loses_nothing() {
    let Some(inbox) = Inbox::new().on_postgres("a_daemon_whose_connections_are_all_cut") else {
        return;
    };
    slow_down(&inbox);
    let events = with_slow_tail(&random_events(900, 3));
    inbox.enqueue(&lines(&events));
    let mut daemon = inbox.spawn(&[]);
    let mut db = inbox.database().unwrap().connect();
    for round in 1..=2 {
        within(Duration::from_secs(60), "progress on the backlog", || {
            inbox.outcomes().len() > 100 * round
        });
        within(
            Duration::from_secs(30),
            "the daemon and its listener connected",
            || {
                let sessions: i64 = db
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND application_name LIKE 'inboxd%'",
                        &[],
                    )
                    .unwrap()
                    .get(0);
                sessions >= 2
            },
        );
        let cut = db
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name LIKE 'inboxd%'",
                &[],
            )
            .unwrap();
        assert!(cut >= 2, "the daemon's connection and its listener: {cut}");
        assert!(
            inbox.status()["queued"].as_u64().unwrap() > 0,
            "the backlog was done before cut {round}: the test proves nothing"
        );
    }
    within(Duration::from_secs(120), "the daemon to finish", || {
        inbox.status()["queued"] == 0
    });
    assert!(daemon.is_running());
    assert!(inbox.log().contains("reconnected"), "{}", inbox.log());
    each_event_once_as_the_model(&inbox, &events);
}

/// A user who may only read and write inboxd's tables (no CREATE) runs
/// the daemon and the commands once the schema is made: least privilege.
#[test]
fn a_user_without_create_rights_runs_inboxd_on_a_made_schema() {
    let Some(inbox) = Inbox::new().on_postgres("a_user_without_create_rights") else {
        return;
    };
    inbox.enqueue(&lines(&[conversation_created("e1", "c1")])); // makes the schema
    let database = inbox.database().unwrap();
    let role = format!("inboxd_rw_{}", std::process::id());
    let mut db = database.connect();
    db.batch_execute(&format!(
        "DROP ROLE IF EXISTS {role};
         CREATE ROLE {role} LOGIN;
         REVOKE CREATE ON SCHEMA public FROM PUBLIC;
         GRANT USAGE ON SCHEMA public TO {role};
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};"
    ))
    .unwrap();
    let as_role = database.url.replacen("://", &format!("://{role}@"), 1);
    let as_role = match as_role.split_once('@') {
        // The admin URL may name its own user: the role's comes first.
        Some((head, rest)) if rest.contains('@') => {
            format!("{head}@{}", rest.split_once('@').unwrap().1)
        }
        _ => as_role,
    };
    let config = inbox.read("config/inboxd.toml");
    inbox.write(
        "config/inboxd.toml",
        &config.replace(&database.url, &as_role),
    );
    inbox.enqueue(&lines(&[ticket_created("e2", "t1", "c1")]));
    inbox.drain();
    assert_eq!(inbox.conversation("c1")["ticket"], "t1");
    assert_eq!(inbox.status()["processed"]["applied"], 2);
    db.batch_execute(&format!("DROP OWNED BY {role}")).unwrap();
    drop(db);
    let mut admin =
        postgres::Client::connect(&std::env::var(crate::pg::URL_ENV).unwrap(), postgres::NoTls)
            .unwrap();
    let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS {role}"));
}
