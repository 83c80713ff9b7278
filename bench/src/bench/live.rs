//! Measurements against a daemon running in a thread of this process with
//! its file watchers: enqueue → applied latency, and file saved → rules
//! live.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{Latency, Options, Scratch, Workload};
use inboxd::daemon::{Control, Daemon};
use inboxd::domain::event::Event;
use inboxd::domain::event::{now_rfc3339, parse_time};
use inboxd::scripting::ruleset::RuleSet;
use inboxd::store::{Queue, Store};

/// Enqueue → applied at `rate` events/s, `producer_batch` events per
/// enqueue, with the daemon running in its own thread and woken by the
/// doorbell.
pub fn latency(rules_from: &Path, options: &Options, rate: u32) -> anyhow::Result<Option<Latency>> {
    let scratch = Scratch::new(rules_from, options.synchronous, "latency")?;
    let count = options.events.min(rate as usize * 10);
    let events = Workload::new(options.seed + 1).take(count);
    let (control, daemon) = spawn_daemon(&scratch)?;
    let store = Store::open(&scratch.store_path, options.synchronous)?;
    let queue = Queue::open(&scratch.store_path, options.synchronous)?;
    let batch = options.producer_batch.max(1);
    let interval = Duration::from_secs_f64(batch as f64 / rate as f64);
    let started = Instant::now();
    for (i, events) in events.chunks(batch).enumerate() {
        let due = started + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        queue.enqueue(events, &now_rfc3339())?;
        inboxd::daemon::doorbell::ring(&scratch.store_path);
    }
    while queue.depth(store.queue_position()?.as_ref())? > 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    control.request_stop();
    daemon
        .join()
        .map_err(|_| anyhow::anyhow!("the daemon thread panicked"))??;
    let mut samples = Vec::new();
    for (at, done) in store.enqueue_and_processed_times()? {
        let (at, done) = (parse_time(&at)?, parse_time(&done)?);
        samples.push((done - at).as_seconds_f64() * 1000.0);
    }
    Ok(Latency::of(samples))
}

/// `enqueue` latency while the daemon is inside one long event: a rule
/// that runs until its 2 s limit. Producers write one event per
/// transaction, every 5 ms, from their own connection.
pub fn producers_beside_a_slow_event(
    rules_from: &Path,
    options: &Options,
) -> anyhow::Result<Option<Latency>> {
    let scratch = Scratch::new(rules_from, options.synchronous, "slow")?;
    std::fs::write(
        scratch.rules_dir.join("bench_slow.rhai"),
        "if event.conversation == \"bench-slow\" {\n  let s = \"x\"; for i in 0..15 { s += s; }\n  loop { s.replace(\"x\", \"y\"); }\n}\n",
    )?;
    std::fs::write(
        scratch.rules_dir.join("zz_bench_slow.toml"),
        "[[rule]]\nname = \"bench-slow\"\non = [\"conversation.created\"]\nscript = \"bench_slow.rhai\"\n",
    )?;
    let (control, daemon) = spawn_daemon(&scratch)?;
    let queue = Queue::open(&scratch.store_path, options.synchronous)?;
    let event = |id: &str, conversation: &str| Event {
        id: id.into(),
        at: None,
        actor: None,
        kind: inboxd::domain::event::EventKind::ConversationCreated {
            conversation: conversation.into(),
            inbox: None,
            channel: None,
            contact: None,
            subject: None,
            owner: None,
        },
    };
    queue.enqueue(&[event("slow", "bench-slow")], &now_rfc3339())?;
    inboxd::daemon::doorbell::ring(&scratch.store_path);
    // The daemon is woken at once and spends 2 s in the event.
    std::thread::sleep(Duration::from_millis(100));
    let mut samples = Vec::new();
    let until = Instant::now() + Duration::from_millis(1500);
    let mut i = 0;
    while Instant::now() < until {
        i += 1;
        let started = Instant::now();
        queue.enqueue(
            &[event(&format!("p{i}"), &format!("pc{i}"))],
            &now_rfc3339(),
        )?;
        inboxd::daemon::doorbell::ring(&scratch.store_path);
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(5));
    }
    control.request_stop();
    daemon
        .join()
        .map_err(|_| anyhow::anyhow!("the daemon thread panicked"))??;
    Ok(Latency::of(samples))
}

/// File saved → new rules live, as the daemon's status reports it.
pub fn reload_latency(rules_from: &Path, options: &Options) -> anyhow::Result<Option<Latency>> {
    let scratch = Scratch::new(rules_from, options.synchronous, "reload")?;
    let (control, daemon) = spawn_daemon(&scratch)?;
    let store = Store::open(&scratch.store_path, options.synchronous)?;
    let mut samples = Vec::new();
    for i in 0..options.reloads {
        let before = current_ruleset(&store)?;
        let started = Instant::now();
        std::fs::write(
            scratch.rules_dir.join("bench_probe.rhai"),
            format!("// {i}\n"),
        )?;
        while current_ruleset(&store)? == before {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "no reload after 10 s"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        // Let the debounce window close before the next save.
        std::thread::sleep(Duration::from_millis(300));
    }
    control.request_stop();
    daemon
        .join()
        .map_err(|_| anyhow::anyhow!("the daemon thread panicked"))??;
    Ok(Latency::of(samples))
}

fn current_ruleset(store: &Store) -> anyhow::Result<String> {
    Ok(store
        .daemon_status()?
        .map(|s| s.ruleset)
        .unwrap_or_default())
}

type DaemonThread = std::thread::JoinHandle<anyhow::Result<()>>;

/// `inboxd run` in a thread of this process, watching its files.
fn spawn_daemon(scratch: &Scratch) -> anyhow::Result<(Arc<Control>, DaemonThread)> {
    let control = Arc::new(Control::default());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let c = Arc::clone(&control);
    let config_file = scratch.config_file.clone();
    let handle = std::thread::spawn(move || -> anyhow::Result<()> {
        let started = (|| {
            let mut daemon = Daemon::start(config_file.clone())?;
            let rules: &RuleSet = daemon.rules();
            let watches = inboxd::daemon::watch::start(
                &config_file,
                &rules.rules_dir,
                &rules.config.store_path,
                &c,
            )?;
            daemon.keep_watching(watches);
            daemon.announce()?;
            Ok::<_, anyhow::Error>(daemon)
        })();
        match started {
            Ok(mut daemon) => {
                let _ = ready_tx.send(Ok(()));
                daemon.run(&c)
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                Ok(())
            }
        }
    });
    ready_rx.recv().context("the daemon thread ended")??;
    Ok((control, handle))
}
