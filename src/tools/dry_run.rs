//! A dry-run: the daemon's own processing of events against the current
//! state, with nothing written.

use std::rc::Rc;

use crate::domain::event::Event;
use crate::domain::timer::due_before;
use crate::engine::report::Report;
use crate::engine::Processor;
use crate::scripting::ruleset::RuleSet;
use crate::store::{MemoryStore, Snapshot, Transactions};

/// The daemon's own processing, its writes kept in memory over a snapshot
/// of the store: the store itself is only read (a dry-run takes no write
/// lock, and waits for no daemon's batch). On the daemon's timeline: the
/// timers due before an event (by its `at`, and by now) fire first, and
/// are reported too.
pub fn simulate(
    store: Rc<dyn Snapshot>,
    rules: RuleSet,
    events: &[Event],
) -> crate::store::Result<Vec<Report>> {
    let scratch = Rc::new(MemoryStore::over(store));
    let mut processor = Processor::new(scratch.clone(), rules);
    scratch.begin()?;
    let now = time::OffsetDateTime::now_utc();
    let mut reports = Vec::new();
    for event in events {
        let until = due_before(event.at.as_deref(), now);
        reports.extend(processor.fire_due_timers(&until, usize::MAX)?);
        reports.push(processor.process(event, None)?);
    }
    Ok(reports)
}

/// `simulate` on one consistent snapshot of `store` (a read-only
/// transaction, rolled back after).
pub fn simulate_on(
    store: Rc<dyn crate::store::Reader>,
    rules: RuleSet,
    events: &[Event],
) -> crate::store::Result<Vec<Report>> {
    let mut rules = Some(rules);
    let mut reports = Vec::new();
    let snapshot: Rc<dyn Snapshot> = store.clone();
    store.consistently(&mut || {
        let rules = rules.take().expect("read once");
        reports = simulate(snapshot.clone(), rules, events)?;
        Ok(())
    })?;
    Ok(reports)
}
