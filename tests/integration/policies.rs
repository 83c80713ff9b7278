//! Every policy of POLICIES.md and every worked example, through the binary.

use serde_json::json;

use crate::common::*;

/// c1 and c2 on ticket T (status `new`), c3 alone on U.
fn two_tickets() -> Inbox {
    let inbox = Inbox::new();
    inbox.send(&two_tickets_events("s"));
    inbox
}

#[test]
fn example_1_closing_a_ticket_closes_its_conversations() {
    let inbox = two_tickets();
    inbox.send(&[ticket_status("e1", "T", "closed")]);
    assert_eq!(inbox.ticket("T")["status"], "closed");
    assert_eq!(inbox.conversation("c1")["status"], "closed");
    assert_eq!(inbox.conversation("c2")["status"], "closed");
    assert_eq!(inbox.conversation("c3")["status"], "open");
}

#[test]
fn example_2_reopening_a_ticket_with_two_conversations_reopens_none() {
    let inbox = two_tickets();
    inbox.send(&[
        ticket_status("e1", "T", "closed"),
        ticket_status("e2", "T", "waiting_on_us"),
    ]);
    assert_eq!(inbox.ticket("T")["status"], "waiting_on_us");
    assert_eq!(inbox.conversation("c1")["status"], "closed");
    assert_eq!(inbox.conversation("c2")["status"], "closed");
}

#[test]
fn example_3_reopening_a_ticket_with_one_conversation_reopens_it() {
    let inbox = two_tickets();
    inbox.send(&[ticket_status("e1", "U", "closed")]);
    assert_eq!(inbox.conversation("c3")["status"], "closed");
    inbox.send(&[ticket_status("e2", "U", "new")]);
    assert_eq!(inbox.ticket("U")["status"], "new");
    assert_eq!(inbox.conversation("c3")["status"], "open");
}

#[test]
fn example_4_owner_sync_is_one_way() {
    let inbox = two_tickets();
    inbox.send(&[ev(
        "e1",
        "conversation.owner_changed",
        json!({"conversation": "c1", "owner": "alice"}),
    )]);
    assert_eq!(inbox.ticket("T")["owner"], "alice");
    inbox.send(&[ev(
        "e2",
        "ticket.owner_changed",
        json!({"ticket": "T", "owner": "bob"}),
    )]);
    assert_eq!(inbox.ticket("T")["owner"], "bob");
    assert_eq!(inbox.conversation("c1")["owner"], "alice");
}

#[test]
fn p5_unassigning_a_conversation_unassigns_its_ticket() {
    let inbox = two_tickets();
    inbox.send(&[
        ev(
            "e1",
            "conversation.owner_changed",
            json!({"conversation": "c2", "owner": "alice"}),
        ),
        ev(
            "e2",
            "conversation.owner_changed",
            json!({"conversation": "c2", "owner": null}),
        ),
    ]);
    assert_eq!(inbox.ticket("T")["owner"], json!(null));
}

#[test]
fn example_5_closing_a_conversation_leaves_its_ticket() {
    let inbox = two_tickets();
    inbox.send(&[conversation_event("e1", "conversation.closed", "c1")]);
    assert_eq!(inbox.conversation("c1")["status"], "closed");
    assert_eq!(inbox.conversation("c2")["status"], "open");
    assert_eq!(inbox.ticket("T")["status"], "new");
}

#[test]
fn example_6_trash_deletes_the_ticket_and_delete_trashes_the_conversations() {
    let inbox = two_tickets();
    inbox.send(&[conversation_event("e1", "conversation.trashed", "c3")]);
    assert_eq!(inbox.conversation("c3")["status"], "trashed");
    assert_eq!(inbox.ticket("U")["deleted"], true);

    inbox.send(&[
        conversation_created("v1", "c4"),
        conversation_created("v2", "c5"),
        ticket_created("v3", "V", "c4"),
        associated("v4", "V", "c5"),
        ev("e2", "ticket.deleted", json!({"ticket": "V"})),
    ]);
    assert_eq!(inbox.ticket("V")["deleted"], true);
    assert_eq!(inbox.conversation("c4")["status"], "trashed");
    assert_eq!(inbox.conversation("c5")["status"], "trashed");
}

#[test]
fn p9_p10_trashing_one_conversation_of_several_trashes_them_all() {
    let inbox = two_tickets();
    inbox.send(&[conversation_event("e1", "conversation.trashed", "c1")]);
    assert_eq!(inbox.ticket("T")["deleted"], true);
    assert_eq!(inbox.conversation("c2")["status"], "trashed");
    assert_eq!(inbox.outcome("e1").0, "applied");
}

#[test]
fn example_7_a_second_ticket_for_a_conversation_is_rejected() {
    let inbox = two_tickets();
    let before = inbox.export();
    inbox.send(&[ticket_created("e1", "T2", "c1")]);
    let (outcome, reason) = inbox.outcome("e1");
    assert_eq!(outcome, "rejected");
    assert!(reason.unwrap().contains("already has ticket T"));
    assert_eq!(inbox.export(), before);
}

#[test]
fn example_8_recent_accounts_cannot_create_tickets_from_the_inbox() {
    let inbox = Inbox::with_settings("account_created = \"2025-01-10\"");
    inbox.send(&[
        conversation_created("e0", "c1"),
        ticket_created("e1", "T", "c1"),
    ]);
    let (outcome, reason) = inbox.outcome("e1");
    assert_eq!(outcome, "rejected");
    assert!(reason.unwrap().contains("P11"));
    assert_eq!(inbox.export()["tickets"], json!([]));
    assert_eq!(inbox.conversation("c1")["ticket"], json!(null));

    let inbox = Inbox::with_settings("account_created = \"2023-05-01\"");
    inbox.send(&[
        conversation_created("e0", "c1"),
        ticket_created("e1", "T", "c1"),
    ]);
    assert_eq!(inbox.outcome("e1").0, "applied");
    assert_eq!(inbox.conversation("c1")["ticket"], "T");
}

#[test]
fn p11_the_cutoff_day_itself_is_gated() {
    let inbox = Inbox::with_settings("account_created = \"2024-04-01\"");
    inbox.send(&[
        conversation_created("e0", "c1"),
        ticket_created("e1", "T", "c1"),
    ]);
    assert_eq!(inbox.outcome("e1").0, "rejected");
}

#[test]
fn p1_auto_ticket_is_off_by_default() {
    let inbox = Inbox::new();
    inbox.send(&[conversation_created("e1", "c1")]);
    assert_eq!(inbox.export()["tickets"], json!([]));
}

#[test]
fn p1_auto_ticket_creates_a_ticket_for_every_new_conversation() {
    let inbox = Inbox::with_settings("auto_ticket = true");
    inbox.send(&[
        ev(
            "e1",
            "conversation.created",
            json!({"conversation": "c1", "owner": "alice"}),
        ),
        conversation_created("e2", "c2"),
    ]);
    let ticket = inbox.ticket("ticket-c1");
    assert_eq!(ticket["conversations"], json!(["c1"]));
    assert_eq!(ticket["owner"], "alice");
    assert_eq!(ticket["status"], "new");
    assert_eq!(inbox.conversation("c2")["ticket"], "ticket-c2");
}

#[test]
fn p1_auto_ticket_respects_the_p11_gate() {
    let inbox = Inbox::with_settings("auto_ticket = true\naccount_created = \"2024-06-01\"");
    inbox.send(&[conversation_created("e1", "c1")]);
    assert_eq!(inbox.outcome("e1").0, "applied");
    assert_eq!(inbox.conversation("c1")["ticket"], json!(null));
}

#[test]
fn p2_a_conversation_cannot_be_associated_with_a_second_ticket() {
    let inbox = two_tickets();
    inbox.send(&[associated("e1", "U", "c1"), associated("e2", "T", "c1")]);
    assert_eq!(inbox.outcome("e1").0, "rejected");
    assert_eq!(inbox.outcome("e2").0, "applied");
    assert_eq!(inbox.conversation("c1")["ticket"], "T");
    assert_eq!(inbox.ticket("U")["conversations"], json!(["c3"]));
    assert_eq!(inbox.ticket("T")["conversations"], json!(["c1", "c2"]));
}

#[test]
fn p2_a_ticket_keeps_its_conversations_in_association_order() {
    let inbox = Inbox::new();
    inbox.send(&[
        conversation_created("e1", "z"),
        conversation_created("e2", "a"),
        conversation_created("e3", "m"),
        ticket_created("e4", "T", "z"),
        associated("e5", "T", "a"),
        associated("e6", "T", "m"),
    ]);
    assert_eq!(inbox.ticket("T")["conversations"], json!(["z", "a", "m"]));
}

#[test]
fn p3_there_is_no_event_that_dissociates() {
    let inbox = two_tickets();
    inbox
        .cmd()
        .arg("enqueue")
        .write_stdin(
            "{\"id\":\"e1\",\"type\":\"ticket.dissociated\",\"ticket\":\"T\",\"conversation\":\"c1\"}\n",
        )
        .assert()
        .failure()
        .stderr(predicates::str::contains("unknown event type"));
    assert_eq!(inbox.conversation("c1")["ticket"], "T");
}

#[test]
fn p2_p3_the_store_itself_refuses_to_break_associations() {
    // Whatever writes to the database, even bypassing the engine.
    let inbox = two_tickets();
    let db = rusqlite::Connection::open(inbox.path("var/inboxd.db")).unwrap();
    for sql in [
        "DELETE FROM associations WHERE conversation = 'c1'",
        "UPDATE associations SET ticket = 'U' WHERE conversation = 'c1'",
        "INSERT INTO associations (conversation, ticket) VALUES ('c1', 'U')",
    ] {
        assert!(db.execute(sql, []).is_err(), "{sql} was allowed");
    }
    drop(db);
    assert_eq!(inbox.conversation("c1")["ticket"], "T");
}

#[test]
fn p4_ticket_properties_are_set_and_cleared() {
    let inbox = two_tickets();
    inbox.send(&[
        ev(
            "e1",
            "ticket.property_changed",
            json!({"ticket": "T", "property": "priority", "value": "high"}),
        ),
        ev(
            "e2",
            "ticket.property_changed",
            json!({"ticket": "T", "property": "team", "value": "billing"}),
        ),
        ev(
            "e3",
            "ticket.property_changed",
            json!({"ticket": "T", "property": "team", "value": null}),
        ),
    ]);
    assert_eq!(inbox.ticket("T")["properties"], json!({"priority": "high"}));
}

#[test]
fn p6_p7_cascades_fire_on_transitions_only() {
    let inbox = two_tickets();
    inbox.send(&[
        conversation_event("e1", "conversation.closed", "c1"),
        ticket_status("e2", "T", "waiting_on_us"),
    ]);
    // open -> open: c1 stays closed, c2 stays open.
    assert_eq!(inbox.conversation("c1")["status"], "closed");
    assert_eq!(inbox.conversation("c2")["status"], "open");

    inbox.send(&[
        ticket_status("e3", "U", "closed"),
        conversation_event("e4", "conversation.reopened", "c3"),
        ticket_status("e5", "U", "closed"),
    ]);
    // closed -> closed changes no conversation (and is a no-op event).
    assert_eq!(inbox.conversation("c3")["status"], "open");
}

#[test]
fn p6_cascade_close_leaves_trashed_conversations_alone() {
    let inbox = Inbox::new();
    // With P9 disabled, a ticket can keep a trashed conversation.
    let pipeline = inbox.read("rules/pipeline.toml").replace(
        "script = \"trash_cascade.rhai\"",
        "script = \"trash_cascade.rhai\"\nenabled = false",
    );
    inbox.write("rules/pipeline.toml", &pipeline);
    inbox.send(&[
        conversation_created("e1", "c1"),
        conversation_created("e2", "c2"),
        ticket_created("e3", "T", "c1"),
        associated("e4", "T", "c2"),
        conversation_event("e5", "conversation.trashed", "c2"),
        ticket_status("e6", "T", "closed"),
    ]);
    assert_eq!(inbox.outcome("e6").0, "applied");
    assert_eq!(inbox.conversation("c1")["status"], "closed");
    assert_eq!(inbox.conversation("c2")["status"], "trashed");
    assert_eq!(inbox.ticket("T")["deleted"], false);
}

#[test]
fn p7_reopen_leaves_an_open_single_conversation_alone() {
    let inbox = two_tickets();
    inbox.send(&[
        ticket_status("e1", "U", "closed"),
        conversation_event("e2", "conversation.reopened", "c3"),
        ticket_status("e3", "U", "new"),
    ]);
    assert_eq!(inbox.conversation("c3")["status"], "open");
    assert_eq!(inbox.outcome("e3").0, "applied");
}

#[test]
fn p8_reopening_a_conversation_by_hand_leaves_its_ticket() {
    let inbox = two_tickets();
    inbox.send(&[
        ticket_status("e1", "U", "closed"),
        conversation_event("e2", "conversation.reopened", "c3"),
    ]);
    assert_eq!(inbox.conversation("c3")["status"], "open");
    assert_eq!(inbox.ticket("U")["status"], "closed");
}

#[test]
fn p12_marking_as_spam_flags_and_closes() {
    let inbox = two_tickets();
    inbox.send(&[conversation_event("e1", "conversation.marked_spam", "c1")]);
    let c1 = inbox.conversation("c1");
    assert_eq!(c1["spam"], true);
    assert_eq!(c1["status"], "closed");
    assert_eq!(inbox.ticket("T")["status"], "new");
}

#[test]
fn p12_blocked_senders_are_spam_on_arrival() {
    let inbox = Inbox::new();
    inbox.send(&[
        ev(
            "e1",
            "conversation.created",
            json!({"conversation": "c1", "contact": "spammer@example.com"}),
        ),
        conversation_event("e2", "conversation.sender_blocked", "c1"),
        ev(
            "e3",
            "conversation.created",
            json!({"conversation": "c2", "contact": "spammer@example.com"}),
        ),
        ev(
            "e4",
            "conversation.created",
            json!({"conversation": "c3", "contact": "ana@example.com"}),
        ),
    ]);
    let export = inbox.export();
    assert_eq!(export["blocked_contacts"], json!(["spammer@example.com"]));
    // Blocking does not touch the conversation it came from.
    assert_eq!(inbox.conversation("c1")["spam"], false);
    let c2 = inbox.conversation("c2");
    assert_eq!(
        (c2["spam"].clone(), c2["status"].clone()),
        (json!(true), json!("closed"))
    );
    assert_eq!(inbox.conversation("c3")["spam"], false);
}

#[test]
fn events_on_trashed_or_deleted_records_are_rejected() {
    let inbox = two_tickets();
    inbox.send(&[
        conversation_event("e1", "conversation.trashed", "c3"),
        conversation_event("e2", "conversation.reopened", "c3"),
        conversation_event("e3", "conversation.trashed", "c3"),
        ev(
            "e4",
            "ticket.owner_changed",
            json!({"ticket": "U", "owner": "x"}),
        ),
        ev("e5", "ticket.deleted", json!({"ticket": "U"})),
    ]);
    for id in ["e2", "e3", "e4", "e5"] {
        let (outcome, reason) = inbox.outcome(id);
        assert_eq!(outcome, "rejected", "{id}");
        let reason = reason.unwrap();
        assert!(
            reason.contains("trash") || reason.contains("deleted"),
            "{reason}"
        );
    }
}

#[test]
fn unknown_targets_are_rejected_with_a_reason() {
    let inbox = Inbox::new();
    inbox.send(&[
        conversation_event("e1", "conversation.closed", "nope"),
        ticket_status("e2", "nope", "closed"),
        ticket_created("e3", "T", "nope"),
    ]);
    assert_eq!(
        inbox.outcome("e1"),
        ("rejected".into(), Some("unknown conversation nope".into()))
    );
    assert_eq!(
        inbox.outcome("e2"),
        ("rejected".into(), Some("unknown ticket nope".into()))
    );
    assert_eq!(inbox.outcome("e3").0, "rejected");
    assert_eq!(inbox.export()["tickets"], json!([]));
}

#[test]
fn an_event_that_changes_nothing_is_applied_and_runs_no_rule() {
    let inbox = two_tickets();
    inbox.send(&[conversation_event("e1", "conversation.closed", "c1")]);
    let out = inbox
        .cmd()
        .args(["dry-run", "--format", "json"])
        .write_stdin(lines(&[conversation_event(
            "e2",
            "conversation.closed",
            "c1",
        )]))
        .assert()
        .success();
    let reports: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(reports[0]["outcome"], "applied");
    assert_eq!(reports[0]["rules_fired"], json!([]));
    assert_eq!(reports[0]["changes"], json!([]));
}

#[test]
fn a_ticket_created_without_owner_takes_its_conversations() {
    let inbox = Inbox::new();
    inbox.send(&[
        ev(
            "e1",
            "conversation.created",
            json!({"conversation": "c1", "owner": "alice"}),
        ),
        ev(
            "e2",
            "conversation.created",
            json!({"conversation": "c2", "owner": "alice"}),
        ),
        ticket_created("e3", "T", "c1"),
        ev(
            "e4",
            "ticket.created",
            json!({"ticket": "U", "conversation": "c2", "owner": null, "status": "closed"}),
        ),
        ev(
            "e5",
            "conversation.created",
            json!({"conversation": "c3", "owner": "alice"}),
        ),
        ev(
            "e6",
            "ticket.created",
            json!({"ticket": "V", "conversation": "c3", "owner": "bob"}),
        ),
    ]);
    // Without an owner, or with a null one, the conversation's owner.
    assert_eq!(inbox.ticket("T")["owner"], "alice");
    assert_eq!(inbox.ticket("U")["owner"], "alice");
    assert_eq!(inbox.ticket("V")["owner"], "bob");
    // Creation in a closed stage is not a transition: it closes nothing.
    assert_eq!(inbox.conversation("c2")["status"], "open");
}

#[test]
fn duplicate_event_ids_are_never_applied_twice() {
    let inbox = two_tickets();
    inbox.send(&[
        ev(
            "e1",
            "ticket.owner_changed",
            json!({"ticket": "T", "owner": "bob"}),
        ),
        ev(
            "e2",
            "ticket.owner_changed",
            json!({"ticket": "T", "owner": "carol"}),
        ),
        ev(
            "e1",
            "ticket.owner_changed",
            json!({"ticket": "T", "owner": "dave"}),
        ),
    ]);
    assert_eq!(inbox.ticket("T")["owner"], "carol");
    let outcomes: Vec<String> = inbox
        .outcomes()
        .iter()
        .filter(|r| r["id"] == "e1")
        .map(|r| r["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["applied", "duplicate"]);
}
