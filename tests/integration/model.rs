//! A reference model of the policies, written straight from POLICIES.md
//! without the rules engine, and a property test: random event streams give
//! the same export from the daemon as from the model.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::common::*;

#[derive(Clone, Debug)]
struct Conv {
    status: &'static str,
    owner: Option<String>,
    ticket: Option<String>,
    contact: Option<String>,
    spam: bool,
}

#[derive(Clone, Debug)]
struct Tick {
    status: String,
    owner: Option<String>,
    properties: BTreeMap<String, String>,
    conversations: Vec<String>,
    deleted: bool,
}

#[derive(Default)]
pub struct Model {
    convs: BTreeMap<String, Conv>,
    tickets: BTreeMap<String, Tick>,
    blocked: BTreeSet<String>,
    done: BTreeSet<String>,
    auto_ticket: bool,
    /// With the shipped auto-close rule on (`auto_close_after = "1h"`):
    /// each ticket's `auto-close` timer, due at this minute.
    auto_close: bool,
    timers: BTreeMap<String, i64>,
    /// The current event's time, in minutes from `BASE`.
    now: i64,
}

impl Model {
    /// A model with the shipped auto-close rule on (after an hour).
    pub fn timed() -> Model {
        Model {
            auto_close: true,
            ..Model::default()
        }
    }
}

/// Event times, in minutes from 2020-01-01T00:00:00Z (under a month).
pub fn time_text(minutes: i64) -> String {
    format!(
        "2020-01-{:02}T{:02}:{:02}:00Z",
        1 + minutes / 1440,
        minutes % 1440 / 60,
        minutes % 60
    )
}

/// How long auto-close waits in these tests, in minutes.
const AUTO_CLOSE_AFTER: i64 = 60;

fn closed_stage(status: &str) -> bool {
    status == "closed"
}

type Outcome = Result<(), String>;

impl Model {
    pub fn apply(&mut self, e: &Value) {
        let id = e["id"].as_str().unwrap().to_string();
        // One timeline: the timers due by the event's time fire first,
        // duplicate or not.
        if let Some(at) = e["at_minutes"].as_i64() {
            self.fire_until(at);
            self.now = at;
        }
        if self.done.contains(&id) {
            return;
        }
        // Every outcome of this model is final (no failures with the
        // shipped rules), so the id is done either way.
        let mut next = Model {
            convs: self.convs.clone(),
            tickets: self.tickets.clone(),
            blocked: self.blocked.clone(),
            done: BTreeSet::new(),
            auto_ticket: self.auto_ticket,
            auto_close: self.auto_close,
            timers: self.timers.clone(),
            now: self.now,
        };
        if next.event(e).is_ok() {
            self.convs = next.convs;
            self.tickets = next.tickets;
            self.blocked = next.blocked;
            self.timers = next.timers;
        }
        self.done.insert(id);
    }

    /// Fires, in order (due, then ticket id), the timers due by `until`:
    /// auto-close closes a ticket still waiting on the contact (P6 then).
    pub fn fire_until(&mut self, until: i64) {
        loop {
            let next = (self.timers.iter())
                .map(|(t, due)| (*due, t.clone()))
                .filter(|(due, _)| *due <= until)
                .min();
            let Some((_, tick)) = next else { return };
            self.timers.remove(&tick);
            let waiting = self
                .tickets
                .get(&tick)
                .is_some_and(|t| !t.deleted && t.status == "waiting_on_contact");
            if waiting {
                self.set_status(&tick, "closed".into());
            }
        }
    }

    /// The auto-close rule, after a ticket's stage changed (or it was
    /// created) at `self.now`.
    fn auto_close_rule(&mut self, tick: &str) {
        if !self.auto_close {
            return;
        }
        if self.tickets[tick].status == "waiting_on_contact" {
            self.timers
                .insert(tick.to_string(), self.now + AUTO_CLOSE_AFTER);
        } else {
            self.timers.remove(tick);
        }
    }

    /// A ticket's status change with P6 and P7.
    fn set_status(&mut self, tick: &str, new: String) {
        let t = self.tickets[tick].clone();
        if t.status == new {
            return;
        }
        let (was_closed, is_closed) = (closed_stage(&t.status), closed_stage(&new));
        self.tickets.get_mut(tick).unwrap().status = new;
        if !was_closed && is_closed {
            for c in &t.conversations {
                let c = self.convs.get_mut(c).unwrap();
                if c.status == "open" {
                    c.status = "closed";
                }
            }
        } else if was_closed && !is_closed && t.conversations.len() == 1 {
            let c = self.convs.get_mut(&t.conversations[0]).unwrap();
            if c.status == "closed" {
                c.status = "open";
            }
        }
        self.auto_close_rule(tick);
    }

    fn live_conv(&self, id: &str) -> Result<Conv, String> {
        match self.convs.get(id) {
            None => Err("unknown".into()),
            Some(c) if c.status == "trashed" => Err("trashed".into()),
            Some(c) => Ok(c.clone()),
        }
    }

    fn live_ticket(&self, id: &str) -> Result<Tick, String> {
        match self.tickets.get(id) {
            None => Err("unknown".into()),
            Some(t) if t.deleted => Err("deleted".into()),
            Some(t) => Ok(t.clone()),
        }
    }

    fn event(&mut self, e: &Value) -> Outcome {
        let s = |k: &str| e[k].as_str().map(str::to_string);
        let conv = s("conversation").unwrap_or_default();
        let tick = s("ticket").unwrap_or_default();
        match e["type"].as_str().unwrap() {
            "conversation.created" => {
                if self.convs.contains_key(&conv) {
                    return Err("exists".into());
                }
                let contact = s("contact");
                let spam = contact.as_ref().is_some_and(|c| self.blocked.contains(c));
                self.convs.insert(
                    conv.clone(),
                    Conv {
                        status: if spam { "closed" } else { "open" },
                        owner: s("owner"),
                        ticket: None,
                        contact,
                        spam,
                    },
                );
                if self.auto_ticket && !spam {
                    let t = format!("ticket-{conv}");
                    if !self.tickets.contains_key(&t) {
                        self.create_ticket(&t, &conv, None, None)?;
                    }
                }
                Ok(())
            }
            "conversation.owner_changed" => {
                let c = self.live_conv(&conv)?;
                let owner = s("owner");
                if c.owner == owner {
                    return Ok(());
                }
                self.convs.get_mut(&conv).unwrap().owner = owner.clone();
                if let Some(t) = c.ticket {
                    if let Some(t) = self.tickets.get_mut(&t).filter(|t| !t.deleted) {
                        t.owner = owner;
                    }
                }
                Ok(())
            }
            "conversation.closed" => {
                let c = self.live_conv(&conv)?;
                if c.status == "open" {
                    self.convs.get_mut(&conv).unwrap().status = "closed";
                }
                Ok(())
            }
            "conversation.reopened" => {
                let c = self.live_conv(&conv)?;
                if c.status == "closed" {
                    self.convs.get_mut(&conv).unwrap().status = "open";
                }
                Ok(())
            }
            "conversation.trashed" => {
                self.live_conv(&conv)?;
                self.trash(&conv);
                Ok(())
            }
            "conversation.marked_spam" => {
                let c = self.live_conv(&conv)?;
                if !c.spam {
                    let c = self.convs.get_mut(&conv).unwrap();
                    c.spam = true;
                    c.status = "closed";
                }
                Ok(())
            }
            "conversation.sender_blocked" => {
                let c = self.live_conv(&conv)?;
                if let Some(contact) = c.contact {
                    self.blocked.insert(contact);
                }
                Ok(())
            }
            "ticket.created" => {
                let owner = s("owner");
                self.create_ticket(&tick, &conv, owner, s("status"))?;
                self.auto_close_rule(&tick);
                Ok(())
            }
            "ticket.associated" => {
                let mut t = self.live_ticket(&tick)?;
                let c = self.live_conv(&conv)?;
                match c.ticket {
                    Some(x) if x == tick => return Ok(()),
                    Some(_) => return Err("P2".into()),
                    None => {}
                }
                t.conversations.push(conv.clone());
                self.tickets.insert(tick.clone(), t);
                self.convs.get_mut(&conv).unwrap().ticket = Some(tick);
                Ok(())
            }
            "ticket.owner_changed" => {
                self.live_ticket(&tick)?;
                self.tickets.get_mut(&tick).unwrap().owner = s("owner");
                Ok(())
            }
            "ticket.status_changed" => {
                self.live_ticket(&tick)?;
                self.set_status(&tick, s("status").unwrap());
                Ok(())
            }
            "ticket.property_changed" => {
                self.live_ticket(&tick)?;
                let t = self.tickets.get_mut(&tick).unwrap();
                let property = s("property").unwrap();
                match s("value") {
                    Some(v) => t.properties.insert(property, v),
                    None => t.properties.remove(&property),
                };
                Ok(())
            }
            "ticket.deleted" => {
                self.live_ticket(&tick)?;
                self.delete(&tick);
                Ok(())
            }
            other => panic!("the generator made {other}"),
        }
    }

    fn create_ticket(
        &mut self,
        tick: &str,
        conv: &str,
        owner: Option<String>,
        status: Option<String>,
    ) -> Outcome {
        if self.tickets.contains_key(tick) {
            return Err("exists".into());
        }
        let c = self.live_conv(conv)?;
        if c.ticket.is_some() {
            return Err("P2".into());
        }
        self.tickets.insert(
            tick.to_string(),
            Tick {
                status: status.unwrap_or_else(|| "new".into()),
                owner: owner.or(c.owner),
                properties: BTreeMap::new(),
                conversations: vec![conv.to_string()],
                deleted: false,
            },
        );
        self.convs.get_mut(conv).unwrap().ticket = Some(tick.to_string());
        Ok(())
    }

    /// P9 then P10, to the end of the cascade.
    fn trash(&mut self, conv: &str) {
        let c = self.convs.get_mut(conv).unwrap();
        if c.status == "trashed" {
            return;
        }
        c.status = "trashed";
        if let Some(t) = c.ticket.clone() {
            self.delete(&t);
        }
    }

    fn delete(&mut self, tick: &str) {
        let t = self.tickets.get_mut(tick).unwrap();
        if t.deleted {
            return;
        }
        t.deleted = true;
        self.timers.remove(tick);
        for c in t.conversations.clone() {
            self.trash(&c);
        }
    }

    pub fn export(&self) -> Value {
        json!({
            "tickets": self.tickets.iter().map(|(id, t)| json!({
                "id": id, "status": t.status, "owner": t.owner, "subject": null,
                "properties": t.properties, "conversations": t.conversations,
                "deleted": t.deleted,
            })).collect::<Vec<_>>(),
            "conversations": self.convs.iter().map(|(id, c)| json!({
                "id": id, "status": c.status, "owner": c.owner, "ticket": c.ticket,
                "inbox": null, "channel": null, "contact": c.contact, "subject": null,
                "spam": c.spam,
            })).collect::<Vec<_>>(),
            "blocked_contacts": self.blocked.iter().collect::<Vec<_>>(),
            "timers": self.timers_export(),
        })
    }

    /// The pending timers, in firing order.
    fn timers_export(&self) -> Vec<Value> {
        let mut timers: Vec<(i64, &String)> =
            self.timers.iter().map(|(t, due)| (*due, t)).collect();
        timers.sort();
        timers
            .into_iter()
            .map(|(due, t)| json!({"record": "ticket", "id": t, "name": "auto-close", "due": time_text(due)}))
            .collect()
    }
}

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &[T]) -> impl Strategy<Value = T> {
    proptest::sample::select(items.to_vec())
}

fn owner() -> impl Strategy<Value = Value> {
    pick(&[json!(null), json!("alice"), json!("bob")])
}

/// One random event; small id pools make collisions, duplicates, unknown
/// targets and P2 violations common.
pub fn event() -> impl Strategy<Value = Value> {
    let conv = || pick(&["c1", "c2", "c3", "c4"]);
    let tick = || pick(&["t1", "t2", "t3"]);
    let status = || pick(&["new", "waiting_on_contact", "waiting_on_us", "closed"]);
    let contact = || pick(&[None, Some("a@x"), Some("b@x")]);
    let body = prop_oneof![
        4 => (conv(), contact(), owner()).prop_map(|(c, contact, o)| {
            let mut e = json!({"type": "conversation.created", "conversation": c, "owner": o});
            if let Some(contact) = contact { e["contact"] = json!(contact); }
            e
        }),
        2 => (conv(), owner()).prop_map(|(c, o)| json!({"type": "conversation.owner_changed", "conversation": c, "owner": o})),
        2 => (conv(), pick(&["conversation.closed", "conversation.reopened", "conversation.marked_spam", "conversation.sender_blocked"]))
            .prop_map(|(c, t)| json!({"type": t, "conversation": c})),
        1 => conv().prop_map(|c| json!({"type": "conversation.trashed", "conversation": c})),
        3 => (tick(), conv(), proptest::option::of(owner()), proptest::option::of(status())).prop_map(|(t, c, o, s)| {
            let mut e = json!({"type": "ticket.created", "ticket": t, "conversation": c});
            if let Some(o) = o { e["owner"] = o; }
            if let Some(s) = s { e["status"] = json!(s); }
            e
        }),
        3 => (tick(), conv()).prop_map(|(t, c)| json!({"type": "ticket.associated", "ticket": t, "conversation": c})),
        2 => (tick(), owner()).prop_map(|(t, o)| json!({"type": "ticket.owner_changed", "ticket": t, "owner": o})),
        4 => (tick(), status()).prop_map(|(t, s)| json!({"type": "ticket.status_changed", "ticket": t, "status": s})),
        1 => (tick(), pick(&[json!("high"), json!(null)])).prop_map(|(t, v)| json!({"type": "ticket.property_changed", "ticket": t, "property": "priority", "value": v})),
        1 => tick().prop_map(|t| json!({"type": "ticket.deleted", "ticket": t})),
    ];
    (0..60u32, body).prop_map(|(n, mut e)| {
        e["id"] = json!(format!("e{n}"));
        e
    })
}

fn check(events: &[Value], auto_ticket: bool) {
    check_on(&model_inbox(auto_ticket), events, auto_ticket);
}

/// The inbox `check_on` expects.
pub fn model_inbox(auto_ticket: bool) -> Inbox {
    if auto_ticket {
        Inbox::with_settings("auto_ticket = true")
    } else {
        Inbox::new()
    }
}

/// Sends `events` to `inbox` (from `model_inbox`); its export and its
/// folded feed must be the model's.
pub fn check_on(inbox: &Inbox, events: &[Value], auto_ticket: bool) {
    inbox.send(events);
    let mut model = Model {
        auto_ticket,
        ..Model::default()
    };
    for e in events {
        model.apply(e);
    }
    let export = inbox.export();
    assert_eq!(export, model.export(), "events: {}", lines(events));
    // The change feed, folded over an empty state, is the export.
    assert_eq!(
        crate::feed::fold(&inbox.changes()),
        export,
        "the folded feed, events: {}",
        lines(events)
    );
}

/// A stream with times (minutes apart, 0 to 90: the one-hour timers come
/// due between events, sometimes several at once), sent in two parts, the
/// daemon stopped between them with "now" somewhere after the first part.
fn check_timed(events: &[Value], gaps: &[i64], split: usize, pause: i64) {
    check_timed_on(&timed_inbox(), events, gaps, split, pause);
}

/// The inbox `check_timed_on` expects.
pub fn timed_inbox() -> Inbox {
    Inbox::with_settings("auto_close_after = \"1h\"")
}

pub fn check_timed_on(inbox: &Inbox, events: &[Value], gaps: &[i64], split: usize, pause: i64) {
    let mut model = Model::timed();
    // Tickets to time from the start: their status changes are common.
    let setup = [
        conversation_created("s1", "c1"),
        conversation_created("s2", "c2"),
        ticket_created("s3", "t1", "c1"),
        ticket_created("s4", "t2", "c2"),
    ];
    let mut minutes = 0;
    let timed: Vec<Value> = setup
        .iter()
        .chain(events)
        .zip(std::iter::repeat_n(&0, setup.len()).chain(gaps))
        .map(|(e, gap)| {
            minutes += gap;
            let mut e = e.clone();
            e["at"] = json!(time_text(minutes));
            e
        })
        .collect();
    let at = |e: &Value| {
        let mut e = e.clone();
        let text = e["at"].as_str().unwrap().to_string();
        let (day, hour, minute): (i64, i64, i64) = (
            text[8..10].parse().unwrap(),
            text[11..13].parse().unwrap(),
            text[14..16].parse().unwrap(),
        );
        e["at_minutes"] = json!((day - 1) * 1440 + hour * 60 + minute);
        e
    };
    let split = split.min(timed.len());
    let (first, second) = timed.split_at(split);
    let stop = first
        .last()
        .map_or(0, |e| at(e)["at_minutes"].as_i64().unwrap())
        + pause;
    inbox.enqueue(&lines(first));
    inbox
        .cmd()
        .args(["run", "--drain", "--now", &time_text(stop)])
        .assert()
        .success();
    for e in first {
        model.apply(&at(e));
    }
    model.fire_until(stop);
    assert_eq!(
        inbox.export(),
        model.export(),
        "after the first part, events: {}",
        lines(&timed)
    );
    if !second.is_empty() {
        inbox.enqueue(&lines(second));
    }
    inbox
        .cmd()
        .args(["run", "--drain", "--now", "2020-02-01T00:00:00Z"])
        .assert()
        .success();
    for e in second {
        model.apply(&at(e));
    }
    model.fire_until(i64::MAX);
    let export = inbox.export();
    assert_eq!(export, model.export(), "events: {}", lines(&timed));
    assert_eq!(
        crate::feed::fold(&inbox.changes()),
        export,
        "the folded feed"
    );
}

proptest! {
    // PROPTEST_CASES raises the number of streams for a long run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(40),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_daemon_agrees_with_the_reference_model(events in proptest::collection::vec(event(), 1..60)) {
        check(&events, false);
    }

    #[test]
    fn timers_agree_with_the_model_on_one_timeline(
        events in proptest::collection::vec(event(), 1..50),
        gaps in proptest::collection::vec(0..90i64, 50),
        split in 0..50usize,
        pause in 0..120i64,
    ) {
        check_timed(&events, &gaps, split, pause);
    }

    #[test]
    fn the_daemon_agrees_with_the_model_with_auto_ticket(events in proptest::collection::vec(event(), 1..40)) {
        check(&events, true);
    }
}

/// A stream of several batches (4,096 events, or 100 ms, each): every batch
/// after the first is read, and which of its events are done learned, while
/// the one before it commits; the state must still be the model's, and
/// exactly the repeated ids duplicates (every outcome here is final, so an
/// id seen before is done). Each event has an id of its own, but every
/// seventh repeats the id of one 4,500 events before, in an earlier batch.
#[test]
fn a_stream_of_several_batches_agrees_with_the_model() {
    for seed in [11, 12] {
        let mut events = crate::reliability::random_events(10_000, seed);
        for (i, event) in events.iter_mut().enumerate() {
            let id = match i {
                i if i >= 4500 && i % 7 == 0 => i - 4500,
                i => i,
            };
            event["id"] = json!(format!("e{id}"));
        }
        let inbox = model_inbox(false);
        check_on(&inbox, &events, false);
        let mut seen = BTreeSet::new();
        let expected: Vec<bool> = events
            .iter()
            .map(|e| !seen.insert(e["id"].as_str().unwrap().to_string()))
            .collect();
        let duplicates: Vec<bool> = (inbox.outcomes().iter())
            .map(|o| o["outcome"] == "duplicate")
            .collect();
        assert_eq!(duplicates, expected);
        assert!(expected.iter().filter(|&&d| d).count() > 700);
    }
}
