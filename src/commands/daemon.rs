//! `run`: the daemon, its watchers and its signals.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;

use crate::daemon::{Control, Daemon};

pub fn run(config: PathBuf, drain: bool, watch: bool) -> anyhow::Result<ExitCode> {
    let control = Arc::new(Control::default());
    listen_for_signals(Arc::clone(&control))?;
    if drain {
        // A batch job: a store that fails is an error to report now.
        let mut daemon = Daemon::start(config)?;
        daemon.announce()?;
        let done = daemon.drain(&control)?;
        tracing::info!(events = done, "queue drained");
        return Ok(ExitCode::SUCCESS);
    }
    // The daemon waits out a store that is unavailable for a while.
    let Some(mut daemon) = Daemon::start_patiently(config.clone(), &control)? else {
        return Ok(ExitCode::SUCCESS);
    };
    if watch {
        let rules = daemon.rules();
        let watches = crate::watch::start(
            &config,
            &rules.rules_dir,
            &rules.config.store_path,
            &control,
        )
        .context("cannot watch the config and rules directories (try --no-watch)")?;
        daemon.keep_watching(watches);
    }
    if daemon.announce_patiently(&control)? {
        daemon.run(&control)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGINT/SIGTERM ask the daemon to stop after the event in hand; a second
/// one exits at once (the open transaction is simply not committed).
/// SIGHUP asks for a reload.
fn listen_for_signals(control: Arc<Control>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal handler")?;
    let (mut interrupt, mut terminate, mut hangup) = runtime
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
                signal(SignalKind::hangup())?,
            ))
        })
        .context("cannot listen for signals")?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
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
        })
    });
    Ok(())
}
