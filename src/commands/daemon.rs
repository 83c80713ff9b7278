//! `run`: the daemon's runtime. The main thread runs a tokio runtime where
//! the daemon's asynchronous tasks live (the signal handler today, the
//! HTTP server and deliveries later); the engine loop runs on a thread of
//! its own (its store connection is not `Send`), and every task talks to
//! it through one `Control`: stop, reload, wake up.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;

use crate::daemon::{Control, Daemon};

pub fn run(config: PathBuf, drain: bool, watch: bool) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the daemon's runtime")?;
    let control = Arc::new(Control::default());
    runtime.block_on(async {
        let signals = listen_for_signals(Arc::clone(&control))?;
        let engine_control = Arc::clone(&control);
        let engine =
            tokio::task::spawn_blocking(move || engine_loop(config, drain, watch, &engine_control));
        let result = engine
            .await
            .map_err(|e| anyhow::anyhow!("the engine stopped unexpectedly: {e}"))?;
        signals.abort();
        result
    })
}

/// The engine: `--drain` processes what is queued and returns; otherwise
/// it runs until asked to stop.
fn engine_loop(
    config: PathBuf,
    drain: bool,
    watch: bool,
    control: &Arc<Control>,
) -> anyhow::Result<ExitCode> {
    if drain {
        // A batch job: a store that fails is an error to report now.
        let mut daemon = Daemon::start(config)?;
        daemon.announce()?;
        let done = daemon.drain(control)?;
        tracing::info!(events = done, "queue drained");
        return Ok(ExitCode::SUCCESS);
    }
    // The daemon waits out a store that is unavailable for a while.
    let Some(mut daemon) = Daemon::start_patiently(config.clone(), control)? else {
        return Ok(ExitCode::SUCCESS);
    };
    if watch {
        let rules = daemon.rules();
        let watches = crate::daemon::watch::start(
            &config,
            &rules.rules_dir,
            &rules.config.store_path,
            control,
        )
        .context("cannot watch the config and rules directories (try --no-watch)")?;
        daemon.keep_watching(watches);
    }
    if daemon.announce_patiently(control)? {
        daemon.run(control)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGINT/SIGTERM ask the daemon to stop after the event in hand; a second
/// one exits at once (the open transaction is simply not committed).
/// SIGHUP asks for a reload. A task of the runtime.
fn listen_for_signals(control: Arc<Control>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let listen = || -> std::io::Result<_> {
        Ok((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        ))
    };
    let (mut interrupt, mut terminate, mut hangup) =
        listen().context("cannot listen for signals")?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: reloading the rules");
                    control.request_reload();
                    continue;
                }
            }
            if control.stop.load(Ordering::SeqCst) {
                tracing::warn!("second signal: exiting now");
                std::process::exit(130);
            }
            tracing::info!("stopping after the event in hand");
            control.request_stop();
        }
    }))
}
