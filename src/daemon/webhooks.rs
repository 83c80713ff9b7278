//! Outbound webhooks: for each `[[webhook]]`, a thread that sends its
//! messages (feed entries, notifications) in cursor order, one at a time,
//! signed per Standard Webhooks, retrying with back-off until a 2xx, and
//! keeping its progress in `<db>.webhooks` after each one. It reads the
//! feed through a connection of its own: a slow or dead receiver holds up
//! its own messages only, never the engine.

use std::sync::Arc;
use std::time::Duration;

use crate::daemon::metrics::{Metrics, WebhookLabels};
use crate::daemon::webhook_signature::SigningKey;
use crate::daemon::Control;
use crate::domain::config::{Config, WebhookConfig};
use crate::domain::feed::{messages, Message};
use crate::store::{open_progress, open_reader, Delivery, DeliveryProgress, Reader};

/// A receiver has this long to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// Back-off after a failed attempt: doubling from the first to the last.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(600);
/// How long a `Retry-After` may ask to wait, at most.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Feed entries read at once.
const PAGE: usize = 256;
/// How often an idle webhook looks at the feed when no commit wakes it.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Starts a delivery thread per webhook whose secret is set; says why for
/// the others.
pub fn start(config: &Config, control: &Arc<Control>, metrics: &Arc<Metrics>) {
    for hook in &config.webhooks {
        let secret = std::env::var(&hook.secret_env).unwrap_or_default();
        let key = match SigningKey::from_secret(&secret) {
            Ok(key) => key,
            Err(why) => {
                let why = if secret.is_empty() {
                    format!(
                        "{} is not set: nothing is sent to this webhook (set it, restart inboxd)",
                        hook.secret_env
                    )
                } else {
                    format!(
                        "{}: {why}: nothing is sent to this webhook",
                        hook.secret_env
                    )
                };
                tracing::error!(webhook = %hook.name, "{why}");
                note_error(config, &hook.name, why);
                continue;
            }
        };
        let sender = Sender {
            lease_holder: crate::store::postgres::Lease::new().holder,
            hook: hook.clone(),
            key,
            config: config.clone(),
            control: Arc::clone(control),
            metrics: Arc::clone(metrics),
        };
        let name = format!("webhook {}", hook.name);
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || sender.run());
        if let Err(e) = spawned {
            tracing::error!(webhook = %hook.name, "cannot start its delivery thread: {e}");
        }
    }
}

struct Sender {
    /// This daemon's name as a lease holder (PostgreSQL).
    lease_holder: String,
    hook: WebhookConfig,
    key: SigningKey,
    config: Config,
    control: Arc<Control>,
    metrics: Arc<Metrics>,
}

/// What became of one attempt.
enum Attempt {
    Delivered,
    Failed {
        error: String,
        retry_after: Option<Duration>,
    },
}

impl Sender {
    fn run(self) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(ANSWER_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("inboxd/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut pause = FIRST_RETRY;
        while !self.control.stopping() {
            if let Err(e) = self.deliver_what_is_due(&agent) {
                tracing::warn!(webhook = %self.hook.name, "deliveries paused: {e:#}");
                self.sleep(pause);
                pause = (pause * 2).min(LAST_RETRY);
                continue;
            }
            pause = FIRST_RETRY;
        }
    }

    /// Sends every message due, then waits for the feed to grow.
    fn deliver_what_is_due(&self, agent: &ureq::Agent) -> anyhow::Result<()> {
        let store = open_reader(&self.config)?;
        let identity = store.identity()?;
        let progress = open_progress(&self.config)?;
        let mut delivery = progress.load(&self.hook.name)?;
        let mut paused = false;
        while !self.control.stopping() {
            if !self.consumes(store.as_ref())? {
                paused = true;
                self.sleep(IDLE_POLL);
                continue;
            }
            if paused {
                // Another daemon delivered meanwhile: go on from where it got.
                delivery = progress.load(&self.hook.name)?;
                paused = false;
            }
            let seen = self.control.commits();
            // The entry of the last message too: it may hold more parts.
            let page = store.feed(delivery.cursor - 1, PAGE)?;
            let due: Vec<Message> = page
                .iter()
                .flat_map(|entry| messages(entry, &self.hook.name, self.hook.changes))
                .filter(|m| (m.cursor, m.part) > (delivery.cursor, delivery.part))
                .collect();
            for message in &due {
                let id = message.id(&identity);
                if !self.send_until_done(agent, message, &id, &mut delivery, progress.as_ref())? {
                    return Ok(()); // stopping
                }
            }
            match page.last() {
                Some(last) if last.cursor > delivery.cursor => {
                    // Entries with nothing for this webhook: skipped for good.
                    delivery.cursor = last.cursor;
                    delivery.part = i64::MAX;
                    progress.save(&self.hook.name, &delivery)?;
                }
                _ => {}
            }
            if page.len() < PAGE {
                self.control.wait_for_commit(seen, IDLE_POLL);
            }
        }
        Ok(())
    }

    /// Whether this daemon consumes the store, and so delivers: on
    /// PostgreSQL only the lease's holder does (one that lost the lease
    /// stops sending until it holds it again).
    fn consumes(&self, store: &dyn Reader) -> anyhow::Result<bool> {
        if self.config.store_url.is_none() {
            return Ok(true);
        }
        Ok(store.lease_holder()?.as_deref() == Some(self.lease_holder.as_str()))
    }

    /// Tries one message until it is delivered (or given up after
    /// `max_attempts`); `false` if asked to stop meanwhile.
    fn send_until_done(
        &self,
        agent: &ureq::Agent,
        message: &Message,
        id: &str,
        delivery: &mut Delivery,
        progress: &dyn DeliveryProgress,
    ) -> anyhow::Result<bool> {
        loop {
            if self.control.stopping() {
                return Ok(false);
            }
            match self.attempt(agent, message, id) {
                Attempt::Delivered => {
                    self.count("delivered");
                    *delivery = Delivery {
                        cursor: message.cursor,
                        part: message.part,
                        attempts: 0,
                        last_error: None,
                        next_attempt: None,
                        delivered_at: Some(crate::domain::event::now_rfc3339()),
                        given_up: delivery.given_up,
                    };
                    progress.save(&self.hook.name, delivery)?;
                    return Ok(true);
                }
                Attempt::Failed { error, retry_after } => {
                    self.count("failed");
                    delivery.attempts += 1;
                    let attempts = delivery.attempts;
                    if self.hook.max_attempts.is_some_and(|max| attempts >= max) {
                        tracing::error!(
                            webhook = %self.hook.name,
                            message = %id,
                            "given up after {attempts} attempts: {error}"
                        );
                        self.count("given_up");
                        delivery.cursor = message.cursor;
                        delivery.part = message.part;
                        delivery.attempts = 0;
                        delivery.given_up += 1;
                        delivery.last_error = Some(error);
                        delivery.next_attempt = None;
                        progress.save(&self.hook.name, delivery)?;
                        return Ok(true);
                    }
                    let wait = retry_after.unwrap_or_else(|| backoff(attempts));
                    tracing::warn!(
                        webhook = %self.hook.name,
                        message = %id,
                        "attempt {attempts} failed: {error}; next in {}",
                        humantime::format_duration(Duration::from_secs(wait.as_secs().max(1)))
                    );
                    delivery.last_error = Some(error);
                    delivery.next_attempt = Some(after_now(wait));
                    progress.save(&self.hook.name, delivery)?;
                    self.sleep(wait);
                }
            }
        }
    }

    fn attempt(&self, agent: &ureq::Agent, message: &Message, id: &str) -> Attempt {
        // The attempt's time signs it (`webhook-timestamp`); the body says
        // when the event happened, so a retry sends the same body.
        let timestamp = time::OffsetDateTime::now_utc();
        let occurred =
            (message.at.clone()).unwrap_or_else(|| crate::domain::clock::rfc3339(timestamp));
        let body = serde_json::json!({
            "type": message.kind,
            "timestamp": occurred,
            "data": message.data,
        })
        .to_string();
        let signature = self.key.sign(id, timestamp.unix_timestamp(), &body);
        let sent = agent
            .post(&self.hook.url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.unix_timestamp().to_string())
            .header("webhook-signature", &signature)
            .send(body.as_bytes());
        match sent {
            Ok(response) if response.status().is_success() => Attempt::Delivered,
            Ok(response) => Attempt::Failed {
                error: format!("the receiver answered {}", response.status()),
                retry_after: response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(retry_after),
            },
            Err(e) => Attempt::Failed {
                error: format!("no answer: {e}"),
                retry_after: None,
            },
        }
    }

    fn count(&self, result: &'static str) {
        self.metrics
            .webhook_deliveries
            .get_or_create(&WebhookLabels {
                webhook: self.hook.name.clone(),
                result,
            })
            .inc();
    }

    /// Sleeps `wait`, waking early to stop.
    fn sleep(&self, wait: Duration) {
        let until = std::time::Instant::now() + wait;
        while !self.control.stopping() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }
}

/// 1 s doubling to 10 min, each within ±25 % (so that many webhooks
/// failing together do not retry together).
fn backoff(attempts: u32) -> Duration {
    let base = FIRST_RETRY
        .saturating_mul(1 << attempts.saturating_sub(1).min(20))
        .min(LAST_RETRY);
    base.mul_f64(0.75 + fastrand::f64() * 0.5)
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    let wait = match value.trim().parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value.trim())
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    };
    Some(wait.clamp(FIRST_RETRY, LONGEST_RETRY_AFTER))
}

fn after_now(wait: Duration) -> String {
    crate::domain::clock::rfc3339(time::OffsetDateTime::now_utc() + wait)
}

/// Records why a webhook sends nothing, for `status`.
fn note_error(config: &Config, webhook: &str, error: String) {
    let noted = open_progress(config).and_then(|progress| {
        let mut delivery = progress.load(webhook)?;
        delivery.last_error = Some(error);
        delivery.next_attempt = None;
        Ok(progress.save(webhook, &delivery)?)
    });
    if let Err(e) = noted {
        tracing::warn!(webhook, "cannot record its state: {e:#}");
    }
}

/// A webhook as `status` and `inboxd webhooks` show it.
#[derive(Debug, serde::Serialize)]
pub struct WebhookState {
    pub name: String,
    pub url: String,
    /// Messages due after the last one delivered.
    pub lag: u64,
    #[serde(flatten)]
    pub delivery: Delivery,
}

impl WebhookState {
    pub fn to_text(&self) -> String {
        let mut text = format!("{}: {} message(s) due", self.name, self.lag);
        if let Some(error) = &self.delivery.last_error {
            text.push_str(&format!(", last error: {error}"));
        }
        if let Some(next) = &self.delivery.next_attempt {
            text.push_str(&format!(", next attempt {next}"));
        }
        if self.delivery.given_up > 0 {
            text.push_str(&format!(", {} given up", self.delivery.given_up));
        }
        text.push('\n');
        text
    }
}

/// Every configured webhook's state, read from the store and the progress
/// file (creating neither).
pub fn report(config: &Config, store: &dyn Reader) -> anyhow::Result<Vec<WebhookState>> {
    config
        .webhooks
        .iter()
        .map(|hook| {
            let delivery = store.delivery(&hook.name)?;
            let lag = store.messages_due(delivery.cursor, &hook.name, hook.changes)?;
            Ok(WebhookState {
                name: hook.name.clone(),
                url: hook.url.clone(),
                lag,
                delivery,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_ten_minutes_with_jitter() {
        for (attempts, base) in [(1, 1.0), (2, 2.0), (5, 16.0), (11, 600.0), (40, 600.0)] {
            let wait = backoff(attempts).as_secs_f64();
            assert!(
                wait >= base * 0.75 && wait <= base * 1.25,
                "{attempts}: {wait}"
            );
        }
    }

    #[test]
    fn retry_after_is_seconds_or_a_date_within_bounds() {
        assert_eq!(retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("0"), Some(FIRST_RETRY));
        assert_eq!(retry_after("999999"), Some(LONGEST_RETRY_AFTER));
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        let wait = retry_after(&soon).unwrap().as_secs();
        assert!((118..=120).contains(&wait), "{wait}");
        assert_eq!(retry_after("soon"), None);
    }
}
