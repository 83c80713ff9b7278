//! `inboxd bench`: the real queue → engine → store path on a generated
//! workload with the shipped rules, next to the ceiling of the bare SQLite
//! writes that the same workload causes. Method and figures: docs/PERFORMANCE.md.

mod ceiling;
mod live;
pub mod postgres;
mod workload;

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use inboxd::daemon::{Control, Daemon};
use inboxd::domain::config::{Config, Synchronous};
use inboxd::domain::event::{now_rfc3339, Event, EventKind};
use inboxd::domain::state::{Conversation, Ticket};
use inboxd::store::{Queue, StateRead, Store, Transactions};

pub use workload::Workload;

/// What to measure (the options of `inboxd bench`).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Events in the workload.
    #[arg(long, default_value_t = 10_000)]
    pub events: usize,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Conversations (each with a ticket) in the store before the run.
    #[arg(long, default_value_t = 0)]
    pub preload: usize,
    /// SQLite durability for the run: full or normal.
    #[arg(long, default_value = "full", value_parser = parse_synchronous)]
    pub synchronous: Synchronous,
    /// Also measure enqueue -> applied latency at this many events/s.
    #[arg(long)]
    pub rate: Option<u32>,
    /// Events per enqueue transaction in the latency run.
    #[arg(long, default_value_t = 1)]
    pub producer_batch: usize,
    /// Also measure file saved -> rules live, this many times.
    #[arg(long, default_value_t = 0)]
    pub reloads: usize,
    /// Also measure `enqueue` latency while the daemon is inside a 2 s
    /// event.
    #[arg(long)]
    pub slow_event: bool,
    /// Measure throughput and ceiling this many times, each on a fresh
    /// store, and report the median run (by ratio to the ceiling).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Measure the PostgreSQL store instead, on this server (a URL whose
    /// user may create databases): throughput next to the ceiling of the
    /// same writes on the same server.
    #[arg(long, env = "INBOXD_BENCH_PG_URL")]
    pub postgres: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Figures {
    pub events: usize,
    pub preloaded: usize,
    pub synchronous: String,
    /// The median run (by ratio to the ceiling).
    #[serde(flatten)]
    pub median: Run,
    /// Every run, in order.
    pub runs: Vec<Run>,
    pub close_10k_ticket_ms: f64,
    pub peak_memory_mb: f64,
    pub latency: Option<Latency>,
    pub reload: Option<Latency>,
    pub enqueue_beside_slow_event: Option<Latency>,
}

/// Percentiles, in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(mut samples: Vec<f64>) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Some(Latency {
            samples: samples.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        })
    }
}

/// A scratch installation: the given rules, copied, and a config of its own.
struct Scratch {
    _dir: tempfile::TempDir,
    config_file: PathBuf,
    store_path: PathBuf,
    rules_dir: PathBuf,
}

impl Scratch {
    fn new(rules_from: &Path, synchronous: Synchronous, name: &str) -> anyhow::Result<Scratch> {
        let dir = tempfile::tempdir().context("cannot create a scratch directory")?;
        let rules_dir = dir.path().join("rules");
        std::fs::create_dir_all(&rules_dir)?;
        for entry in walkdir::WalkDir::new(rules_from) {
            let entry = entry?;
            let target = rules_dir.join(entry.path().strip_prefix(rules_from)?);
            if entry.file_type().is_dir() {
                std::fs::create_dir_all(&target)?;
            } else {
                std::fs::copy(entry.path(), &target)?;
            }
        }
        let store_path = dir.path().join(format!("{name}.db"));
        let config_file = dir.path().join("inboxd.toml");
        let sync = match synchronous {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        };
        std::fs::write(
            &config_file,
            format!("[store]\npath = \"{name}.db\"\nsynchronous = \"{sync}\"\n\n[rules]\ndir = \"rules\"\n"),
        )?;
        Ok(Scratch {
            _dir: dir,
            config_file,
            store_path,
            rules_dir,
        })
    }

    fn daemon(&self) -> anyhow::Result<Daemon> {
        Daemon::start(self.config_file.clone())
    }
}

/// One measurement of throughput next to the ceilings, on a fresh store.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub enqueue_per_s: f64,
    pub processed_per_s: f64,
    /// Every row the events wrote (state, outcome log, audit trail),
    /// written bare.
    pub ceiling_per_s: f64,
    pub ratio_to_ceiling: f64,
    /// The state rows alone, written bare.
    pub state_ceiling_per_s: f64,
    pub ratio_to_state_ceiling: f64,
}

pub fn run(config_file: &Path, options: &Options) -> anyhow::Result<Figures> {
    let config = Config::load(config_file)?;
    let rules_from = config.rules_dir.clone();
    let events = Workload::new(options.seed).take(options.events);

    let (first, peak_memory_mb) = throughput(&rules_from, options, &events)?;
    let mut runs = vec![first];
    for _ in 1..options.repeat {
        runs.push(throughput(&rules_from, options, &events)?.0);
    }
    let mut by_ratio = runs.clone();
    by_ratio.sort_by(|a, b| a.ratio_to_ceiling.total_cmp(&b.ratio_to_ceiling));
    let median = by_ratio[by_ratio.len() / 2].clone();

    let close_10k_ticket_ms = close_big_ticket(&rules_from, options.synchronous)?;
    let latency = match options.rate {
        Some(rate) => live::latency(&rules_from, options, rate)?,
        None => None,
    };
    let reload = if options.reloads > 0 {
        live::reload_latency(&rules_from, options)?
    } else {
        None
    };
    let enqueue_beside_slow_event = if options.slow_event {
        live::producers_beside_a_slow_event(&rules_from, options)?
    } else {
        None
    };
    Ok(Figures {
        enqueue_beside_slow_event,
        events: events.len(),
        preloaded: options.preload,
        synchronous: options.synchronous.pragma().to_lowercase(),
        median,
        runs,
        close_10k_ticket_ms,
        peak_memory_mb,
        latency,
        reload,
    })
}

/// The PostgreSQL measurement (`--postgres`), as text.
pub fn run_postgres(config_file: &Path, url: &str, options: &Options) -> anyhow::Result<String> {
    let config = Config::load(config_file)?;
    let events = Workload::new(options.seed).take(options.events);
    let runs = (0..options.repeat)
        .map(|_| postgres::throughput(&config.rules_dir, url, &events))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(postgres::to_text(events.len(), &runs))
}

/// Enqueues the workload, processes it with the daemon's code, then
/// measures the ceilings of what it wrote. Also returns the peak memory
/// after processing (the process's high-water mark, so it covers earlier
/// runs too).
fn throughput(
    rules_from: &Path,
    options: &Options,
    events: &[Event],
) -> anyhow::Result<(Run, f64)> {
    let scratch = Scratch::new(rules_from, options.synchronous, "bench")?;
    let mut daemon = scratch.daemon()?;
    let store = Store::open(&scratch.store_path, options.synchronous)?;
    let queue = Queue::open(&scratch.store_path, options.synchronous)?;
    preload(&store, options.preload)?;

    let started = Instant::now();
    for chunk in events.chunks(10_000) {
        queue.enqueue(chunk, &now_rfc3339())?;
    }
    let enqueue = started.elapsed();

    let started = Instant::now();
    let processed = daemon.drain(&Control::default())?;
    let processing = started.elapsed();
    anyhow::ensure!(
        processed == events.len(),
        "processed {processed} of {} events",
        events.len()
    );
    // Covers the preload, the queue and the daemon's work, not the
    // measurement of the ceiling.
    let peak_memory_mb = peak_memory_mb();
    // Nothing of the daemon's may write to the disk while the ceiling is
    // measured: stop its checkpoint thread and copy the WAL back now.
    drop(daemon);
    store.restart_wal()?;
    let ceiling = ceiling::measure(&store, options.synchronous, options.preload)?;
    let per_s = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    let processed_per_s = per_s(events.len(), processing);
    let ceiling_per_s = per_s(events.len(), ceiling.all_rows);
    let state_ceiling_per_s = per_s(events.len(), ceiling.state_rows);
    let run = Run {
        enqueue_per_s: per_s(events.len(), enqueue),
        processed_per_s,
        ceiling_per_s,
        ratio_to_ceiling: processed_per_s / ceiling_per_s,
        state_ceiling_per_s,
        ratio_to_state_ceiling: processed_per_s / state_ceiling_per_s,
    };
    Ok((run, peak_memory_mb))
}

/// Conversations `p1..pN`, each with its own ticket, written directly.
fn preload(store: &Store, count: usize) -> anyhow::Result<()> {
    for start in (0..count).step_by(50_000) {
        store.begin()?;
        for i in start..(start + 50_000).min(count) {
            let id = format!("p{i}");
            let ticket = format!("pt{i}");
            store.put_conversation(&Conversation {
                owner: Some("agent0".into()),
                contact: Some(format!("old{i}@example.com")),
                ..Conversation::new(&id)
            })?;
            store.put_ticket(&Ticket {
                id: ticket.clone(),
                status: "new".into(),
                owner: Some("agent0".into()),
                subject: None,
                properties: Default::default(),
                conversations: Vec::new(),
                deleted: false,
            })?;
            store.associate(&ticket, &id)?;
        }
        store.commit()?;
    }
    Ok(())
}

/// Closing one ticket that has 10,000 open conversations (P6), in ms.
fn close_big_ticket(rules_from: &Path, synchronous: Synchronous) -> anyhow::Result<f64> {
    let scratch = Scratch::new(rules_from, synchronous, "close")?;
    let mut daemon = scratch.daemon()?;
    let store = Store::open(&scratch.store_path, synchronous)?;
    store.begin()?;
    store.put_ticket(&Ticket {
        id: "big".into(),
        status: "new".into(),
        owner: None,
        subject: None,
        properties: Default::default(),
        conversations: Vec::new(),
        deleted: false,
    })?;
    for i in 0..10_000 {
        let id = format!("c{i}");
        store.put_conversation(&Conversation::new(&id))?;
        store.associate("big", &id)?;
    }
    store.commit()?;
    let close = Event {
        id: "close".into(),
        at: None,
        actor: None,
        kind: EventKind::TicketStatusChanged {
            ticket: "big".into(),
            status: "closed".into(),
        },
    };
    Queue::open(&scratch.store_path, synchronous)?.enqueue(&[close], &now_rfc3339())?;
    let started = Instant::now();
    daemon.drain(&Control::default())?;
    let elapsed = started.elapsed();
    let closed = Rc::new(store)
        .conversation("c9999")?
        .is_some_and(|c| c.status == inboxd::domain::state::ConversationStatus::Closed);
    anyhow::ensure!(closed, "the ticket's conversations were not closed");
    Ok(elapsed.as_secs_f64() * 1000.0)
}

/// The process's peak resident memory, from /proc (Linux).
fn peak_memory_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

impl Figures {
    pub fn to_text(&self) -> String {
        let m = &self.median;
        let mut out = format!(
            "events: {} (preloaded conversations: {}), synchronous={}\n",
            self.events, self.preloaded, self.synchronous
        );
        if self.runs.len() > 1 {
            let ratios: Vec<String> = self
                .runs
                .iter()
                .map(|r| format!("{:.2}", r.ratio_to_ceiling))
                .collect();
            out += &format!(
                "median of {} runs (ratios to ceiling: {})\n",
                self.runs.len(),
                ratios.join(", ")
            );
        }
        out += &format!(
            "enqueue:            {:>10.0} events/s\n\
             processed:          {:>10.0} events/s\n\
             ceiling:            {:>10.0} events/s (the same rows written bare: state, outcomes, audit)\n\
             state rows only:    {:>10.0} events/s\n\
             ratio to ceiling:   {:>10.2} ({:.2} to state rows only)\n\
             close a ticket with 10,000 conversations: {:.1} ms\n\
             peak memory:        {:>10.1} MB\n",
            m.enqueue_per_s,
            m.processed_per_s,
            m.ceiling_per_s,
            m.state_ceiling_per_s,
            m.ratio_to_ceiling,
            m.ratio_to_state_ceiling,
            self.close_10k_ticket_ms,
            self.peak_memory_mb
        );
        let line = |name: &str, l: &Latency| {
            format!(
                "{name}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)\n",
                l.p50_ms, l.p99_ms, l.max_ms, l.samples
            )
        };
        if let Some(l) = &self.latency {
            out += &line("enqueue -> applied", l);
        }
        if let Some(l) = &self.reload {
            out += &line("file saved -> rules live", l);
        }
        if let Some(l) = &self.enqueue_beside_slow_event {
            out += &line("enqueue while the daemon is in a 2 s event", l);
        }
        out
    }
}

fn parse_synchronous(text: &str) -> Result<Synchronous, String> {
    match text {
        "full" => Ok(Synchronous::Full),
        "normal" => Ok(Synchronous::Normal),
        other => Err(format!("{other:?}: expected full or normal")),
    }
}
