//! The HTTP API of `spec/INTERFACE.md`, served by `inboxd run` when the
//! config has an `[http]` table: events in (`/v1/events`, `/v1/hubspot`),
//! records out, dry-runs, health and metrics.
//!
//! It runs on the daemon's tokio runtime, beside the engine's thread, and
//! shares nothing with the engine's transaction: producers write the queue
//! in transactions of their own (through their own connections) and wake
//! the engine through `Control`; readers read the store's last commit.

mod auth;
mod changes;
mod pool;
mod probes;
mod producers;
mod readers;
mod reply;
mod request;
mod server;

use std::sync::Arc;

pub use auth::{check_hubspot_v3, sign_hubspot_v3, SignedRequest};
pub use server::{bind, serve};

use crate::daemon::{Control, Metrics};
use crate::domain::config::{Config, HttpConfig};
use crate::store::{open_sendable_reader, Producer, Reader};
use pool::Pool;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// What every handler shares.
pub struct Api {
    config: Config,
    http: HttpConfig,
    /// `None`: the env var is unset, and the routes it guards answer 401.
    token: Option<String>,
    hubspot_secret: Option<String>,
    control: Arc<Control>,
    metrics: Arc<Metrics>,
    queues: Pool<Producer>,
    stores: Pool<Box<dyn Reader + Send>>,
}

impl Api {
    /// The API for `config` (which has `[http]`), its secrets read from the
    /// environment now.
    pub fn new(config: Config, control: Arc<Control>, metrics: Arc<Metrics>) -> Option<Api> {
        let http = config.http.clone()?;
        let token = secret(&http.token_env);
        let hubspot_secret = secret(&http.hubspot_secret_env);
        let (for_queues, for_stores) = (config.clone(), config.clone());
        Some(Api {
            // The daemon checked its queue when it started.
            queues: Pool::new(move || Producer::open(&for_queues, true)),
            stores: Pool::new(move || open_sendable_reader(&for_stores)),
            config,
            http,
            token,
            hubspot_secret,
            control,
            metrics,
        })
    }
}

impl Api {
    pub fn listen_address(&self) -> std::net::SocketAddr {
        self.http.listen
    }

    /// Says what is refused for want of a secret.
    pub fn warn_of_missing_secrets(&self) {
        if self.token.is_none() {
            tracing::warn!(
                "{} is not set: every /v1 route but /v1/hubspot answers 401",
                self.http.token_env
            );
        }
        if self.hubspot_secret.is_none() {
            tracing::warn!(
                "{} is not set: /v1/hubspot answers 401",
                self.http.hubspot_secret_env
            );
        }
    }
}

/// A secret from the environment; an empty one is none.
fn secret(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|value| !value.is_empty())
}
