//! JSON Lines read and checked on a thread of their own while the caller
//! queues them: `enqueue` of a regular file uses two cores, one reading
//! and checking events, the other writing them to the queue.
//!
//! The events come as an iterator that ends only once the whole input was
//! read and found valid; a bad line (or a reader that died) is an error
//! item instead, so that whoever consumes them (a queue's transaction)
//! keeps none of them.

use std::io::BufRead;
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;

use crate::domain::event_lines::{LineError, Staged};
use crate::domain::state::Stages;

/// Events handed over at once: a message per event would cost more than
/// reading it.
const CHUNK: usize = 256;
/// Chunks read ahead of the consumer, at most: memory stays bounded.
const AHEAD: usize = 8;

enum Message {
    Events(Vec<Staged>),
    Done(usize),
    Bad(LineError),
}

/// The events of an input, read on another thread.
pub struct EventReader {
    received: Receiver<Message>,
    current: std::vec::IntoIter<Staged>,
    thread: Option<JoinHandle<()>>,
    /// How many events, once all were read (and read whole).
    pub count: Option<usize>,
    /// The bad line that stopped the reading, if one did.
    pub bad: Option<LineError>,
    /// No more items: the end, or the error item was given.
    ended: bool,
}

impl EventReader {
    /// Starts reading `input`, `at` filled in with `now` where absent.
    pub fn start(
        mut input: impl BufRead + Send + 'static,
        stages: Stages,
        now: String,
    ) -> std::io::Result<EventReader> {
        let (send, received) = mpsc::sync_channel(AHEAD);
        let thread = std::thread::Builder::new()
            .name("inboxd-read".into())
            .spawn(move || {
                let mut chunk = Vec::with_capacity(CHUNK);
                let read = crate::domain::event_lines::read(&mut input, &stages, &now, |event| {
                    chunk.push(event);
                    if chunk.len() == CHUNK {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                        send.send(Message::Events(full))
                            .map_err(|_| std::io::Error::other("nobody takes the events"))?;
                    }
                    Ok(())
                });
                let last = match read {
                    Ok(count) => {
                        let _ = send.send(Message::Events(chunk));
                        Message::Done(count)
                    }
                    Err(bad) => Message::Bad(bad),
                };
                let _ = send.send(last);
            })?;
        Ok(EventReader {
            received,
            current: Vec::new().into_iter(),
            thread: Some(thread),
            count: None,
            bad: None,
            ended: false,
        })
    }
}

impl Iterator for EventReader {
    type Item = std::io::Result<Staged>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(event) = self.current.next() {
                return Some(Ok(event));
            }
            if self.ended {
                return None;
            }
            let message = self.received.recv();
            if !matches!(message, Ok(Message::Events(_))) {
                self.ended = true;
            }
            match message {
                Ok(Message::Events(events)) => self.current = events.into_iter(),
                Ok(Message::Done(count)) => {
                    self.count = Some(count);
                    return None;
                }
                Ok(Message::Bad(bad)) => {
                    let error = std::io::Error::other(bad.to_string());
                    self.bad = Some(bad);
                    return Some(Err(error));
                }
                // Gone without a word: it panicked (a bug).
                Err(_) => {
                    let died = "the thread reading the input stopped before its end";
                    return Some(Err(std::io::Error::other(died)));
                }
            }
        }
    }
}

impl Drop for EventReader {
    /// Stops the reading (its next hand-over fails) and waits for it.
    fn drop(&mut self) {
        let (_, gone) = mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.received, gone));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn reader(text: &str) -> EventReader {
        let input = std::io::Cursor::new(text.as_bytes().to_vec());
        EventReader::start(input, Stages::default(), NOW.to_string()).unwrap()
    }

    fn created(i: usize) -> String {
        format!("{{\"id\":\"e{i}\",\"type\":\"conversation.created\",\"conversation\":\"c{i}\"}}\n")
    }

    #[test]
    fn every_event_comes_in_order_then_the_count() {
        let text: String = (0..1000).map(created).collect();
        let mut events = reader(&text);
        let ids: Vec<String> = events.by_ref().map(|e| e.unwrap().id).collect();
        assert_eq!(ids, (0..1000).map(|i| format!("e{i}")).collect::<Vec<_>>());
        assert_eq!(events.count, Some(1000));
        assert!(events.bad.is_none());
    }

    #[test]
    fn a_bad_line_after_many_is_an_error_item_and_ends_the_events() {
        let mut text: String = (0..700).map(created).collect();
        text.push_str("{not json\n");
        text.push_str(&created(701));
        let mut events = reader(&text);
        let items: Vec<_> = events.by_ref().collect();
        // The events before it may come (whole chunks do), then the error.
        let (last, before) = items.split_last().unwrap();
        assert!(last.is_err());
        assert!(before.len() <= 700 && before.iter().all(Result::is_ok));
        assert_eq!(events.bad.as_ref().map(|b| b.line), Some(701));
        assert_eq!(events.count, None);
    }

    #[test]
    fn a_consumer_that_stops_early_stops_the_reader() {
        let text: String = (0..100_000).map(created).collect();
        let mut events = reader(&text);
        assert!(events.next().unwrap().is_ok());
        // Dropped with most of the input unread: returns, no hang.
        drop(events);
    }
}
