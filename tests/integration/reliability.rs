//! Crashes, hostile scripts, failed events, concurrent producers, damaged
//! databases: nothing lost, nothing applied twice, the daemon goes on.

use predicates::prelude::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};

use crate::common::*;
use crate::model::{event, Model};

/// A deterministic random event stream.
pub fn random_events(count: usize, seed: u8) -> Vec<Value> {
    let mut runner = TestRunner::new_with_rng(
        Default::default(),
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &[seed; 32],
        ),
    );
    let strategy = proptest::collection::vec(event(), count);
    strategy.new_tree(&mut runner).unwrap().current()
}

fn integrity_check(inbox: &Inbox) {
    if inbox.is_postgres() {
        return; // PostgreSQL keeps its own house
    }
    let db = rusqlite::Connection::open(inbox.path("var/inboxd.db")).unwrap();
    let result: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(result, "ok");
}

/// `INBOXD_CRASH_ROUNDS` and `INBOXD_CRASH_EVENTS` raise the number of
/// kills and events for a long run (docs/RELIABILITY.md).
pub fn from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The poison guard's note (`<db>.inflight`), which the daemon writes
/// before each batch: its presence says a batch was started.
fn batch_note(inbox: &Inbox) -> std::path::PathBuf {
    std::fs::create_dir_all(inbox.path("var")).unwrap();
    std::fs::canonicalize(inbox.path("var"))
        .unwrap()
        .join("inboxd.db.inflight")
}

/// Every event a little slower (no change to the state), so that a kill
/// soon after a batch starts lands inside it.
pub fn slow_down(inbox: &Inbox) {
    inbox.write(
        "rules/pause.rhai",
        "let s = \"x\"; for i in 0..14 { s += s; }\nfor i in 0..400 { s.replace(\"x\", \"y\"); }\n",
    );
    inbox.write(
        "rules/zz_pause.toml",
        "[[rule]]\nname = \"pause\"\nscript = \"pause.rhai\"\non = [\
         \"conversation.created\", \"conversation.owner_changed\", \"conversation.closed\", \
         \"conversation.reopened\", \"conversation.trashed\", \"conversation.marked_spam\", \
         \"conversation.sender_blocked\", \"ticket.created\", \"ticket.associated\", \
         \"ticket.owner_changed\", \"ticket.status_changed\", \"ticket.property_changed\", \
         \"ticket.deleted\", \"timer.fired\"]\n",
    );
}

/// Sends `events` in `rounds` parts, each followed by a daemon killed
/// (SIGKILL) once it has started a batch, after a varying delay; then
/// drains what is left. Checks most kills landed with events queued.
pub fn kill_at_random_points(inbox: &Inbox, events: &[Value], rounds: usize) {
    let note = batch_note(inbox);
    let mut mid_stream = 0;
    // Events keep arriving between crashes, and each kill lands once the
    // daemon has started a batch, after a varying delay.
    for (round, chunk) in events.chunks(events.len().div_ceil(rounds)).enumerate() {
        inbox.enqueue(&lines(chunk));
        // A note left by the previous daemon would say nothing of this one.
        let _ = std::fs::remove_file(&note);
        let mut daemon = inbox.spawn(&[]);
        // Watched closely: a release build takes a batch in milliseconds.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !note.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon started no batch"
            );
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        std::thread::sleep(std::time::Duration::from_millis((round as u64 * 3) % 8));
        daemon.child.kill().unwrap();
        daemon.child.wait().unwrap();
        integrity_check(inbox);
        if inbox.status()["queued"].as_u64().unwrap() > 0 {
            mid_stream += 1;
        }
    }
    eprintln!(
        "crash run: {} events, {rounds} kills, {mid_stream} inside a batch with events still queued",
        events.len(),
    );
    assert!(
        mid_stream * 2 >= rounds,
        "only {mid_stream} of {rounds} kills landed while events were queued: the test proves little"
    );
    inbox.drain();
}

#[test]
fn killing_the_daemon_at_random_points_loses_and_repeats_nothing() {
    let events = random_events(from_env("INBOXD_CRASH_EVENTS", 1500), 7);
    let rounds = from_env("INBOXD_CRASH_ROUNDS", 6);
    let inbox = Inbox::new();
    slow_down(&inbox);
    kill_at_random_points(&inbox, &events, rounds);
    let mut model = Model::default();
    for e in &events {
        model.apply(e);
    }
    assert_eq!(inbox.export(), model.export());
    // Every queued event was processed exactly once.
    assert_eq!(inbox.outcomes().len(), events.len());
    integrity_check(&inbox);
}

/// The same with timers (auto-close after an hour, events minutes apart):
/// every timer fires once, none is lost.
#[test]
fn killing_the_daemon_with_timers_pending_fires_each_once() {
    let count = from_env("INBOXD_CRASH_EVENTS", 1500) / 2;
    let rounds = from_env("INBOXD_CRASH_ROUNDS", 6);
    let mut minutes = 0;
    let events: Vec<Value> = random_events(count, 11)
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            minutes += (i as i64 * 37) % 23;
            e["at"] = json!(crate::model::time_text(minutes));
            e["at_minutes"] = json!(minutes);
            e
        })
        .collect();
    let inbox = Inbox::with_settings("auto_close_after = \"1h\"");
    slow_down(&inbox);
    let sent: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.as_object_mut().unwrap().remove("at_minutes");
            e
        })
        .collect();
    kill_at_random_points(&inbox, &sent, rounds);
    let mut model = Model::timed();
    for e in &events {
        model.apply(e);
    }
    model.fire_until(i64::MAX);
    assert_eq!(inbox.export(), model.export());
    let outcomes = inbox.outcomes();
    let timer_events: Vec<&str> = outcomes
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .filter(|id| id.starts_with("timer/"))
        .collect();
    let distinct: std::collections::BTreeSet<&&str> = timer_events.iter().collect();
    assert!(
        !timer_events.is_empty(),
        "no timer fired: the test proves little"
    );
    assert_eq!(distinct.len(), timer_events.len(), "a timer fired twice");
    assert_eq!(outcomes.len(), events.len() + timer_events.len());
    integrity_check(&inbox);
}

/// Kills `enqueue` of a 100,000-event file while its transaction is open
/// (its uncommitted pages are seen growing the queue's WAL): nothing of
/// the batch is queued. Then a whole enqueue queues all of it.
#[test]
fn killing_enqueue_mid_batch_queues_all_or_nothing() {
    let count = 100_000;
    let events: Vec<Value> = (0..count)
        .map(|i| conversation_created(&format!("e{i}"), &format!("c{i}")))
        .collect();
    let inbox = Inbox::new();
    inbox.write("big.jsonl", &lines(&events));
    inbox.enqueue(""); // create the queue first
    let wal = inbox.path("var/inboxd.db.queue-wal");
    let wal_size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    for megabytes in [1u64, 3, 6] {
        let before = wal_size();
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("inboxd"))
            .current_dir(inbox.path(""))
            .args(["enqueue", "big.jsonl"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the enqueue transaction to write", || {
            wal_size() > before + megabytes * 1024 * 1024
        });
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "enqueue finished before the kill");
        assert_eq!(
            inbox.status()["queued"],
            0,
            "a batch was queued in part after a kill past {megabytes} MB"
        );
    }
    inbox
        .cmd()
        .args(["enqueue", "big.jsonl"])
        .assert()
        .success();
    assert_eq!(inbox.status()["queued"], count);
    integrity_check(&inbox);
}

#[test]
fn hostile_scripts_fail_their_event_within_bounds() {
    let cases = [
        (
            "map",
            "let m = #{}; let i = 0; loop { m[\"k\" + i] = i; i += 1; }\n",
            "h.rhai:1:",
        ),
        ("import", "import \"/etc/passwd\" as p;\n", "modules"),
        (
            "env",
            "let f = Fn(\"env\"); let home = f.call(\"HOME\");\n",
            "Function not found",
        ),
        (
            "slow",
            "let s = \"x\"; for i in 0..15 { s += s; }\nloop { let t = s.replace(\"x\", \"y\"); }\n",
            "longer than 2 s",
        ),
    ];
    for (name, script, expected) in cases {
        let inbox = Inbox::new();
        inbox.add_rule("h", "conversation.created", script);
        inbox.send(&[
            conversation_created("e1", "c1"),
            ticket_created("e2", "T", "c1"),
        ]);
        let (outcome, reason) = inbox.outcome("e1");
        assert_eq!(outcome, "failed", "{name}");
        let reason = reason.unwrap();
        assert!(
            reason.contains("rule h: ") && reason.contains(expected),
            "{name}: {reason}"
        );
        // The daemon went on with the next event.
        assert_eq!(inbox.outcome("e2").0, "rejected", "{name}");
    }
}

#[test]
fn scripts_that_break_compile_time_limits_are_refused_by_validate() {
    let nested = format!("let x = {}1{};\n", "(".repeat(300), ")".repeat(300));
    let many_functions: String = (0..300).map(|i| format!("fn f{i}() {{ {i} }}\n")).collect();
    for (name, script) in [
        ("nested", nested),
        ("eval", "eval(\"1\");\n".to_string()),
        ("functions", many_functions),
        ("env", "let home = env(\"HOME\");\n".to_string()),
        ("file", "let f = open_file(\"/etc/passwd\");\n".to_string()),
    ] {
        let inbox = Inbox::new();
        inbox.add_rule("h", "conversation.created", &script);
        let out = inbox.cmd().arg("validate").assert().failure();
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(stderr.contains("h.rhai:"), "{name}: {stderr}");
    }
}

#[test]
fn a_script_linked_from_outside_the_rules_directory_is_refused() {
    let inbox = Inbox::new();
    inbox.write("outside.rhai", "reject(\"escaped\");\n");
    std::os::unix::fs::symlink(inbox.path("outside.rhai"), inbox.path("rules/evil.rhai")).unwrap();
    inbox
        .cmd()
        .arg("validate")
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "evil.rhai: is a link that leads outside the rules directory",
        ));
}

#[test]
fn failed_events_can_be_retried_once_the_rules_are_fixed() {
    let inbox = Inbox::new();
    inbox.add_rule("broken", "conversation.owner_changed", "throw \"bug\";\n");
    inbox.send(&[
        conversation_created("e1", "c1"),
        ev(
            "e2",
            "conversation.owner_changed",
            json!({"conversation": "c1", "owner": "ann"}),
        ),
        ev(
            "e3",
            "conversation.owner_changed",
            json!({"conversation": "c1", "owner": "bob"}),
        ),
    ]);
    inbox
        .cmd()
        .args(["events", "--outcome", "failed"])
        .assert()
        .success()
        .stdout(predicate::str::contains("e2").and(predicate::str::contains("bug")));
    inbox
        .cmd()
        .args(["retry", "e1"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("e1 is not a failed event"));

    inbox.write("rules/broken.rhai", "");
    inbox.cmd().args(["retry", "e2"]).assert().success();
    inbox.drain();
    assert_eq!(inbox.outcome("e2").0, "applied");
    assert_eq!(inbox.conversation("c1")["owner"], "ann");
    inbox.cmd().args(["retry", "--all"]).assert().success();
    inbox.cmd().args(["retry", "--all"]).assert().success(); // nothing twice
    inbox.drain();
    assert_eq!(inbox.outcome("e3").0, "applied");
    assert_eq!(inbox.conversation("c1")["owner"], "bob");
    // Retrying an applied event is refused; nothing is applied twice.
    inbox.cmd().args(["retry", "e2"]).assert().failure();
    let applied = inbox
        .outcomes()
        .iter()
        .filter(|r| r["outcome"] == "applied")
        .count();
    assert_eq!(applied, 3);
}

#[test]
fn concurrent_producers_lose_nothing_and_keep_their_order() {
    let inbox = Inbox::new();
    let _daemon = inbox.start(&[]);
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let dir = inbox.path("");
            std::thread::spawn(move || {
                let bin = assert_cmd::cargo::cargo_bin("inboxd");
                let mut batches = vec![lines(&[conversation_created(
                    &format!("p{p}-0"),
                    &format!("c{p}"),
                )])];
                for b in 0..10 {
                    let batch: Vec<Value> = (0..5)
                        .map(|i| {
                            let n = b * 5 + i + 1;
                            ev(
                                &format!("p{p}-{n}"),
                                "conversation.owner_changed",
                                json!({"conversation": format!("c{p}"), "owner": format!("o{n}")}),
                            )
                        })
                        .collect();
                    batches.push(lines(&batch));
                }
                for batch in batches {
                    let out = std::process::Command::new(&bin)
                        .current_dir(&dir)
                        .arg("enqueue")
                        .stdin(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .and_then(|mut child| {
                            use std::io::Write;
                            child.stdin.take().unwrap().write_all(batch.as_bytes())?;
                            child.wait_with_output()
                        })
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    wait_until("every event", || inbox.outcomes().len() == 4 * 51);
    for p in 0..4 {
        assert_eq!(inbox.conversation(&format!("c{p}"))["owner"], "o50");
    }
    assert!(inbox.outcomes().iter().all(|r| r["outcome"] == "applied"));
}

#[test]
fn a_damaged_database_is_a_clear_error_not_a_crash() {
    let inbox = Inbox::new();
    inbox.send(&[conversation_created("e1", "c1")]);
    let db = inbox.path("var/inboxd.db");
    let mut bytes = std::fs::read(&db).unwrap();
    for b in bytes.iter_mut().take(100) {
        *b = 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    for args in [&["run", "--drain"][..], &["export"], &["enqueue", "-"]] {
        let out = inbox
            .cmd()
            .args(args)
            .write_stdin("")
            .assert()
            .failure()
            .code(1);
        let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert!(stderr.contains("not a database"), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn an_unusable_store_directory_is_a_clear_error() {
    let inbox = Inbox::new();
    inbox.write("blocker", "a file where a directory should be");
    let config = inbox
        .read("config/inboxd.toml")
        .replace("../var/inboxd.db", "../blocker/inboxd.db");
    inbox.write("config/inboxd.toml", &config);
    inbox
        .cmd()
        .args(["run", "--drain"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("blocker"));
}

#[test]
fn a_rule_that_derives_events_without_end_fails_its_event() {
    let inbox = Inbox::new();
    inbox.add_rule(
        "flood",
        "conversation.created",
        "let i = 0;\nloop { set_conversation_owner(event.conversation, \"o\" + i); i += 1; }\n",
    );
    inbox.send(&[
        conversation_created("e1", "c1"),
        conversation_created("e2", "c2"),
    ]);
    let (outcome, reason) = inbox.outcome("e1");
    assert_eq!(outcome, "failed");
    // Whichever bound of an event comes first: its derived events, or
    // the memory its rules hold (each derived event takes over 1 KiB), or
    // its time (on a loaded machine).
    let reason = reason.unwrap();
    assert!(
        reason.contains("more than 100000 derived events")
            || reason.contains("128 MiB")
            || reason.contains("ran longer than"),
        "{reason}"
    );
    assert_eq!(inbox.outcome("e2").0, "failed");
    assert_eq!(inbox.export()["conversations"], json!([]));
}

#[test]
fn input_that_is_not_utf8_names_its_line() {
    let inbox = Inbox::new();
    let mut bytes =
        b"{\"id\":\"a\",\"type\":\"conversation.created\",\"conversation\":\"c1\"}\n".to_vec();
    bytes.extend_from_slice(b"{\"id\":\"b\xff\"}\n");
    inbox
        .cmd()
        .arg("enqueue")
        .write_stdin(bytes)
        .assert()
        .failure()
        .stderr(predicate::str::contains("stdin: line 2: not valid UTF-8"));
    // A byte-order mark is not an error.
    inbox
        .cmd()
        .arg("enqueue")
        .write_stdin(b"\xEF\xBB\xBF{\"id\":\"a\",\"type\":\"conversation.created\",\"conversation\":\"c1\"}\n".to_vec())
        .assert()
        .success();
}

#[test]
fn a_full_disk_is_a_clear_error_and_commits_nothing_half_way() {
    let events = bulky_conversations(3000);
    let inbox = Inbox::new();
    inbox.write("events.jsonl", &lines(&events));
    inbox.enqueue(""); // an empty store

    // Too small even to stage the input (enqueue stages what comes from a
    // pipe in a temporary file before it queues it).
    let piped = "enqueue - < <(cat events.jsonl)";
    let out = with_size_limit(&inbox, 200, piped).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot stage the event"), "{stderr}");
    assert_eq!(inbox.status()["queued"], 0, "a batch was queued in part");
    // Room to stage it, not to queue it; and a regular file, queued as it
    // is read, for which there is no room either.
    let input_kb = std::fs::metadata(inbox.path("events.jsonl")).unwrap().len() / 1024;
    for (blocks, args) in [
        (input_kb as u32 * 5 / 4, piped),
        (200, "enqueue events.jsonl"),
        (input_kb as u32 / 2, "enqueue events.jsonl"),
    ] {
        let out = with_size_limit(&inbox, blocks, args).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("cannot write to the queue"),
            "{args}: {stderr}"
        );
        assert_eq!(inbox.status()["queued"], 0, "a batch was queued in part");
    }

    inbox
        .cmd()
        .args(["enqueue", "events.jsonl"])
        .assert()
        .success();
    let size_kb = std::fs::metadata(inbox.path("var/inboxd.db.queue"))
        .unwrap()
        .len()
        / 1024;
    let out = with_size_limit(&inbox, size_kb as u32 * 2 + 200, "run --drain")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("disk"));
    let status = inbox.status();
    let applied = status["processed"]["applied"].as_u64().unwrap_or(0);
    assert_eq!(
        applied + status["queued"].as_u64().unwrap(),
        3000,
        "{status}"
    );
    assert!(applied < 3000, "the limit did not bite");

    inbox.drain();
    assert_eq!(
        inbox.export()["conversations"].as_array().unwrap().len(),
        3000
    );
    integrity_check(&inbox);
}

#[test]
fn a_queued_entry_that_cannot_be_read_fails_without_blocking_the_queue() {
    let inbox = Inbox::new();
    inbox.enqueue(&lines(&[conversation_created("e1", "c1")]));
    // Written by something other than `enqueue` (an older version, a hand).
    let db = rusqlite::Connection::open(inbox.path("var/inboxd.db.queue")).unwrap();
    db.execute(
        "INSERT INTO queue (event_id, body, enqueued_at) VALUES ('bad', '{\"id\":\"bad\"}', 'now')",
        [],
    )
    .unwrap();
    drop(db);
    inbox.enqueue(&lines(&[conversation_created("e2", "c2")]));
    inbox.drain();
    let (outcome, reason) = inbox.outcome("bad");
    assert_eq!(outcome, "failed");
    assert!(reason.unwrap().contains("cannot be read"));
    assert_eq!(inbox.outcome("e2").0, "applied");
    assert_eq!(inbox.status()["queued"], 0);
}

/// The daemon writes behind its engine: a row the database refuses is
/// known only after later events were evaluated. The batch then runs
/// again, each write waited for, and the event fails alone.
#[test]
fn an_event_whose_rows_the_database_refuses_fails_alone_in_its_batch() {
    let inbox = Inbox::new();
    inbox.enqueue("");
    inbox.drain(); // creates the store
    let db = rusqlite::Connection::open(inbox.path("var/inboxd.db")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON conversations
         WHEN NEW.id = 'bad' BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END;",
    )
    .unwrap();
    drop(db);
    let mut events: Vec<Value> = (0..50)
        .map(|i| conversation_created(&format!("e{i}"), &format!("c{i}")))
        .collect();
    events.insert(20, conversation_created("e-bad", "bad"));
    inbox.enqueue(&lines(&events));
    let out = inbox.cmd().args(["run", "--drain"]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the batch runs again"), "{stderr}");

    let (outcome, reason) = inbox.outcome("e-bad");
    assert_eq!(outcome, "failed");
    assert!(reason.unwrap().contains("refused by a trigger"));
    let outcomes = inbox.outcomes();
    assert_eq!(outcomes.len(), 51, "each event once: {outcomes:?}");
    let applied = outcomes.iter().filter(|o| o["outcome"] == "applied");
    assert_eq!(applied.count(), 50);
    assert_eq!(
        inbox.export()["conversations"].as_array().unwrap().len(),
        50
    );
    integrity_check(&inbox);
}
