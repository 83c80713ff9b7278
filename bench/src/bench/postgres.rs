//! The PostgreSQL store: the daemon's throughput on a fresh database next
//! to the ceiling of the same row writes, written bare to another fresh
//! database on the same server, in the same run.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use inboxd::daemon::Control;
use inboxd::domain::event::{now_rfc3339, Event};
use inboxd::store::postgres::PgStore;

use super::{ceiling, Scratch};

#[derive(Debug, Clone, Serialize)]
pub struct PgRun {
    pub enqueue_per_s: f64,
    pub processed_per_s: f64,
    /// The same rows (state, outcomes, audit) written bare.
    pub ceiling_per_s: f64,
    pub ratio_to_ceiling: f64,
}

/// A database made for one measurement, dropped after.
struct Scratchbase {
    admin: String,
    name: String,
    url: String,
}

impl Scratchbase {
    fn create(admin: &str, what: &str) -> anyhow::Result<Scratchbase> {
        let name = format!("inboxd_bench_{what}_{}", std::process::id());
        let mut client = postgres::Client::connect(admin, postgres::NoTls)
            .context("cannot connect to the --postgres server")?;
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        client.batch_execute(&format!("CREATE DATABASE {name}"))?;
        Ok(Scratchbase {
            admin: admin.to_string(),
            url: with_database(admin, &name),
            name,
        })
    }
}

impl Drop for Scratchbase {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgresql", base));
    let authority = rest.split('/').next().unwrap_or("");
    format!("{scheme}://{authority}/{name}{query}")
}

/// One run: enqueue, drain with the daemon's code, then the ceiling.
pub fn throughput(
    rules_from: &std::path::Path,
    admin: &str,
    events: &[Event],
) -> anyhow::Result<PgRun> {
    let run_db = Scratchbase::create(admin, "run")?;
    let bare_db = Scratchbase::create(admin, "ceiling")?;
    let scratch = Scratch::new(
        rules_from,
        inboxd::domain::config::Synchronous::Full,
        "bench",
    )?;
    let config = std::fs::read_to_string(&scratch.config_file)?;
    std::fs::write(
        &scratch.config_file,
        config.replacen(
            "[store]\n",
            &format!("[store]\nurl = \"{}\"\n", run_db.url),
            1,
        ),
    )?;
    let store = PgStore::open(&run_db.url)?;
    let started = Instant::now();
    for chunk in events.chunks(10_000) {
        let entries = chunk.iter().map(|e| {
            let mut e = e.clone();
            e.at.get_or_insert_with(now_rfc3339);
            Ok((e.id.clone(), e.to_json()))
        });
        store.enqueue(entries, &now_rfc3339(), || {})?;
    }
    let enqueue = started.elapsed();
    let mut daemon = scratch.daemon()?;
    let started = Instant::now();
    let processed = daemon.drain(&Control::default())?;
    let processing = started.elapsed();
    drop(daemon);
    anyhow::ensure!(
        processed == events.len(),
        "processed {processed} of {} events",
        events.len()
    );
    let bare = PgStore::open(&bare_db.url)?;
    let ceiling = ceiling::measure_postgres(&store, &bare)?;
    let per_s = |d: Duration| events.len() as f64 / d.as_secs_f64();
    Ok(PgRun {
        enqueue_per_s: per_s(enqueue),
        processed_per_s: per_s(processing),
        ceiling_per_s: per_s(ceiling),
        ratio_to_ceiling: ceiling.as_secs_f64() / processing.as_secs_f64(),
    })
}

pub fn to_text(events: usize, runs: &[PgRun]) -> String {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.ratio_to_ceiling.total_cmp(&b.ratio_to_ceiling));
    let m = &sorted[sorted.len() / 2];
    let ratios: Vec<String> = runs
        .iter()
        .map(|r| format!("{:.2}", r.ratio_to_ceiling))
        .collect();
    format!(
        "PostgreSQL, {events} events, median of {} runs (ratios to ceiling: {})\n\
         enqueue:            {:>10.0} events/s\n\
         processed:          {:>10.0} events/s\n\
         ceiling:            {:>10.0} events/s (the same rows written bare: state, outcomes, audit)\n\
         ratio to ceiling:   {:>10.2}\n",
        runs.len(),
        ratios.join(", "),
        m.enqueue_per_s,
        m.processed_per_s,
        m.ceiling_per_s,
        m.ratio_to_ceiling
    )
}
