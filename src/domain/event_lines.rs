//! Reading JSON Lines of events from a file or a pipe, one line at a time,
//! so that memory stays bounded whatever the size of the input: a line
//! longer than an event may be is refused without being held, and the
//! events read are written out (to a file that `enqueue` queues from once
//! the whole input is valid) instead of kept.

use std::io::{BufRead, Write};

use crate::domain::event::{limits::MAX_EVENT_BYTES, Event};
use crate::domain::state::Stages;

/// One event ready for the queue: its id and its JSON, `at` filled in.
pub struct Staged {
    pub id: String,
    pub body: String,
}

/// A line of the input that cannot be queued, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// From 1.
    pub line: usize,
    pub message: String,
}

impl LineError {
    pub fn at(line: usize, message: impl Into<String>) -> LineError {
        LineError {
            line,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Reads every line of `input`, validates it, and hands each event to
/// `sink` with its `at` filled in with `now` when absent. Blank lines are
/// skipped; the first bad line stops everything, named by its 1-based
/// number; a UTF-8 byte-order mark at the start is skipped.
pub fn read(
    input: &mut impl BufRead,
    stages: &Stages,
    now: &str,
    mut sink: impl FnMut(Staged) -> std::io::Result<()>,
) -> Result<usize, LineError> {
    read_events(input, stages, now, |event| sink(Staged::from(event)))
}

impl From<Event> for Staged {
    fn from(event: Event) -> Staged {
        Staged {
            body: event.to_json(),
            id: event.id,
        }
    }
}

/// `read`, handing each event to `sink` as it is.
fn read_events(
    input: &mut impl BufRead,
    stages: &Stages,
    now: &str,
    mut sink: impl FnMut(Event) -> std::io::Result<()>,
) -> Result<usize, LineError> {
    let mut line = Vec::with_capacity(4096);
    let mut number = 0;
    let mut count = 0;
    loop {
        number += 1;
        let too_long = match next_line(input, &mut line, MAX_EVENT_BYTES) {
            Ok(None) => return Ok(count),
            Ok(Some(too_long)) => too_long,
            Err(e) => return Err(LineError::at(number, format!("cannot read: {e}"))),
        };
        if too_long {
            return Err(LineError::at(
                number,
                format!("the event is more than {MAX_EVENT_BYTES} bytes long; at most {MAX_EVENT_BYTES} are allowed"),
            ));
        }
        let bytes = if number == 1 {
            line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&line)
        } else {
            &line
        };
        let text =
            std::str::from_utf8(bytes).map_err(|_| LineError::at(number, "not valid UTF-8"))?;
        if text.trim().is_empty() {
            continue;
        }
        let mut event = Event::parse(text, stages).map_err(|e| LineError::at(number, e))?;
        event.at.get_or_insert_with(|| now.to_string());
        sink(event).map_err(|e| LineError::at(number, format!("cannot stage the event: {e}")))?;
        count += 1;
    }
}

/// A body of events held in memory (an HTTP request's): JSON Lines, or one
/// JSON array of events. Every event is checked, `at` filled in with `now`
/// when absent; the first bad one is named by its line (and, in an array,
/// by its place: several may share a line).
pub fn parse_body(body: &[u8], stages: &Stages, now: &str) -> Result<Vec<Event>, LineError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        let mut events = Vec::new();
        read_events(&mut &body[..], stages, now, |event| {
            events.push(event);
            Ok(())
        })?;
        return Ok(events);
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = 1 + body[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        LineError::at(line, "not valid UTF-8")
    })?;
    let elements: Vec<&serde_json::value::RawValue> = serde_json::from_str(text)
        .map_err(|e| LineError::at(e.line().max(1), format!("not a JSON array of events: {e}")))?;
    elements
        .into_iter()
        .enumerate()
        .map(|(index, element)| {
            let line = line_of(text, element.get());
            let refuse = |why: String| {
                LineError::at(line, format!("event {} of the array: {why}", index + 1))
            };
            if element.get().len() > MAX_EVENT_BYTES {
                return Err(refuse(format!(
                    "the event is more than {MAX_EVENT_BYTES} bytes long; at most {MAX_EVENT_BYTES} are allowed"
                )));
            }
            let mut event = Event::parse(element.get(), stages).map_err(refuse)?;
            event.at.get_or_insert_with(|| now.to_string());
            Ok(event)
        })
        .collect()
}

/// The line of `text` where `part`, a slice of it, starts.
fn line_of(text: &str, part: &str) -> usize {
    let offset = (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
    1 + text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// Reads one line (without its end) into `line`, keeping at most `max`
/// bytes: `Some(true)` if it was longer (the rest is read and dropped),
/// `None` at the end of the input.
fn next_line(
    input: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok(read_any.then_some(too_long));
        }
        read_any = true;
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], Some(end + 1)),
            None => (available, None),
        };
        if line.len() + chunk.len() > max {
            too_long = true;
        } else {
            line.extend_from_slice(chunk);
        }
        let used = done.unwrap_or(available.len());
        input.consume(used);
        if done.is_some() {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(too_long));
        }
    }
}

/// Writes staged events as `id<TAB>body` lines (ids hold no control
/// characters, bodies are one-line JSON).
pub fn write_staged(out: &mut impl Write, staged: &Staged) -> std::io::Result<()> {
    writeln!(out, "{}\t{}", staged.id, staged.body)
}

/// Reads back what `write_staged` wrote.
pub fn read_staged(line: &str) -> Option<Staged> {
    let (id, body) = line.split_once('\t')?;
    Some(Staged {
        id: id.to_string(),
        body: body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";

    #[test]
    fn a_body_is_json_lines_or_one_array() {
        let lines = b"{\"id\":\"e1\",\"type\":\"conversation.created\",\"conversation\":\"c1\"}\n\n{\"id\":\"e2\",\"type\":\"conversation.closed\",\"conversation\":\"c1\"}\n";
        let array = b" [\n {\"id\":\"e1\",\"type\":\"conversation.created\",\"conversation\":\"c1\"},\n {\"id\":\"e2\",\"type\":\"conversation.closed\",\"conversation\":\"c1\"}\n]";
        for body in [&lines[..], &array[..]] {
            let events = parse_body(body, &Stages::default(), NOW).unwrap();
            let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
            assert_eq!(ids, ["e1", "e2"]);
            assert_eq!(events[0].at.as_deref(), Some(NOW));
        }
    }

    #[test]
    fn a_bad_event_in_a_body_is_named_by_its_line() {
        let array = b"[\n{\"id\":\"e1\",\"type\":\"conversation.created\",\"conversation\":\"c1\"},\n{\"id\":\"e2\",\"type\":\"nope\"}\n]";
        let err = parse_body(array, &Stages::default(), NOW).unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        let lines = b"{\"id\":\"e1\",\"type\":\"conversation.created\",\"conversation\":\"c1\"}\nnot json\n";
        assert_eq!(
            parse_body(lines, &Stages::default(), NOW).unwrap_err().line,
            2
        );
        let broken = b"[{\"id\":\"e1\",\n";
        assert_eq!(
            parse_body(broken, &Stages::default(), NOW)
                .unwrap_err()
                .line,
            2
        );
    }

    #[test]
    fn a_bad_event_in_an_array_on_one_line_is_also_named_by_its_place() {
        let array = b"[{\"id\":\"e1\",\"type\":\"conversation.created\",\"conversation\":\"c1\"}, {\"id\":7}]";
        let err = parse_body(array, &Stages::default(), NOW).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(
            err.to_string()
                .starts_with("line 1: event 2 of the array: `id` must be a string"),
            "{err}"
        );
    }

    fn read_all(input: &[u8]) -> Result<Vec<Staged>, String> {
        let mut staged = Vec::new();
        read(
            &mut &input[..],
            &Stages::default(),
            "2026-01-01T00:00:00Z",
            |s| {
                staged.push(s);
                Ok(())
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(staged)
    }

    #[test]
    fn lines_are_read_one_by_one_with_at_filled_in() {
        let input = b"\xEF\xBB\xBF{\"id\":\"a\",\"type\":\"conversation.created\",\"conversation\":\"c\"}\r\n\n{\"id\":\"b\",\"type\":\"conversation.closed\",\"conversation\":\"c\",\"at\":\"2025-01-01T00:00:00Z\"}";
        let staged = read_all(input).unwrap();
        assert_eq!(staged.len(), 2);
        assert!(staged[0].body.contains("\"at\":\"2026-01-01T00:00:00Z\""));
        assert!(staged[1].body.contains("2025-01-01"));
        let back = read_staged(&format!("{}\t{}", staged[0].id, staged[0].body)).unwrap();
        assert_eq!(back.id, "a");
    }

    #[test]
    fn a_line_too_long_is_refused_without_being_held() {
        let mut input = vec![b'x'; 10 * MAX_EVENT_BYTES];
        input.extend_from_slice(b"\n");
        let err = read_all(&input).err().unwrap();
        assert!(err.starts_with("line 1: the event is more than"), "{err}");
        let err = read_all(
            b"{\"id\":\"a\",\"type\":\"conversation.created\",\"conversation\":\"c\"}\n\n\xff\n",
        )
        .err()
        .unwrap();
        assert_eq!(err, "line 3: not valid UTF-8");
    }
}
