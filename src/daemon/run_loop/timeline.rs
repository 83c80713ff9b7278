//! The daemon's side of the one timeline: timers due before a queued
//! event fire first; with nothing queued, those due by now; the idle
//! daemon sleeps until the next one.

use std::time::Duration;

use anyhow::Context;

use super::{Daemon, IDLE_POLL, LISTENED_POLL};
use crate::daemon::control::Control;
use crate::daemon::tally::Tally;

impl Daemon {
    /// With nothing queued: the timers due by now, if any.
    pub(super) fn process_timers_alone(&mut self, control: &Control) -> anyhow::Result<usize> {
        let now = crate::domain::timer::due_text(self.clock.now());
        let next = (self.store.next_timer_due()).context("cannot read the timers")?;
        if next.is_none_or(|due| due > now) {
            return Ok(0);
        }
        self.in_transaction(control, |daemon| {
            daemon.process_events(Vec::new(), None, control)
        })
    }

    /// Fires the timers due at or before `until`, at most `limit`; how many.
    pub(super) fn fire_timers(
        &mut self,
        until: &str,
        limit: usize,
        tally: &mut Tally,
    ) -> anyhow::Result<usize> {
        let started = std::time::Instant::now();
        let reports = self
            .processor
            .fire_due_timers(until, limit)
            .context("cannot fire the timers due")?;
        for report in &reports {
            self.observe(report, started);
            tally.count(report.outcome);
        }
        Ok(reports.len())
    }

    /// How long the idle daemon may sleep: until the next timer is due, at
    /// most `IDLE_POLL` (`LISTENED_POLL` on PostgreSQL, where producers'
    /// notifications wake it: looking at the queue is only a safety net).
    pub(super) fn idle_time(&self) -> Duration {
        let poll = if self.rules().config.store_url.is_some() {
            LISTENED_POLL
        } else {
            IDLE_POLL
        };
        let next = self.store.next_timer_due().ok().flatten();
        let wait = next
            .and_then(|due| crate::domain::event::parse_time(&due).ok())
            .map_or(poll, |due| (due - self.clock.now()).unsigned_abs());
        // Due times are whole seconds: wake just after.
        wait.min(poll) + Duration::from_millis(1)
    }
}
