//! Processing one event in two steps. **Evaluate**: the primary change,
//! the rules, the breadth-first cascade of derived events, worked out in
//! memory against a read view of the store (`Working`), giving a report and
//! the rows to write. **Persist**: the store writes those rows (all or
//! none) and records the outcome, inside the caller's transaction; nothing
//! of a failed or rejected event stays.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use rhai::Engine;

use crate::domain::clock::{Clock, SystemClock};
use crate::domain::event::Event;
use crate::engine::apply::{apply, Mode, Stop};
use crate::engine::event_work::{EventWork, Pending};
use crate::engine::report::{Firing, Outcome, Report};
use crate::engine::working::{Cause, Working};
use crate::id_map::IdMap;
use crate::scripting::ruleset::RuleSet;
use crate::scripting::script::{sandboxed_engine, with_time_limit, Deadlines};
use crate::scripting::script_log::ScriptLog;
use crate::store::{EngineStore, Queued, Recorded, RecordedConfig};

mod due_timers;
mod rule_run;

pub use due_timers::timer_event;
use rule_run::script_event;

/// Applies events to the store under a RuleSet.
pub struct Processor {
    store: Rc<dyn EngineStore>,
    rules: RuleSet,
    scripts: Engine,
    /// When the running script and the event started, for the time limits.
    deadlines: Rc<Deadlines>,
    script_log: Rc<ScriptLog>,
    work: Rc<RefCell<EventWork>>,
    /// What "now" is when an outcome is recorded.
    clock: Rc<dyn Clock>,
    /// The store's generation when this RuleSet's config was last
    /// recorded in the open transaction (`None`: not yet).
    remembered: Option<u64>,
    /// Whether event ids are done (applied or rejected), looked up for a
    /// whole batch at once; valid for the current transaction only.
    known_done: IdMap<String, bool>,
    /// When the first timer is due (`None` inside: no timer), with the
    /// store's generation when it was read; forgotten when an event
    /// changes timers. Asked before every event: most find none due.
    next_due: Option<(Option<String>, u64)>,
}

impl Processor {
    /// A processor on the wall clock.
    pub fn new(store: Rc<dyn EngineStore>, rules: RuleSet) -> Self {
        Processor::with_clock(store, rules, Rc::new(SystemClock))
    }

    /// A processor whose outcomes are recorded at the times `clock` says.
    pub fn with_clock(store: Rc<dyn EngineStore>, rules: RuleSet, clock: Rc<dyn Clock>) -> Self {
        let work = Rc::new(RefCell::new(EventWork::new(
            Working::new(Rc::clone(&store)),
            rules.config.stages.clone(),
        )));
        let mut scripts = sandboxed_engine();
        let deadlines = with_time_limit(&mut scripts);
        let script_log = Rc::new(ScriptLog::default());
        crate::engine::script_api::register(&mut scripts, &work, &script_log);
        work.borrow_mut().webhooks = webhook_names(&rules);
        Processor {
            store,
            rules,
            scripts,
            deadlines,
            script_log,
            clock,
            remembered: None,
            work,
            known_done: IdMap::default(),
            next_due: None,
        }
    }

    /// Looks up in one query which of these event ids are done, for the
    /// events of a batch about to be processed in this transaction.
    pub fn expect_batch<'a>(
        &mut self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> crate::store::Result<()> {
        let ids: Vec<&str> = ids.into_iter().collect();
        let done = self.store.done_among(&ids)?;
        self.known_done = ids
            .into_iter()
            .map(|id| (id.to_string(), done.contains(id)))
            .collect();
        Ok(())
    }

    /// For the events of the next batch, while this one commits: which are
    /// done, from the last commit and from what this batch did (which the
    /// commit under way may not have made visible yet).
    pub fn done_ahead(&self, ids: &[&str]) -> crate::store::Result<IdMap<String, bool>> {
        let committed = self.store.committed_done_among(ids)?;
        Ok(ids
            .iter()
            .map(|&id| {
                let done = committed.contains(id) || self.known_done.get(id) == Some(&true);
                (id.to_string(), done)
            })
            .collect())
    }

    /// `expect_batch` with what `done_ahead` found.
    pub fn expect_known(&mut self, known: IdMap<String, bool>) {
        self.known_done = known;
    }

    /// Forgets what `expect_batch` learned, at the end of its transaction.
    pub fn end_batch(&mut self) {
        self.known_done.clear();
    }

    fn is_done(&self, id: &str) -> crate::store::Result<bool> {
        match self.known_done.get(id) {
            Some(&done) => Ok(done),
            None => self.store.is_done(id),
        }
    }

    /// Takes "now" from `clock` from here on.
    pub fn use_clock(&mut self, clock: Rc<dyn Clock>) {
        self.clock = clock;
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Swaps the RuleSet; called between two events only.
    pub fn set_rules(&mut self, rules: RuleSet) {
        self.remembered = None;
        {
            let mut work = self.work.borrow_mut();
            work.stages = rules.config.stages.clone();
            work.webhooks = webhook_names(&rules);
        }
        self.rules = rules;
    }

    /// Processes one event and records its outcome, inside the caller's
    /// transaction; the caller takes it off the queue in the same
    /// transaction. `queue_seq` is recorded with the outcome.
    pub fn process(
        &mut self,
        event: &Event,
        queue_seq: Option<i64>,
    ) -> crate::store::Result<Report> {
        let report = self.evaluate(event);
        self.persist(event, &event.to_json(), queue_seq, report, Detail::Full)
    }

    /// `process`, for a queued event whose JSON is at hand. The report it
    /// returns has no changes and no notifications: they went to the store
    /// as they were, not copied (the daemon logs and counts outcomes only).
    pub fn process_queued(
        &mut self,
        event: &Event,
        body: &str,
        queue_seq: Option<i64>,
    ) -> crate::store::Result<Report> {
        let report = self.evaluate(event);
        self.persist(event, body, queue_seq, report, Detail::Outcome)
    }

    /// Writes what `evaluate` worked out: the state rows of an applied
    /// event (if the store refuses them, the event fails and none stays),
    /// then its outcome and audit trail.
    fn persist(
        &mut self,
        event: &Event,
        body: &str,
        queue_seq: Option<i64>,
        mut report: Report,
        detail: Detail,
    ) -> crate::store::Result<Report> {
        let in_transaction = self.store.in_transaction();
        if report.outcome == Outcome::Applied {
            let mut work = self.work.borrow_mut();
            let writes = work.working.writes();
            if !writes.timers_set.is_empty() || !writes.timers_removed.is_empty() {
                self.next_due = None;
            }
            match self.store.write_state(&writes)? {
                Ok(()) => work.working.keep_as_stored(),
                Err(e) => report.fail(format!("store error: {e}")),
            }
        }
        // A database may roll the whole transaction back by itself on some
        // errors (I/O, a full disk): then the outcome must not be recorded
        // outside it, and it is the caller's transaction that failed.
        if in_transaction && !self.store.in_transaction() {
            return Err(transaction_lost(report.reason.as_deref()));
        }
        self.remember_rules()?;
        let (changes, notifications) = match detail {
            Detail::Full => (
                Cow::Borrowed(&report.changes[..]),
                Cow::Borrowed(&report.notifications[..]),
            ),
            Detail::Outcome => (
                Cow::Owned(std::mem::take(&mut report.changes)),
                Cow::Owned(std::mem::take(&mut report.notifications)),
            ),
        };
        self.store.record(Recorded {
            queue_seq,
            event_id: &event.id,
            event_type: event.type_name(),
            body,
            outcome: report.outcome,
            reason: report.reason.as_deref(),
            ruleset: &self.rules.version,
            processed_at: &self.clock.now_rfc3339(),
            changes,
            notifications,
        })?;
        if report.outcome.is_done() {
            if let Some(done) = self.known_done.get_mut(&event.id) {
                *done = true;
            }
        }
        Ok(report)
    }

    /// Records the config the rules run under, with the first outcome
    /// they record (again after a rollback took it away).
    fn remember_rules(&mut self) -> crate::store::Result<()> {
        let generation = self.store.generation();
        if self.remembered == Some(generation) {
            return Ok(());
        }
        let config = &self.rules.config;
        self.store.remember_ruleset(
            &self.rules.version,
            &RecordedConfig {
                settings: config.settings.clone(),
                stages: config.stages.clone(),
            },
        )?;
        self.remembered = Some(generation);
        Ok(())
    }

    /// Records a queued event that cannot be read as failed; once the
    /// caller takes it off the queue, it no longer blocks the events behind
    /// it.
    pub fn record_unreadable(&self, queued: &Queued, error: &str) -> crate::store::Result<()> {
        self.record_failed(queued, &format!("the queued event cannot be read: {error}"))
    }

    /// Records a queued event as failed without processing it, for the
    /// caller to take off the queue in the same transaction.
    pub fn record_failed(&self, queued: &Queued, reason: &str) -> crate::store::Result<()> {
        let event_type = serde_json::from_str::<Event>(&queued.body)
            .map_or("unknown", |event| event.type_name());
        self.store.record(Recorded {
            queue_seq: Some(queued.seq),
            event_id: &queued.event_id,
            event_type,
            body: &queued.body,
            outcome: Outcome::Failed,
            reason: Some(reason),
            ruleset: &self.rules.version,
            processed_at: &self.clock.now_rfc3339(),
            changes: Cow::Borrowed(&[]),
            notifications: Cow::Borrowed(&[]),
        })?;
        tracing::error!(event = %queued.event_id, "failed: {reason}");
        Ok(())
    }

    /// Works out what the event does, in the working state only: the
    /// store is read, not written.
    pub fn evaluate(&mut self, event: &Event) -> Report {
        let mut report = Report {
            event: event.id.clone(),
            event_type: event.type_name().to_string(),
            outcome: Outcome::Applied,
            reason: None,
            ruleset: self.rules.version.clone(),
            rules_fired: Vec::new(),
            changes: Vec::new(),
            notifications: Vec::new(),
        };
        match self.is_done(&event.id) {
            Ok(true) => {
                report.outcome = Outcome::Duplicate;
                report.reason = Some(format!("event id {} was processed before", event.id));
                return report;
            }
            Ok(false) => {}
            Err(e) => {
                report.fail(format!("store error: {e}"));
                return report;
            }
        }
        {
            let mut work = self.work.borrow_mut();
            work.reset(&event.id);
            // "Now" for timers: the event's time, else the clock's.
            work.now = (event.at.as_deref())
                .and_then(|at| crate::domain::event::parse_time(at).ok())
                .unwrap_or_else(|| self.clock.now());
        }
        self.deadlines
            .start_event(self.rules.config.event_time_limit);
        self.script_log.start_event(&event.id);
        let result = self.run(event, &mut report.rules_fired);
        self.script_log.finish_event();
        match result {
            Ok(()) => {
                let mut work = self.work.borrow_mut();
                report.changes = work.working.take_changes();
                report.notifications = work.take_notifications();
            }
            Err(Stop::Rejected(reason)) => {
                report.outcome = Outcome::Rejected;
                report.reason = Some(reason);
            }
            Err(Stop::Failed(reason)) => report.fail(reason),
        }
        report
    }

    /// The primary change, then the rules for it and for every event its
    /// rules derive, breadth first.
    fn run(&self, event: &Event, fired: &mut Vec<Firing>) -> Result<(), Stop> {
        let cause = Cause {
            event: event.id.clone(),
            rule: None,
            chain: event.id.clone(),
        };
        let changed = {
            let work = &mut *self.work.borrow_mut();
            apply(
                &mut work.working,
                &event.kind,
                &work.stages,
                Mode::Original,
                &cause,
            )?
        };
        if !changed {
            return Ok(());
        }
        let previous = self.work.borrow().previous_values(0);
        let mut work = VecDeque::from([Pending {
            id: event.id.clone(),
            kind: event.kind.clone(),
            derived: false,
            chain: Vec::new(),
            previous,
        }]);
        let rules = &self.rules;
        while let Some(pending) = work.pop_front() {
            // Built only for an event that some rule is for.
            let mut event_map = None;
            for rule in rules.rules_for(pending.kind.type_name()) {
                if let Some(reason) = self.deadlines.event_exceeded() {
                    return Err(Stop::Failed(format!(
                        "before rule {}: {reason}",
                        rule.name()
                    )));
                }
                let event_map = event_map.get_or_insert_with(|| script_event(event, &pending));
                if !self.condition_holds(rule, event_map)? {
                    continue;
                }
                let derived = self.fire(rule, &pending, event_map, fired)?;
                for next in derived {
                    if next.chain.len() > rules.config.max_cascade_depth {
                        return Err(Stop::Failed(too_deep(
                            &next,
                            rules.config.max_cascade_depth,
                        )));
                    }
                    work.push_back(next);
                }
            }
        }
        Ok(())
    }
}

/// What the report of a processed event keeps.
#[derive(Clone, Copy)]
enum Detail {
    /// Everything: the caller shows or compares the changes.
    Full,
    /// The outcome, its reason and the rules that fired; the changes and
    /// notifications are handed to the store.
    Outcome,
}

fn webhook_names(rules: &RuleSet) -> std::collections::BTreeSet<String> {
    (rules.config.webhooks.iter())
        .map(|w| w.name.clone())
        .collect()
}

/// The error for a transaction that SQLite rolled back while an event was
/// processed, with what the event met.
fn transaction_lost(reason: Option<&str>) -> crate::store::StoreError {
    crate::store::StoreError::TransactionLost(reason.unwrap_or("no detail").to_string())
}

fn too_deep(next: &Pending, max: usize) -> String {
    let chain: Vec<String> = next
        .chain
        .iter()
        .map(|(rule, event)| format!("{rule} ({event})"))
        .collect();
    format!(
        "cascade deeper than the maximum of {max}: {}",
        chain.join(" -> ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, StateRead, Store, Transactions};

    fn processor(store: Rc<dyn EngineStore>) -> Processor {
        let dir = tempfile::tempdir().unwrap();
        let rules = crate::tools::init::shipped_rules(dir.path()).unwrap();
        Processor::new(store, rules)
    }

    fn event(json: &str) -> Event {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_rolled_back_batch_leaves_nothing_known_of_what_it_wrote() {
        rolled_back_batch_is_forgotten(Rc::new(MemoryStore::new()));
        rolled_back_batch_is_forgotten(Rc::new(Store::open_in_memory().unwrap()));
    }

    fn rolled_back_batch_is_forgotten(store: Rc<dyn EngineStore>) {
        let mut processor = processor(store.clone());
        let created = event(r#"{"id":"e1","type":"conversation.created","conversation":"c1"}"#);
        let owned = event(
            r#"{"id":"e2","type":"conversation.owner_changed","conversation":"c1","owner":"ann"}"#,
        );

        store.begin().unwrap();
        let report = processor.process(&created, None).unwrap();
        assert_eq!(report.outcome, Outcome::Applied);
        store.rollback().unwrap();

        // c1 was never stored: an event about it is rejected, not applied
        // to a remembered copy.
        store.begin().unwrap();
        let report = processor.process(&owned, None).unwrap();
        assert_eq!(report.outcome, Outcome::Rejected);
        store.commit().unwrap();
        assert!(store.conversation("c1").unwrap().is_none());
    }

    /// A SQLite store whose schema refuses, with `raise` (`ABORT, ...` or
    /// `ROLLBACK, ...`), the conversation `bad` (one row) and any
    /// association of `c2` (the second row of a ticket's creation).
    fn sqlite_refusing(raise: &str) -> Rc<Store> {
        let store = Rc::new(Store::open_in_memory().unwrap());
        store
            .connection()
            .execute_batch(&format!(
                "CREATE TRIGGER refuse_conversation BEFORE INSERT ON conversations
                 WHEN NEW.id = 'bad' BEGIN SELECT RAISE({raise}); END;
                 CREATE TRIGGER refuse_association BEFORE INSERT ON associations
                 WHEN NEW.conversation = 'c2' BEGIN SELECT RAISE({raise}); END;"
            ))
            .unwrap();
        store
    }

    /// Events whose writes the schema refuses: one row (no savepoint) and
    /// two rows (under a savepoint).
    #[test]
    fn an_event_whose_writes_are_refused_fails_alone_and_leaves_nothing() {
        let store = sqlite_refusing("ABORT, 'refused'");
        let mut processor = processor(store.clone());
        store.begin().unwrap();
        let outcomes: Vec<Outcome> = [
            r#"{"id":"e1","type":"conversation.created","conversation":"bad"}"#,
            r#"{"id":"e2","type":"conversation.created","conversation":"c2"}"#,
            r#"{"id":"e3","type":"ticket.created","ticket":"T","conversation":"c2"}"#,
            r#"{"id":"e4","type":"conversation.owner_changed","conversation":"c2","owner":"ann"}"#,
        ]
        .into_iter()
        .map(|json| processor.process(&event(json), None).unwrap().outcome)
        .collect();
        store.commit().unwrap();
        use Outcome::*;
        assert_eq!(outcomes, [Failed, Applied, Failed, Applied]);
        assert!(store.conversation("bad").unwrap().is_none());
        assert!(store.ticket("T").unwrap().is_none());
        let c2 = store.conversation("c2").unwrap().unwrap();
        assert_eq!((c2.ticket, c2.owner.as_deref()), (None, Some("ann")));
    }

    /// `RAISE(ROLLBACK)` stands for the errors on which SQLite rolls the
    /// whole transaction back (I/O, a full disk).
    #[test]
    fn a_transaction_rolled_back_by_sqlite_fails_the_batch_and_records_nothing() {
        let store = sqlite_refusing("ROLLBACK, 'disk gone'");
        let mut processor = processor(store.clone());
        store.begin().unwrap();
        processor
            .process(
                &event(r#"{"id":"e1","type":"conversation.created","conversation":"c2"}"#),
                None,
            )
            .unwrap();
        store.commit().unwrap();
        let first = r#"{"id":"e2","type":"conversation.created","conversation":"c1"}"#;
        for lost in [
            // One row: no savepoint.
            r#"{"id":"e3","type":"conversation.created","conversation":"bad"}"#,
            // Two rows (ticket and association): under a savepoint.
            r#"{"id":"e4","type":"ticket.created","ticket":"T","conversation":"c2"}"#,
        ] {
            store.begin().unwrap();
            processor.process(&event(first), None).unwrap();
            let error = processor.process(&event(lost), None).unwrap_err();
            assert!(error.to_string().contains("disk gone"), "{error}");
            assert!(!store.in_transaction());
            assert!(store.conversation("c1").unwrap().is_none());
            assert!(store.outcomes(None).unwrap().iter().all(|o| o.id == "e1"));
        }
    }

    #[test]
    fn outcomes_are_recorded_at_the_time_the_clock_says() {
        let store = Rc::new(MemoryStore::new());
        let dir = tempfile::tempdir().unwrap();
        let rules = crate::tools::init::shipped_rules(dir.path()).unwrap();
        let clock = Rc::new(crate::domain::clock::SetClock::new(
            time::macros::datetime!(2026-03-01 08:00 UTC),
        ));
        let mut processor = Processor::with_clock(store.clone(), rules, clock.clone());
        store.begin().unwrap();
        processor
            .process(
                &event(r#"{"id":"e1","type":"conversation.created","conversation":"c1"}"#),
                None,
            )
            .unwrap();
        clock.set(time::macros::datetime!(2026-03-02 09:30 UTC));
        processor
            .process(
                &event(r#"{"id":"e2","type":"conversation.closed","conversation":"c1"}"#),
                None,
            )
            .unwrap();
        store.commit().unwrap();
        let times: Vec<String> = store
            .outcomes()
            .into_iter()
            .map(|o| o.processed_at)
            .collect();
        assert_eq!(times, ["2026-03-01T08:00:00Z", "2026-03-02T09:30:00Z"]);
    }

    #[test]
    fn a_committed_batch_is_remembered_as_the_store_holds_it() {
        let store = Rc::new(MemoryStore::new());
        let mut processor = processor(store.clone());
        store.begin().unwrap();
        for json in [
            r#"{"id":"e1","type":"conversation.created","conversation":"c1"}"#,
            r#"{"id":"e2","type":"conversation.owner_changed","conversation":"c1","owner":"ann"}"#,
        ] {
            let report = processor.process(&event(json), None).unwrap();
            assert_eq!(report.outcome, Outcome::Applied);
        }
        store.commit().unwrap();

        store.begin().unwrap();
        let report = processor
            .process(
                &event(r#"{"id":"e3","type":"conversation.owner_changed","conversation":"c1","owner":"bob"}"#),
                None,
            )
            .unwrap();
        store.commit().unwrap();
        let owner = &report.changes[0];
        assert_eq!(
            (owner.before.as_str(), owner.after.as_str()),
            (Some("ann"), Some("bob"))
        );
        assert_eq!(
            store.conversation("c1").unwrap().unwrap().owner.as_deref(),
            Some("bob")
        );
    }

    #[test]
    fn a_queued_event_hands_its_changes_to_the_store_and_reports_its_outcome() {
        let events = [
            r#"{"id":"e1","type":"conversation.created","conversation":"c1","contact":"x@y"}"#,
            r#"{"id":"e2","type":"conversation.owner_changed","conversation":"c1","owner":"ann"}"#,
        ];
        let audit_after = |queued: bool| {
            let store = Rc::new(Store::open_in_memory().unwrap());
            let mut processor = processor(store.clone());
            let mut reports = Vec::new();
            store.begin().unwrap();
            for json in events {
                let e = event(json);
                reports.push(if queued {
                    processor.process_queued(&e, &e.to_json(), Some(1)).unwrap()
                } else {
                    processor.process(&e, Some(1)).unwrap()
                });
            }
            store.commit().unwrap();
            let audit: Vec<_> = (store.history("conversation", "c1").unwrap())
                .into_iter()
                .map(|row| (row.event, row.field, row.before, row.after))
                .collect();
            (reports, audit)
        };
        let (full, audit) = audit_after(false);
        let (queued, queued_audit) = audit_after(true);
        assert!(full.iter().all(|r| !r.changes.is_empty()));
        assert!(queued.iter().all(|r| r.changes.is_empty()));
        for (full, queued) in full.iter().zip(&queued) {
            assert_eq!(
                (queued.outcome, queued.rules_fired.len()),
                (full.outcome, full.rules_fired.len())
            );
        }
        assert!(audit.len() >= 2, "the events changed c1: {audit:?}");
        assert_eq!(queued_audit, audit, "the store got every change");
    }
}
