//! A dry-run: the daemon's own processing of events against the current
//! state, with nothing written.

use std::rc::Rc;

use crate::domain::event::Event;
use crate::engine::report::Report;
use crate::engine::Processor;
use crate::scripting::ruleset::RuleSet;
use crate::store::{MemoryStore, Snapshot, Transactions};

/// The daemon's own processing, its writes kept in memory over a snapshot
/// of the store: the store itself is only read (a dry-run takes no write
/// lock, and waits for no daemon's batch).
pub fn simulate(
    store: Rc<dyn Snapshot>,
    rules: RuleSet,
    events: &[Event],
) -> crate::store::Result<Vec<Report>> {
    let scratch = Rc::new(MemoryStore::over(store));
    let mut processor = Processor::new(scratch.clone(), rules);
    scratch.begin()?;
    events.iter().map(|e| processor.process(e, None)).collect()
}
