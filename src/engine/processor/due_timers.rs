//! The engine's side of the one timeline: the timers due by a time fire,
//! in order, each as a `timer.fired` event processed like any other.

use super::Processor;
use crate::domain::event::Event;
use crate::engine::report::Report;

impl Processor {
    /// Fires, in the timeline's order, the timers due at or before `until`,
    /// each as a `timer.fired` event processed like any other, at most
    /// `limit` of them; their reports. Whatever an event's outcome, its
    /// timer's due time is spent: a timer never fires twice for it.
    pub fn fire_due_timers(
        &mut self,
        until: &str,
        limit: usize,
    ) -> crate::store::Result<Vec<Report>> {
        let mut reports = Vec::new();
        if !self.some_timer_due(until)? {
            return Ok(reports);
        }
        while reports.len() < limit {
            let Some(timer) = self.store.due_timers(until, 1)?.pop() else {
                break;
            };
            let event = timer_event(&timer);
            let report = self.process(&event, None)?;
            let key = timer.key();
            if self.store.timer(&key)? == Some(timer.due.clone()) {
                let spent = crate::store::StateWrites {
                    timers_removed: vec![&key],
                    ..Default::default()
                };
                self.store.write_state(&spent)??;
            }
            reports.push(report);
        }
        self.next_due = None;
        Ok(reports)
    }

    /// Whether a timer is due by `until`, from what is known of the next.
    fn some_timer_due(&mut self, until: &str) -> crate::store::Result<bool> {
        let generation = self.store.generation();
        let next = match &self.next_due {
            Some((next, known)) if *known == generation => next.clone(),
            _ => {
                let next = self.store.next_timer_due()?;
                self.next_due = Some((next.clone(), generation));
                next
            }
        };
        Ok(next.is_some_and(|due| due.as_str() <= until))
    }
}

/// The event a due timer fires as.
pub fn timer_event(timer: &crate::domain::timer::Timer) -> Event {
    use crate::domain::timer::TimerRecord;
    let (ticket, conversation) = match timer.record {
        TimerRecord::Ticket => (Some(timer.id.clone()), None),
        TimerRecord::Conversation => (None, Some(timer.id.clone())),
    };
    Event {
        id: timer.event_id(),
        at: Some(timer.due.clone()),
        actor: None,
        kind: crate::domain::event::EventKind::TimerFired {
            timer: timer.name.clone(),
            ticket,
            conversation,
        },
    }
}
