//! Timers on one timeline: started by rules, fired as `timer.fired`
//! events in order (due time, record kind, record id, name) before the
//! events that come after them, exactly once, removed with their record.

use serde_json::{json, Value};

use crate::common::*;

/// A rule starting timers: on a ticket's creation, `first` (1 h) and
/// `second` (1 h too: same due, later name); on a conversation's
/// creation, `nudge` (1 h). Timer events mark the ticket.
fn inbox_with_timers() -> Inbox {
    let inbox = Inbox::new();
    inbox.add_rule(
        "start",
        "ticket.created",
        r#"start_ticket_timer(event.ticket, "second", "1h");
           start_ticket_timer(event.ticket, "first", "1h");"#,
    );
    inbox.add_rule(
        "nudge",
        "conversation.created",
        r#"start_conversation_timer(event.conversation, "nudge", "1h");"#,
    );
    inbox.add_rule(
        "mark",
        "timer.fired",
        r#"if event.ticket != () { set_ticket_property(event.ticket, "last", event.timer); }"#,
    );
    inbox
}

fn at(id: &str, event: Value, time: &str) -> Value {
    let mut event = event;
    event["id"] = json!(id);
    event["at"] = json!(time);
    event
}

fn processed_ids(inbox: &Inbox) -> Vec<String> {
    inbox
        .outcomes()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

fn drain_at(inbox: &Inbox, now: &str) {
    inbox
        .cmd()
        .args(["run", "--drain", "--now", now])
        .assert()
        .success();
}

#[test]
fn timers_fire_in_order_before_the_events_after_them() {
    let inbox = inbox_with_timers();
    inbox.enqueue(&lines(&[
        at("e1", conversation_created("", "c1"), "2026-01-01T10:00:00Z"),
        at("e2", ticket_created("", "T", "c1"), "2026-01-01T10:00:00Z"),
        // After the timers are due: they fire first.
        at(
            "e3",
            conversation_event("", "conversation.closed", "c1"),
            "2026-01-01T12:00:00Z",
        ),
    ]));
    drain_at(&inbox, "2026-01-02T00:00:00Z");
    assert_eq!(
        processed_ids(&inbox),
        [
            "e1",
            "e2",
            // Same due time: conversation before ticket, then by id and name.
            "timer/conversation/c1/nudge/2026-01-01T11:00:00Z",
            "timer/ticket/T/first/2026-01-01T11:00:00Z",
            "timer/ticket/T/second/2026-01-01T11:00:00Z",
            "e3",
        ]
    );
    assert_eq!(inbox.ticket("T")["properties"]["last"], "second");
    assert_eq!(inbox.export()["timers"], json!([]));
    let fired = &inbox.changes()[3];
    assert_eq!(fired["type"], "timer.fired");
    assert_eq!(fired["at"], "2026-01-01T11:00:00Z");
    assert_eq!(
        fired["changes"][0],
        json!({"record": "timer", "id": "ticket/T/first", "field": "due",
               "old": "2026-01-01T11:00:00Z", "new": null,
               "event": "timer/ticket/T/first/2026-01-01T11:00:00Z", "rule": null})
    );
    // Each fired once: a later run fires nothing again.
    drain_at(&inbox, "2026-02-01T00:00:00Z");
    assert_eq!(inbox.outcomes().len(), 6);
}

#[test]
fn only_timers_due_by_now_fire_and_overdue_ones_fire_later_in_order() {
    let inbox = inbox_with_timers();
    inbox.enqueue(&lines(&[
        at("e1", conversation_created("", "c1"), "2026-01-01T10:00:00Z"),
        at("e2", ticket_created("", "T", "c1"), "2026-01-01T10:30:00Z"),
    ]));
    drain_at(&inbox, "2026-01-01T10:45:00Z");
    assert_eq!(processed_ids(&inbox), ["e1", "e2"]);
    let timers: Vec<(String, String)> = inbox.export()["timers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().into(),
                t["due"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        timers,
        [
            ("nudge".to_string(), "2026-01-01T11:00:00Z".to_string()),
            ("first".to_string(), "2026-01-01T11:30:00Z".to_string()),
            ("second".to_string(), "2026-01-01T11:30:00Z".to_string()),
        ]
    );
    let listed = inbox.cmd().arg("timers").assert().success();
    assert_eq!(
        String::from_utf8_lossy(&listed.get_output().stdout),
        "2026-01-01T11:00:00Z conversation c1 nudge\n\
         2026-01-01T11:30:00Z ticket T first\n\
         2026-01-01T11:30:00Z ticket T second\n"
    );
    // Restarted much later, with nothing queued: all overdue, in order.
    drain_at(&inbox, "2026-01-05T00:00:00Z");
    assert_eq!(
        processed_ids(&inbox)[2..],
        [
            "timer/conversation/c1/nudge/2026-01-01T11:00:00Z",
            "timer/ticket/T/first/2026-01-01T11:30:00Z",
            "timer/ticket/T/second/2026-01-01T11:30:00Z",
        ]
    );
}

#[test]
fn timers_go_with_their_deleted_or_trashed_record() {
    let inbox = inbox_with_timers();
    inbox.enqueue(&lines(&[
        at("e1", conversation_created("", "c1"), "2026-01-01T10:00:00Z"),
        at("e2", ticket_created("", "T", "c1"), "2026-01-01T10:00:00Z"),
        at(
            "e3",
            json!({"type": "ticket.deleted", "ticket": "T"}),
            "2026-01-01T10:10:00Z",
        ),
    ]));
    drain_at(&inbox, "2026-01-01T10:20:00Z");
    // The ticket's timers are gone; P10 trashed c1, and its timer too.
    assert_eq!(inbox.export()["timers"], json!([]));
    drain_at(&inbox, "2026-01-03T00:00:00Z");
    assert_eq!(processed_ids(&inbox), ["e1", "e2", "e3"]);
}

#[test]
fn a_timer_started_again_for_the_same_time_fires_once_and_never_loops() {
    let inbox = Inbox::new();
    inbox.add_rule(
        "fixed",
        "conversation.created",
        r#"start_conversation_timer(event.conversation, "at-noon", "2026-01-01T12:00:00Z");"#,
    );
    inbox.add_rule(
        "again",
        "timer.fired",
        r#"start_conversation_timer(event.conversation, "at-noon", "2026-01-01T12:00:00Z");"#,
    );
    inbox.enqueue(&lines(&[at(
        "e1",
        conversation_created("", "c1"),
        "2026-01-01T10:00:00Z",
    )]));
    drain_at(&inbox, "2026-01-02T00:00:00Z");
    let outcomes: Vec<(String, String)> = inbox
        .outcomes()
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap().into(),
                o["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    // Started again for the time it fired at, it could only fire as the
    // same event again: that due time is spent.
    let fired = "timer/conversation/c1/at-noon/2026-01-01T12:00:00Z".to_string();
    assert_eq!(
        outcomes,
        [
            ("e1".to_string(), "applied".to_string()),
            (fired, "applied".to_string()),
        ]
    );
    assert_eq!(inbox.export()["timers"], json!([]));
}

#[test]
fn the_running_daemon_fires_a_timer_when_it_comes_due() {
    let inbox = Inbox::new();
    inbox.add_rule(
        "soon",
        "conversation.created",
        r#"start_conversation_timer(event.conversation, "soon", "2s");"#,
    );
    let _daemon = inbox.start(&[]);
    inbox.enqueue(&lines(&[conversation_created("e1", "c1")]));
    inbox.wait_outcome("e1");
    let due = inbox.export()["timers"][0]["due"]
        .as_str()
        .unwrap()
        .to_string();
    let fired = format!("timer/conversation/c1/soon/{due}");
    // Nothing else happens: the idle daemon wakes for it.
    let (outcome, _) = inbox.wait_outcome(&fired);
    assert_eq!(outcome, "applied");
    let row = inbox
        .outcomes()
        .into_iter()
        .find(|o| o["id"] == fired)
        .unwrap();
    let parse = |t: &str| inboxd::domain::event::parse_time(t).unwrap();
    assert!(parse(row["processed_at"].as_str().unwrap()) >= parse(&due));
}

#[test]
fn producers_cannot_send_timer_events_and_rules_cannot_time_what_is_gone() {
    let inbox = Inbox::new();
    let out = inbox
        .cmd()
        .arg("enqueue")
        .write_stdin(r#"{"id":"x","type":"timer.fired","timer":"t","ticket":"T"}"#)
        .assert()
        .failure();
    assert!(
        stderr_of(&out).contains("timer.fired events come from timers"),
        "{}",
        stderr_of(&out)
    );
    inbox.add_rule(
        "bad",
        "conversation.created",
        r#"start_ticket_timer("nope", "t", "1h");"#,
    );
    inbox.send(&[conversation_created("e1", "c1")]);
    let (outcome, reason) = inbox.outcome("e1");
    assert_eq!(outcome, "rejected");
    assert!(reason.unwrap().contains("unknown ticket nope"));
    let inbox = Inbox::new();
    inbox.add_rule(
        "bad",
        "conversation.closed",
        r#"start_conversation_timer(event.conversation, "t", "whenever");"#,
    );
    inbox.send(&[
        conversation_created("e2", "c2"),
        conversation_event("e3", "conversation.closed", "c2"),
    ]);
    let (outcome, reason) = inbox.outcome("e3");
    let reason = reason.unwrap();
    assert_eq!(outcome, "rejected");
    assert!(reason.contains("neither a duration"), "{reason}");
}
