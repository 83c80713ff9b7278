//! Timers: named, on one ticket or conversation, due at a time. They are
//! state (committed with the event that starts them); one that comes due
//! fires as a `timer.fired` event.

use serde::Serialize;
use time::OffsetDateTime;

/// What a timer is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimerRecord {
    Conversation,
    Ticket,
}

impl TimerRecord {
    pub fn as_str(self) -> &'static str {
        match self {
            TimerRecord::Conversation => "conversation",
            TimerRecord::Ticket => "ticket",
        }
    }

    pub fn parse(name: &str) -> Option<TimerRecord> {
        match name {
            "conversation" => Some(TimerRecord::Conversation),
            "ticket" => Some(TimerRecord::Ticket),
            _ => None,
        }
    }
}

/// Which timer: its record and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerKey {
    pub record: TimerRecord,
    pub id: String,
    pub name: String,
}

impl TimerKey {
    /// `ticket/T/auto-close`: the id of the timer's changes in the audit
    /// trail and the feed (names hold no `/`, so the record id is what is
    /// between the first and the last one).
    pub fn path(&self) -> String {
        format!("{}/{}/{}", self.record.as_str(), self.id, self.name)
    }

    pub fn from_path(path: &str) -> Option<TimerKey> {
        let (record, rest) = path.split_once('/')?;
        let (id, name) = rest.rsplit_once('/')?;
        Some(TimerKey {
            record: TimerRecord::parse(record)?,
            id: id.to_string(),
            name: name.to_string(),
        })
    }
}

/// A pending timer, as the export lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timer {
    pub record: TimerRecord,
    pub id: String,
    pub name: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`: one format, so that text order is time order.
    pub due: String,
}

impl Timer {
    pub fn key(&self) -> TimerKey {
        TimerKey {
            record: self.record,
            id: self.id.clone(),
            name: self.name.clone(),
        }
    }

    /// The id of the event it fires as: the idempotency key of its firing.
    pub fn event_id(&self) -> String {
        format!("timer/{}/{}", self.key().path(), self.due)
    }
}

/// A due time in the one format timers keep (whole seconds, UTC).
pub fn due_text(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    // Asked before every event: digits by hand, a tenth of `format!`'s cost.
    if let Ok(year @ 0..=9999) = u16::try_from(at.year()) {
        let mut text = String::with_capacity(20);
        let fields = [
            (year, 4, '-'),
            (u16::from(u8::from(at.month())), 2, '-'),
            (u16::from(at.day()), 2, 'T'),
            (u16::from(at.hour()), 2, ':'),
            (u16::from(at.minute()), 2, ':'),
            (u16::from(at.second()), 2, 'Z'),
        ];
        for (value, width, then) in fields {
            for place in (0..width).rev() {
                let digit = (value / 10u16.pow(place)) % 10;
                text.push(char::from(b'0' + digit as u8));
            }
            text.push(then);
        }
        return text;
    }
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The one timeline: before an event, the timers due at or before the
/// earlier of its `at` (if it has a readable one) and `now` fire.
pub fn due_before(at: Option<&str>, now: OffsetDateTime) -> String {
    let at = at.and_then(|at| crate::domain::event::parse_time(at).ok());
    due_text(at.map_or(now, |at| at.min(now)))
}

/// The latest due time a timer may have, and the longest delay.
const MAX_YEAR: i32 = 9999;

/// When a timer started at `now` with `after` comes due: `after` is a
/// duration (`"30s"`, `"90m"`, `"36h"`, `"7d"`) or an RFC 3339 time.
pub fn due_after(now: OffsetDateTime, after: &str) -> Result<String, String> {
    let after = after.trim();
    if let Ok(at) = crate::domain::event::parse_time(after) {
        return Ok(due_text(at));
    }
    let wait = humantime::parse_duration(after).map_err(|_| {
        format!("{after:?} is neither a duration (\"30s\", \"90m\", \"36h\", \"7d\") nor an RFC 3339 time")
    })?;
    let due = time::Duration::try_from(wait)
        .ok()
        .and_then(|wait| now.checked_add(wait))
        .filter(|due| due.year() <= MAX_YEAR)
        .ok_or_else(|| format!("{after:?} is too far in the future"))?;
    Ok(due_text(due))
}

/// A timer's name: what `start_*_timer` accepts.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "a timer's name is 1 to 64 letters, digits, '-', '_' or '.', not {name:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn durations_and_times_give_a_due_time_in_one_format() {
        let now = datetime!(2026-01-01 10:00:00.5 UTC);
        assert_eq!(due_after(now, "30s").unwrap(), "2026-01-01T10:00:30Z");
        assert_eq!(due_after(now, "90m").unwrap(), "2026-01-01T11:30:00Z");
        assert_eq!(due_after(now, "7d").unwrap(), "2026-01-08T10:00:00Z");
        assert_eq!(
            due_after(now, "2026-03-01T12:00:00+02:00").unwrap(),
            "2026-03-01T10:00:00Z"
        );
        assert!(due_after(now, "soon").is_err());
        assert!(due_after(now, "100000000d").is_err());
    }

    /// The digits written by hand are `format!`'s, whatever the date.
    #[test]
    fn due_text_writes_every_field_zero_padded() {
        for at in [
            datetime!(2026-01-02 03:04:05.9 UTC),
            datetime!(0001-12-31 23:59:59 UTC),
            datetime!(9999-10-10 10:10:10 +05:30),
        ] {
            let utc = at.to_offset(time::UtcOffset::UTC);
            let expected = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                utc.year(),
                u8::from(utc.month()),
                utc.day(),
                utc.hour(),
                utc.minute(),
                utc.second()
            );
            assert_eq!(due_text(at), expected);
        }
        assert_eq!(
            due_text(datetime!(2026-01-02 03:04:05 UTC)),
            "2026-01-02T03:04:05Z"
        );
    }

    #[test]
    fn a_timer_path_holds_record_ids_with_slashes() {
        let key = TimerKey {
            record: TimerRecord::Ticket,
            id: "a/b".into(),
            name: "auto-close".into(),
        };
        assert_eq!(key.path(), "ticket/a/b/auto-close");
        assert_eq!(TimerKey::from_path(&key.path()), Some(key));
        assert!(check_name("auto/close").is_err());
        assert!(check_name("auto-close").is_ok());
    }
}
