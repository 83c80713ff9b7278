//! Where "now" comes from: the wall clock for the daemon, a set time for
//! replay (each event's recorded processing time) and for tests. The
//! engine and the daemon ask their clock, never the system directly.

use std::cell::Cell;

use time::OffsetDateTime;

pub trait Clock {
    fn now(&self) -> OffsetDateTime;

    /// `now` in RFC 3339, UTC.
    fn now_rfc3339(&self) -> String {
        rfc3339(self.now())
    }
}

/// A time in RFC 3339.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .expect("a time always formats")
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that says what it was last set to.
#[derive(Debug)]
pub struct SetClock(Cell<OffsetDateTime>);

impl SetClock {
    pub fn new(at: OffsetDateTime) -> Self {
        SetClock(Cell::new(at))
    }

    pub fn set(&self, at: OffsetDateTime) {
        self.0.set(at);
    }
}

impl Clock for SetClock {
    fn now(&self) -> OffsetDateTime {
        self.0.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_clock_says_what_it_was_set_to() {
        let clock = SetClock::new(time::macros::datetime!(2026-01-31 09:00 UTC));
        assert_eq!(clock.now_rfc3339(), "2026-01-31T09:00:00Z");
        clock.set(time::macros::datetime!(2026-02-01 10:30:05 UTC));
        assert_eq!(clock.now_rfc3339(), "2026-02-01T10:30:05Z");
        assert!(SystemClock.now() > time::macros::datetime!(2026-01-01 0:00 UTC));
    }
}
