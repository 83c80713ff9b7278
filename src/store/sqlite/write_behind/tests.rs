//! Writing behind gives what writing in place gives: the same outcomes
//! and state, reads that see the open transaction's writes (records,
//! associations, timers), and writes refused or lost behind the engine
//! that fail the commit.

use std::path::Path;
use std::rc::Rc;

use super::*;
use crate::domain::config::{Config, Synchronous};
use crate::domain::event::Event;
use crate::domain::outcome::Outcome;
use crate::engine::Processor;
use crate::scripting::ruleset::RuleSet;
use crate::store::EngineStore;

/// The shipped rules with auto-close on: timers are started, stopped and
/// fired.
fn rules(dir: &Path) -> RuleSet {
    crate::tools::init::init(dir).unwrap();
    let file = dir.join("config/inboxd.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text.replace(r#"auto_close_after = """#, r#"auto_close_after = "5d""#);
    std::fs::write(&file, text).unwrap();
    RuleSet::load(Config::load(&file).unwrap(), None).unwrap()
}

fn event(id: &str, day: u32, fields: serde_json::Value) -> Event {
    let mut json = serde_json::json!({ "id": id, "at": format!("2026-01-{day:02}T09:00:00Z") });
    json.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    serde_json::from_value(json).unwrap()
}

/// Two batches, one event a line (`id day fields`); each event reads what
/// the ones before it in its batch wrote (a ticket's new conversation, a
/// timer started then stopped by a cascade, another stopped in a later
/// batch, a duplicate), and each batch ends with the timers due.
const BATCHES: [&str; 2] = [
    r#"e1 1 {"type": "conversation.created", "conversation": "c1", "contact": "a@x.com"}
       e2 1 {"type": "conversation.created", "conversation": "c2"}
       e3 1 {"type": "ticket.created", "ticket": "t1", "conversation": "c1"}
       e4 2 {"type": "ticket.associated", "ticket": "t1", "conversation": "c2"}
       e5 2 {"type": "conversation.owner_changed", "conversation": "c2", "owner": "ann"}
       e6 2 {"type": "ticket.status_changed", "ticket": "t1", "status": "waiting_on_contact"}
       e2 3 {"type": "conversation.created", "conversation": "c2"}
       e7 3 {"type": "conversation.created", "conversation": "c3"}
       e8 3 {"type": "ticket.created", "ticket": "t2", "conversation": "c3"}
       e9 3 {"type": "ticket.status_changed", "ticket": "t2", "status": "waiting_on_contact"}
       e10 4 {"type": "conversation.trashed", "conversation": "c3"}"#,
    r#"e11 5 {"type": "conversation.created", "conversation": "c4"}
       e12 5 {"type": "ticket.created", "ticket": "t3", "conversation": "c4"}
       e13 5 {"type": "ticket.status_changed", "ticket": "t3", "status": "waiting_on_contact"}
       e14 6 {"type": "ticket.status_changed", "ticket": "t1", "status": "waiting_on_us"}
       e15 6 {"type": "conversation.closed", "conversation": "nowhere"}
       e16 7 {"type": "ticket.associated", "ticket": "t3", "conversation": "c1"}"#,
];

fn batches() -> Vec<Vec<Event>> {
    let line = |line: &str| {
        let mut parts = line.trim().splitn(3, ' ');
        let (id, day) = (parts.next().unwrap(), parts.next().unwrap());
        event(
            id,
            day.parse().unwrap(),
            serde_json::from_str(parts.next().unwrap()).unwrap(),
        )
    };
    BATCHES
        .iter()
        .map(|b| b.lines().map(line).collect())
        .collect()
}

/// Runs the batches, then everything the store holds, as text. Each event
/// has a processor of its own, whose cache is empty: what the events
/// before it wrote is read from the store. `queued`: as the daemon runs
/// them (`process_queued`, which hands the changes over), else `process`.
fn run(
    store: Rc<dyn EngineStore>,
    rules: RuleSet,
    queued: bool,
    read: impl Fn() -> Store,
) -> Vec<String> {
    let fresh = || Processor::new(store.clone(), rules.clone());
    let mut fired = Vec::new();
    // Nothing is due by the first batch's end; t1's timer (due on the
    // 7th) is stopped in the second, t3's (due on the 10th) fires.
    for (batch, until) in batches().iter().zip(["2026-01-05", "2026-02-01"]) {
        store.begin().unwrap();
        for event in batch {
            if queued {
                fresh()
                    .process_queued(event, &event.to_json(), None)
                    .unwrap();
            } else {
                fresh().process(event, None).unwrap();
            }
        }
        // The timers due, as started and stopped in this transaction.
        let until = format!("{until}T00:00:00Z");
        fired.push(fresh().fire_due_timers(&until, 100).unwrap().len());
        store.commit().unwrap();
    }
    assert_eq!(fired, [0, 1]);
    let held = read();
    let mut all = vec![format!("{:?}", held.all_conversations().unwrap())];
    all.push(format!("{:?}", held.all_tickets().unwrap()));
    all.push(format!("{:?}", held.all_timers().unwrap()));
    for o in held.outcomes(None).unwrap() {
        all.push(format!("{} {} {:?} {:?}", o.seq, o.id, o.outcome, o.reason));
        for c in held.changes_of(&o.id).unwrap() {
            let what = (c.cause, c.rule, c.chain, c.entity, c.id, c.field);
            all.push(format!("  {what:?} {} -> {}", c.before, c.after));
        }
    }
    all
}

fn open(path: &Path) -> Store {
    Store::open(path, Synchronous::Full).unwrap()
}

#[test]
fn writing_behind_gives_what_writing_in_place_gives() {
    let dir = tempfile::tempdir().unwrap();
    let (in_place, behind) = (dir.path().join("in_place.db"), dir.path().join("behind.db"));
    let expected = run(
        Rc::new(open(&in_place)),
        rules(&dir.path().join("a")),
        false,
        || open(&in_place),
    );
    // Behind, as the daemon runs them: the changes handed over, not copied.
    let store = WriteBehind::start(open(&behind), &behind).unwrap();
    let got = run(Rc::new(store), rules(&dir.path().join("b")), true, || {
        open(&behind)
    });
    assert_eq!(got, expected);
    // The run met what it claims to: a cascade, a duplicate, a rejection.
    let text = expected.join("\n");
    for seen in [
        "Duplicate",
        "Rejected",
        "\"t2\"",
        "deleted: true",
        "cascade-close",
    ] {
        assert!(text.contains(seen), "{seen} in {text}");
    }
}

/// A store whose schema refuses the conversation `bad` with `raise`.
fn refusing(path: &Path, raise: &str) -> WriteBehind {
    let store = open(path);
    store
        .connection()
        .execute_batch(&format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON conversations
             WHEN NEW.id = 'bad' BEGIN SELECT RAISE({raise}); END;"
        ))
        .unwrap();
    WriteBehind::start(store, path).unwrap()
}

fn created(id: &str, conversation: &str) -> Event {
    event(
        id,
        1,
        serde_json::json!({"type": "conversation.created", "conversation": conversation}),
    )
}

/// Runs `events` as one batch, as the daemon does (the batch's done events
/// known before it runs), each write waited for or not; a commit that
/// fails is rolled back.
fn run_batch(
    store: &WriteBehind,
    processor: &mut Processor,
    events: &[Event],
    through: bool,
) -> (Vec<Outcome>, Result<()>) {
    store.write_through(through);
    store.begin().unwrap();
    processor
        .expect_batch(events.iter().map(|e| e.id.as_str()))
        .unwrap();
    let outcomes = (events.iter())
        .map(|e| processor.process(e, None).unwrap().outcome)
        .collect();
    let committed = store.commit();
    if committed.is_err() {
        store.rollback().unwrap();
    }
    processor.end_batch();
    (outcomes, committed)
}

#[test]
fn a_write_refused_behind_fails_the_commit_and_written_through_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Rc::new(refusing(&dir.path().join("s.db"), "ABORT, 'refused'"));
    let mut processor = Processor::new(store.clone(), rules(dir.path()));
    let events = [
        created("e1", "c1"),
        created("e2", "bad"),
        created("e3", "c3"),
    ];

    let (outcomes, behind) = run_batch(&store, &mut processor, &events, false);
    assert_eq!(outcomes, [Outcome::Applied; 3]);
    assert!(
        matches!(behind, Err(StoreError::RefusedBehind(_))),
        "{behind:?}"
    );
    assert!(store.conversation("c1").unwrap().is_none());

    let (outcomes, through) = run_batch(&store, &mut processor, &events, true);
    through.unwrap();
    assert_eq!(
        outcomes,
        [Outcome::Applied, Outcome::Failed, Outcome::Applied]
    );
    assert!(store.conversation("c3").unwrap().is_some());
    assert!(store.conversation("bad").unwrap().is_none());
}

/// An event refused after its first row (a ticket written, its
/// association refused): behind the engine no savepoint is taken, and the
/// batch written through again leaves none of that event's rows.
#[test]
fn an_event_refused_half_way_leaves_none_of_its_rows_once_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = open(&path);
    store
        .connection()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON associations
             WHEN NEW.ticket = 't-bad' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    let store = Rc::new(WriteBehind::start(store, &path).unwrap());
    let mut processor = Processor::new(store.clone(), rules(dir.path()));
    let ticket = |id: &str, ticket: &str| {
        let fields =
            serde_json::json!({"type": "ticket.created", "ticket": ticket, "conversation": "c1"});
        event(id, 1, fields)
    };
    let events = [
        created("e1", "c1"),
        ticket("e2", "t-bad"),
        ticket("e3", "t1"),
    ];
    let (_, behind) = run_batch(&store, &mut processor, &events, false);
    assert!(
        matches!(behind, Err(StoreError::RefusedBehind(_))),
        "{behind:?}"
    );
    let (outcomes, through) = run_batch(&store, &mut processor, &events, true);
    through.unwrap();
    assert_eq!(
        outcomes,
        [Outcome::Applied, Outcome::Failed, Outcome::Applied]
    );
    assert!(
        store.ticket("t-bad").unwrap().is_none(),
        "the ticket row stayed"
    );
    assert_eq!(store.ticket("t1").unwrap().unwrap().conversations, ["c1"]);
}

/// `RAISE(ROLLBACK)` stands for the errors on which SQLite rolls the whole
/// transaction back by itself (I/O, a full disk): the writes after it must
/// not land outside a transaction.
#[test]
fn a_transaction_lost_behind_fails_the_commit_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Rc::new(refusing(&path, "ROLLBACK, 'disk gone'"));
    let mut processor = Processor::new(store.clone(), rules(dir.path()));
    store.begin().unwrap();
    for e in [
        created("e1", "c1"),
        created("e2", "bad"),
        created("e3", "c3"),
    ] {
        processor.process(&e, None).unwrap();
    }
    let error = store.commit().unwrap_err();
    assert!(matches!(error, StoreError::TransactionLost(_)), "{error}");
    assert!(error.to_string().contains("disk gone"), "{error}");
    store.rollback().unwrap();
    drop(processor);
    drop(store);
    let held = open(&path);
    assert!(held.all_conversations().unwrap().is_empty());
    assert!(held.outcomes(None).unwrap().is_empty());
}

/// A batch rolled back before its writes were all sent to the thread
/// (fewer than a chunk): none of them lands, and the next batch commits.
#[test]
fn a_rolled_back_batch_leaves_nothing_even_of_writes_not_sent_yet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Rc::new(WriteBehind::start(open(&path), &path).unwrap());
    let mut processor = Processor::new(store.clone(), rules(dir.path()));
    store.begin().unwrap();
    processor.process(&created("e1", "c1"), None).unwrap();
    store.rollback().unwrap();
    store.begin().unwrap();
    processor.process(&created("e2", "c2"), None).unwrap();
    store.commit().unwrap();
    drop(processor);
    drop(store);
    let held = open(&path);
    let ids: Vec<String> = (held.all_conversations().unwrap().into_iter())
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["c2"]);
    let outcomes: Vec<String> = (held.outcomes(None).unwrap().into_iter())
        .map(|o| o.id)
        .collect();
    assert_eq!(outcomes, ["e2"]);
}

/// While a batch commits, which events of the next one are done: those the
/// batch applied or rejected (not visible to the reading connection yet)
/// and those of earlier commits.
#[test]
fn the_next_batch_knows_what_the_committing_one_did() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Rc::new(WriteBehind::start(open(&path), &path).unwrap());
    let mut processor = Processor::new(store.clone(), rules(dir.path()));
    store.begin().unwrap();
    processor.expect_batch(["e1"]).unwrap();
    processor.process(&created("e1", "c1"), None).unwrap();
    store.commit().unwrap();
    processor.end_batch();

    store.begin().unwrap();
    processor.expect_batch(["e2", "e3"]).unwrap();
    processor.process(&created("e2", "c2"), None).unwrap();
    let fields =
        serde_json::json!({ "type": "ticket.created", "ticket": "t", "conversation": "nowhere" });
    let report = processor.process(&event("e3", 1, fields), None).unwrap();
    assert_eq!(report.outcome, Outcome::Rejected);
    // Not committed: the reading connection does not see them yet.
    assert!(store
        .committed_done_among(&["e2", "e3"])
        .unwrap()
        .is_empty());
    let mut ahead: Vec<_> = (processor.done_ahead(&["e1", "e2", "e3", "e4"]).unwrap())
        .into_iter()
        .collect();
    ahead.sort();
    let expected = [("e1", true), ("e2", true), ("e3", true), ("e4", false)];
    let expected: Vec<_> = expected
        .iter()
        .map(|&(id, done)| (id.to_string(), done))
        .collect();
    assert_eq!(ahead, expected);
    store.commit().unwrap();
    assert_eq!(store.committed_done_among(&["e2", "e3"]).unwrap().len(), 2);
}
