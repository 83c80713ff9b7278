//! The poison-event guard: an event during which the daemon died several
//! times (aborted, killed for memory) is recorded `failed` so that the
//! queue moves on, instead of killing the daemon again at every restart.
//!
//! Before each batch the daemon notes the queue range it works on in a
//! small file beside the database (`<db>.inflight`). A clean stop removes
//! it; finding it at start means the daemon died inside that range. The
//! range is then processed one event at a time, each attempt noted with
//! the deaths seen so far, until an event has seen `MAX_DEATHS`.
//!
//! The note is not synced to disk: it must survive the death of the
//! process, which the page cache does, not the loss of the machine.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Deaths during one event after which it is recorded failed.
pub const MAX_DEATHS: u32 = 3;

/// A batch or a single event the daemon started on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub first: i64,
    pub last: i64,
    /// Deaths seen during this single event before this attempt.
    pub deaths: u32,
}

/// What to do with the event at the head of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing suspect: batches as usual.
    Batch,
    /// The daemon died in a range holding this event: try it alone, with
    /// this many deaths seen during it.
    Alone { deaths: u32 },
    /// It has killed the daemon `MAX_DEATHS` times: record it failed.
    Poison { deaths: u32 },
}

pub struct PoisonGuard {
    path: PathBuf,
    /// The attempt the previous daemon died in, until the queue has moved
    /// past it.
    died_in: Option<Attempt>,
}

/// `<db>.inflight`.
fn note_path(store_path: &Path) -> PathBuf {
    crate::store::beside(store_path, ".inflight")
}

impl PoisonGuard {
    /// Reads what the previous daemon left; `store_path` should be the
    /// database's real path, so that every spelling of it finds the note.
    pub fn open(store_path: &Path) -> PoisonGuard {
        let path = note_path(store_path);
        let died_in = read_note(&path);
        if let Some(attempt) = died_in {
            tracing::warn!(
                "the previous daemon stopped without finishing queue entries {}..={}; they are processed one at a time",
                attempt.first,
                attempt.last
            );
        }
        PoisonGuard { path, died_in }
    }

    /// How to treat the event at the head of the queue, `seq`.
    pub fn verdict(&mut self, seq: i64) -> Verdict {
        let Some(died) = self.died_in else {
            return Verdict::Batch;
        };
        if seq < died.first || seq > died.last {
            self.died_in = None;
            return Verdict::Batch;
        }
        if died.first != died.last {
            return Verdict::Alone { deaths: 0 };
        }
        let deaths = died.deaths + 1;
        if deaths >= MAX_DEATHS {
            Verdict::Poison { deaths }
        } else {
            Verdict::Alone { deaths }
        }
    }

    /// Notes an attempt before it starts. Best effort: without the note
    /// the daemon works as before, only without the guard.
    pub fn note(&self, attempt: Attempt) {
        let text = format!("{} {} {}\n", attempt.first, attempt.last, attempt.deaths);
        let written = crate::regular_file::create(&self.path, 0o600, true)
            .and_then(|mut file| file.write_all(text.as_bytes()));
        if let Err(e) = written {
            tracing::debug!("cannot write {}: {e}", self.path.display());
        }
    }

    /// A clean stop: nothing is in flight.
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn read_note(path: &Path) -> Option<Attempt> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.len() > 100 {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let mut parts = text.split_whitespace();
    let first = parts.next()?.parse().ok()?;
    let last = parts.next()?.parse().ok()?;
    let deaths = parts.next()?.parse().ok()?;
    Some(Attempt {
        first,
        last,
        deaths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard_after(attempt: Option<Attempt>) -> (tempfile::TempDir, PoisonGuard) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("inboxd.db");
        if let Some(attempt) = attempt {
            PoisonGuard::open(&db).note(attempt);
        }
        let guard = PoisonGuard::open(&db);
        (dir, guard)
    }

    #[test]
    fn a_clean_start_batches() {
        let (_dir, mut guard) = guard_after(None);
        assert_eq!(guard.verdict(1), Verdict::Batch);
    }

    #[test]
    fn a_death_in_a_batch_makes_its_events_go_alone_then_batches_again() {
        let attempt = Attempt {
            first: 10,
            last: 20,
            deaths: 0,
        };
        let (_dir, mut guard) = guard_after(Some(attempt));
        assert_eq!(guard.verdict(12), Verdict::Alone { deaths: 0 });
        assert_eq!(guard.verdict(13), Verdict::Alone { deaths: 0 });
        assert_eq!(guard.verdict(21), Verdict::Batch);
        assert_eq!(guard.verdict(15), Verdict::Batch);
    }

    #[test]
    fn deaths_during_one_event_add_up_to_poison() {
        let mut deaths = 0;
        loop {
            let (_dir, mut guard) = guard_after(Some(Attempt {
                first: 7,
                last: 7,
                deaths,
            }));
            match guard.verdict(7) {
                Verdict::Alone { deaths: d } => deaths = d,
                Verdict::Poison { deaths: d } => {
                    assert_eq!(d, MAX_DEATHS);
                    break;
                }
                Verdict::Batch => panic!("the event was forgotten"),
            }
        }
        // A stale note (the event went through before the death) is
        // ignored.
        let (_dir, mut guard) = guard_after(Some(Attempt {
            first: 7,
            last: 7,
            deaths: 2,
        }));
        assert_eq!(guard.verdict(8), Verdict::Batch);
    }

    #[test]
    fn a_link_in_place_of_the_note_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("inboxd.db");
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep me").unwrap();
        std::os::unix::fs::symlink(&target, note_path(&db)).unwrap();
        PoisonGuard::open(&db).note(Attempt {
            first: 1,
            last: 1,
            deaths: 0,
        });
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    }
}
