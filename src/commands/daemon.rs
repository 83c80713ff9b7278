//! `run`: the daemon's runtime. The main thread runs a tokio runtime where
//! the daemon's asynchronous tasks live (the signal handler, the HTTP
//! server); the engine loop runs on a thread of its own (its store
//! connection is not `Send`), and every task talks to it through one
//! `Control`: stop, reload, wake up.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;

use crate::daemon::{Control, Daemon, Metrics};
use crate::domain::config::Config;

pub fn run(
    config: PathBuf,
    drain: bool,
    watch: bool,
    now: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let clock = match now {
        Some(now) => Some(crate::domain::event::parse_time(now)?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the daemon's runtime")?;
    let control = Arc::new(Control::default());
    let metrics = Arc::new(Metrics::default());
    runtime.block_on(async {
        let signals = listen_for_signals(Arc::clone(&control))?;
        let server = if drain {
            None
        } else {
            start_http(&config, &control, &metrics).await?
        };
        let engine_control = Arc::clone(&control);
        let engine = tokio::task::spawn_blocking(move || {
            engine_loop(config, drain, watch, &engine_control, metrics, clock)
        });
        let result = engine
            .await
            .map_err(|e| anyhow::anyhow!("the engine stopped unexpectedly: {e}"))?;
        signals.abort();
        if let Some(server) = server {
            server.abort();
        }
        result
    })
}

/// The HTTP server, if the config has `[http]`. An address it cannot
/// listen on (taken, say) does not stop the daemon: it says so once it is
/// up, goes on processing events, and tries again every few seconds.
async fn start_http(
    config_file: &std::path::Path,
    control: &Arc<Control>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let config = Config::load(config_file)?;
    let Some(api) = crate::http::Api::new(config, Arc::clone(control), Arc::clone(metrics)) else {
        return Ok(None);
    };
    let address = api.listen_address();
    let first = crate::http::bind(address).await;
    let api = Arc::new(api);
    let control = Arc::clone(control);
    Ok(Some(tokio::spawn(async move {
        let listener = listen(address, first, &control).await;
        let address = listener.local_addr().unwrap_or(address);
        let serving = crate::http::serve(listener, Arc::clone(&api), std::future::pending());
        // Said once the daemon is up: a store that cannot open is the one
        // line a failed start prints.
        let announce = async {
            until_ready(&control).await;
            tracing::info!(%address, "HTTP API listening");
            api.warn_of_missing_secrets();
            std::future::pending::<()>().await
        };
        tokio::select! {
            served = serving => if let Err(e) = served {
                tracing::error!("the HTTP server stopped: {e:#}");
            },
            () = announce => {}
        }
    })))
}

/// How often a daemon that cannot listen tries again.
const LISTEN_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// The listener: `first` if it was bound, else bound again until it is.
async fn listen(
    address: std::net::SocketAddr,
    first: anyhow::Result<tokio::net::TcpListener>,
    control: &Control,
) -> tokio::net::TcpListener {
    let mut bound = first;
    let mut said = false;
    loop {
        match bound {
            Ok(listener) => return listener,
            Err(e) => {
                if !said {
                    until_ready(control).await;
                    tracing::error!(
                        "{e:#}; inboxd goes on without its HTTP API and tries again every {} s",
                        LISTEN_RETRY.as_secs()
                    );
                    said = true;
                }
                tokio::time::sleep(LISTEN_RETRY).await;
                bound = crate::http::bind(address).await;
            }
        }
    }
}

async fn until_ready(control: &Control) {
    while !control.is_ready() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The engine: `--drain` processes what is queued and returns; otherwise
/// it runs until asked to stop.
fn engine_loop(
    config: PathBuf,
    drain: bool,
    watch: bool,
    control: &Arc<Control>,
    metrics: Arc<Metrics>,
    now: Option<time::OffsetDateTime>,
) -> anyhow::Result<ExitCode> {
    if drain {
        // A batch job: a store that fails is an error to report now.
        let mut daemon = Daemon::start(config)?;
        if let Some(now) = now {
            daemon.use_clock(std::rc::Rc::new(crate::domain::clock::SetClock::new(now)));
        }
        daemon.announce()?;
        let done = daemon.drain(control)?;
        tracing::info!(events = done, "queue drained");
        return Ok(ExitCode::SUCCESS);
    }
    // The daemon waits out a store that is unavailable for a while.
    let Some(mut daemon) = Daemon::start_patiently(config.clone(), control)? else {
        return Ok(ExitCode::SUCCESS);
    };
    daemon.use_metrics(Arc::clone(&metrics));
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
        control.set_ready(true);
        crate::daemon::webhooks::start(&daemon.rules().config, control, &metrics);
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
