//! Validating lines of events on two threads: parsing and checking an
//! event is most of what `enqueue` does, and lines do not depend on each
//! other. This thread reads the lines in chunks; a helper validates every
//! other chunk while this thread validates the next; the events go to the
//! sink in input order, and the first bad line in that order stops
//! everything, as on one thread. Two chunks at most are held at a time.

use std::io::BufRead;
use std::sync::mpsc;

use super::{parse_line, LineError, Lines, Staged};
use crate::domain::state::Stages;

/// Lines per chunk, and bytes past which a chunk ends earlier.
const CHUNK_LINES: usize = 256;
const CHUNK_BYTES: usize = 1 << 20;

type Chunk = Vec<Result<(usize, String), LineError>>;
type Validated = Vec<Result<(usize, Staged), LineError>>;

pub(super) fn read<R: BufRead>(
    mut lines: Lines<'_, R>,
    stages: &Stages,
    now: &str,
    mut sink: impl FnMut(Staged) -> std::io::Result<()>,
) -> Result<usize, LineError> {
    let validate = |chunk: Chunk| -> Validated {
        chunk
            .into_iter()
            .map(|line| {
                let (number, text) = line?;
                let event = parse_line(number, &text, stages, now)?;
                Ok((number, Staged::from(event)))
            })
            .collect()
    };
    std::thread::scope(|scope| {
        let (to_helper, helper_inbox) = mpsc::sync_channel::<Chunk>(1);
        let (helper_outbox, from_helper) = mpsc::sync_channel::<Validated>(1);
        scope.spawn(move || {
            for chunk in helper_inbox {
                if helper_outbox.send(validate(chunk)).is_err() {
                    break;
                }
            }
        });
        let mut count = 0;
        loop {
            let first = next_chunk(&mut lines);
            if first.is_empty() {
                return Ok(count);
            }
            let sent = to_helper.send(first);
            let second = validate(next_chunk(&mut lines));
            let first = sent
                .ok()
                .and_then(|()| from_helper.recv().ok())
                .expect("the validating thread panicked");
            for validated in first.into_iter().chain(second) {
                let (number, staged) = validated?;
                sink(staged)
                    .map_err(|e| LineError::at(number, format!("cannot stage the event: {e}")))?;
                count += 1;
            }
        }
    })
}

fn next_chunk<R: BufRead>(lines: &mut Lines<'_, R>) -> Chunk {
    let mut chunk = Vec::new();
    let mut bytes = 0;
    while chunk.len() < CHUNK_LINES && bytes < CHUNK_BYTES {
        let Some(line) = lines.next() else { break };
        bytes += line.as_ref().map_or(0, |(_, text)| text.len());
        chunk.push(line);
    }
    chunk
}

#[cfg(test)]
mod tests {
    use super::super::read;
    use crate::domain::state::Stages;

    fn event(id: usize) -> String {
        format!(r#"{{"id":"e{id}","type":"conversation.created","conversation":"c{id}"}}"#)
    }

    fn read_ids(input: &str) -> Result<Vec<String>, String> {
        let mut ids = Vec::new();
        read(
            &mut input.as_bytes(),
            &Stages::default(),
            "2026-01-01T00:00:00Z",
            |s| {
                ids.push(s.id);
                Ok(())
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(ids)
    }

    #[test]
    fn events_over_many_chunks_come_out_in_input_order() {
        let lines: Vec<String> = (0..2_000).map(event).collect();
        let ids = read_ids(&lines.join("\n\n")).unwrap();
        let expected: Vec<String> = (0..2_000).map(|i| format!("e{i}")).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn the_first_bad_line_in_input_order_is_named_whichever_thread_saw_it() {
        // Bad lines in the helper's chunk (the first) and in this thread's
        // (the second) of a pair, and in a later pair.
        for (bad, later_bad) in [(10, 300), (300, 400), (600, 1_900)] {
            let mut lines: Vec<String> = (0..2_000).map(event).collect();
            lines[bad] = "{not json".into();
            lines[later_bad] = "[]".into();
            let err = read_ids(&lines.join("\n")).unwrap_err();
            assert!(
                err.starts_with(&format!("line {}: not valid JSON", bad + 1)),
                "{err}"
            );
        }
    }

    #[test]
    fn a_sink_that_fails_stops_at_its_line() {
        let lines: Vec<String> = (0..1_000).map(event).collect();
        let mut seen = 0;
        let err = read(
            &mut lines.join("\n").as_bytes(),
            &Stages::default(),
            "2026-01-01T00:00:00Z",
            |_| {
                seen += 1;
                match seen {
                    700 => Err(std::io::Error::other("disk full")),
                    _ => Ok(()),
                }
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 700: cannot stage the event: disk full"
        );
    }
}
