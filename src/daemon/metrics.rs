//! What the daemon counts for Prometheus (`GET /metrics`).
//!
//! prometheus-client rather than `metrics` + its exporter: one registry
//! the daemon owns and hands around (no global recorder to install once and
//! for all, which tests running several daemons in one process would
//! fight over), typed label sets, and a text encoder with no HTTP server
//! of its own.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::domain::outcome::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub webhook: String,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub status: u16,
}

pub struct Metrics {
    registry: Registry,
    pub processed: Family<OutcomeLabel, Counter>,
    pub event_duration: Histogram,
    pub rule_runs: Family<RuleLabel, Counter>,
    pub reloads: Family<ResultLabel, Counter>,
    pub webhook_deliveries: Family<WebhookLabels, Counter>,
    pub queue_depth: Gauge,
    pub queue_oldest_age: Gauge,
    pub store_up: Gauge,
    pub http_requests: Family<RequestLabels, Counter>,
    pub hubspot_skipped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let processed = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "inboxd_events_processed",
            "Events processed, by outcome",
            processed.clone(),
        );
        for outcome in Outcome::ALL {
            // Every outcome from the start, so that rate() sees the first.
            let _ = processed.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
        // 100 µs to ~26 s.
        let event_duration = Histogram::new(exponential_buckets(0.0001, 4.0, 10));
        registry.register(
            "inboxd_event_duration_seconds",
            "Time to evaluate and write one event (its rules and cascade included)",
            event_duration.clone(),
        );
        let rule_runs = Family::<RuleLabel, Counter>::default();
        registry.register("inboxd_rule_runs", "Rule runs, by rule", rule_runs.clone());
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "inboxd_reloads",
            "Rule reloads, by result (ok, unchanged, refused)",
            reloads.clone(),
        );
        for result in ["ok", "unchanged", "refused"] {
            let _ = reloads.get_or_create(&ResultLabel { result });
        }
        let webhook_deliveries = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "inboxd_webhook_deliveries",
            "Outbound webhook deliveries, by webhook and result",
            webhook_deliveries.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "inboxd_queue_depth",
            "Events waiting in the queue",
            queue_depth.clone(),
        );
        let queue_oldest_age = Gauge::default();
        registry.register(
            "inboxd_queue_oldest_age_seconds",
            "How long the oldest waiting event has waited (0 when none waits)",
            queue_oldest_age.clone(),
        );
        let store_up = Gauge::default();
        registry.register(
            "inboxd_store_up",
            "1 while the store works, 0 while the daemon waits for it",
            store_up.clone(),
        );
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "inboxd_http_requests",
            "HTTP requests answered, by route and status",
            http_requests.clone(),
        );
        let hubspot_skipped = Counter::default();
        registry.register(
            "inboxd_hubspot_notifications_skipped",
            "HubSpot notifications received that map to no inbox event",
            hubspot_skipped.clone(),
        );
        Metrics {
            registry,
            processed,
            event_duration,
            rule_runs,
            reloads,
            webhook_deliveries,
            queue_depth,
            queue_oldest_age,
            store_up,
            http_requests,
            hubspot_skipped,
        }
    }
}

impl Metrics {
    /// `count` more events with this outcome.
    pub fn processed(&self, outcome: Outcome, count: u64) {
        self.processed
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc_by(count);
    }

    pub fn rule_ran(&self, rule: &str) {
        self.rule_runs
            .get_or_create(&RuleLabel {
                rule: rule.to_string(),
            })
            .inc();
    }

    pub fn reloaded(&self, result: &'static str) {
        self.reloads.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn answered(&self, route: &str, status: u16) {
        self.http_requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                status,
            })
            .inc();
    }

    /// The text format Prometheus scrapes.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_metrics_are_rendered() {
        let metrics = Metrics::default();
        metrics.processed(Outcome::Rejected, 1);
        metrics.rule_ran("cascade-close");
        metrics.reloaded("refused");
        metrics.event_duration.observe(0.002);
        let text = metrics.render();
        for line in [
            "inboxd_events_processed_total{outcome=\"rejected\"} 1",
            "inboxd_events_processed_total{outcome=\"applied\"} 0",
            "inboxd_rule_runs_total{rule=\"cascade-close\"} 1",
            "inboxd_reloads_total{result=\"refused\"} 1",
            "inboxd_queue_depth 0",
            "inboxd_event_duration_seconds_count 1",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
