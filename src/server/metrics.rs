//! Prometheus metrics, in the text exposition format at `/metrics`.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::engine::FindingClass;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    allowed: bool,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    rule: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectedConnectionLabels {
    listener: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Histogram,
    in_flight: Gauge,
    reviews_running: Gauge,
    rejected: Family<ReasonLabels, Counter>,
    findings: Family<FindingLabels, Counter>,
    cert_expiry: Gauge<i64, AtomicI64>,
    cert_reloads: Family<ResultLabels, Counter>,
    cert_reload_attempts: Family<TriggerLabels, Counter>,
    connections_open: Family<ListenerLabels, Gauge>,
    connections_rejected: Family<RejectedConnectionLabels, Counter>,
    connections_evicted: Family<ListenerLabels, Counter>,
    connections_limit: Family<ListenerLabels, Gauge>,
    handshake_failures: Family<ReasonLabels, Counter>,
    context_synced: Family<KindLabels, Gauge>,
    context_objects: Family<KindLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `image_config_webhook` prefix.
    pub fn new() -> Self {
        let mut metrics = Self::unregistered();
        let mut registry = Registry::with_prefix("image_config_webhook");
        metrics.register_requests(&mut registry);
        metrics.register_certificate(&mut registry);
        metrics.register_connections(&mut registry);
        metrics.register_context(&mut registry);
        metrics.registry = registry;
        metrics
    }

    /// Every metric at zero, in an empty registry.
    fn unregistered() -> Self {
        Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            // 25 µs to about 1.6 s.
            duration: Histogram::new(exponential_buckets(0.000_025, 2.0, 17)),
            in_flight: Gauge::default(),
            reviews_running: Gauge::default(),
            rejected: Family::default(),
            findings: Family::default(),
            cert_expiry: Gauge::default(),
            cert_reloads: Family::default(),
            cert_reload_attempts: Family::default(),
            connections_open: Family::default(),
            connections_rejected: Family::default(),
            connections_evicted: Family::default(),
            connections_limit: Family::default(),
            handshake_failures: Family::default(),
            context_synced: Family::default(),
            context_objects: Family::default(),
        }
    }

    /// The requests to `/validate`: answers, time, work in progress, refusals, findings.
    fn register_requests(&self, registry: &mut Registry) {
        registry.register(
            "requests",
            "Admission requests answered",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time from request to response",
            prometheus_client::registry::Unit::Seconds,
            self.duration.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Admission requests being answered",
            self.in_flight.clone(),
        );
        registry.register(
            "reviews_running",
            "Reviews running (small ones on the connection's task, larger ones on the review threads), including those whose request already got a timeout answer",
            self.reviews_running.clone(),
        );
        registry.register(
            "requests_rejected",
            "Requests to /validate answered without a verdict, by reason (body_budget and review_timeout mean overload)",
            self.rejected.clone(),
        );
        for reason in [
            "body_budget",
            "review_timeout",
            "too_large",
            "body_timeout",
            "panic",
        ] {
            self.rejected
                .get_or_create(&ReasonLabels { reason })
                .inc_by(0);
        }
        registry.register(
            "rule_findings",
            "Rule findings by rule and kind (error, warning, ratcheted)",
            self.findings.clone(),
        );
    }

    /// The serving certificate: its expiry, its reloads and the looks for a change.
    fn register_certificate(&self, registry: &mut Registry) {
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate, Unix seconds",
            self.cert_expiry.clone(),
        );
        registry.register(
            "certificate_reloads",
            "Certificate reload attempts by result",
            self.cert_reloads.clone(),
        );
        registry.register(
            "certificate_reload_attempts",
            "Times the certificate files were read to look for a change, by trigger (poll: the poll interval; watch: a directory event that can change them)",
            self.cert_reload_attempts.clone(),
        );
        for trigger in ["poll", "watch"] {
            self.cert_reload_attempts
                .get_or_create(&TriggerLabels {
                    trigger: trigger.to_owned(),
                })
                .inc_by(0);
        }
    }

    /// The connections of each listener: open, refused, evicted, and the limit.
    fn register_connections(&self, registry: &mut Registry) {
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes of the webhook listener that failed, by reason (peer_rejected_certificate: the client does not trust the serving certificate; no_client_certificate and client_certificate_refused: mTLS; incompatible: no common version, suite or group; protocol: not TLS; timeout; closed)",
            self.handshake_failures.clone(),
        );
        registry.register(
            "connections_open",
            "Open connections by listener (webhook: HTTPS, probe: plain HTTP), handshaking ones included",
            self.connections_open.clone(),
        );
        registry.register(
            "connections_rejected",
            "Connections closed on accept because a connection limit was reached (reason: limit, the listener's; per_peer, one client address's)",
            self.connections_rejected.clone(),
        );
        registry.register(
            "connections_evicted",
            "Idle connections closed to make room for a new one when every slot was taken",
            self.connections_evicted.clone(),
        );
        registry.register(
            "connections_max",
            "The listener's limit on open connections",
            self.connections_limit.clone(),
        );
    }

    /// The cluster context of `serve --cluster-context` (see `server::watch`), by kind, at 0
    /// for every kind until it is listed (and so for good without the flag).
    fn register_context(&self, registry: &mut Registry) {
        registry.register(
            "context_synced",
            "1 while the kind's cluster context is listed and watched (serve --cluster-context), 0 before, after a failure until listed again, and without the flag",
            self.context_synced.clone(),
        );
        registry.register(
            "context_objects",
            "Objects of the kind in the cluster context the reviews judge with (the last seen while unavailable)",
            self.context_objects.clone(),
        );
        for kind in super::watch::KIND_NAMES {
            let labels = KindLabels { kind };
            self.context_synced.get_or_create(&labels).set(0);
            self.context_objects.get_or_create(&labels).set(0);
        }
    }

    /// Whether a kind of the cluster context is listed and watched now.
    pub fn context_synced(&self, kind: &'static str, synced: bool) {
        self.context_synced
            .get_or_create(&KindLabels { kind })
            .set(i64::from(synced));
    }

    /// How many objects of a kind the cluster context holds now.
    pub fn context_objects(&self, kind: &'static str, count: usize) {
        self.context_objects
            .get_or_create(&KindLabels { kind })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Counts one answered admission request.
    pub fn request(&self, operation: &'static str, allowed: bool, code: u16, elapsed: Duration) {
        // Labels of static texts and numbers: a request allocates nothing to be counted.
        let labels = RequestLabels {
            operation,
            allowed,
            code,
        };
        self.requests.get_or_create(&labels).inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// Counts the findings of one verdict, given as `(rule, class, how many)`.
    pub fn findings(&self, findings: &[(&'static str, FindingClass, usize)]) {
        for (rule, class, count) in findings {
            let labels = FindingLabels {
                rule,
                kind: class.as_str(),
            };
            self.findings
                .get_or_create(&labels)
                .inc_by(u64::try_from(*count).unwrap_or(u64::MAX));
        }
    }

    /// Shows each handshake failure reason at zero until it happens.
    pub fn handshake_reasons(&self, reasons: &[&'static str]) {
        for &reason in reasons {
            self.handshake_failures
                .get_or_create(&ReasonLabels { reason })
                .inc_by(0);
        }
    }

    /// A TLS handshake failed for `reason` (see `server::handshake`).
    pub fn handshake_failed(&self, reason: &'static str) {
        self.handshake_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// The in-flight gauge.
    pub fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    /// The gauge of reviews running on the review threads.
    pub fn reviews_running(&self) -> &Gauge {
        &self.reviews_running
    }

    /// Records the notAfter of the certificate now served.
    pub fn cert_loaded(&self, not_after: i64) {
        self.cert_expiry.set(not_after);
    }

    /// The notAfter of the certificate now served, Unix seconds.
    pub fn cert_not_after(&self) -> i64 {
        self.cert_expiry.get()
    }

    /// Counts a reload attempt (`success` or `failure`).
    pub fn cert_reload(&self, result: &str) {
        self.cert_reloads
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// Counts one look at the certificate files (`poll` or `watch`), changed or not.
    pub fn cert_reload_attempt(&self, trigger: &str) {
        self.cert_reload_attempts
            .get_or_create(&TriggerLabels {
                trigger: trigger.to_owned(),
            })
            .inc();
    }

    fn listener(listener: &str) -> ListenerLabels {
        ListenerLabels {
            listener: listener.to_owned(),
        }
    }

    /// Records a listener's connection limit, and exports its other connection series at 0.
    pub fn connection_limit(&self, listener: &str, max: usize) {
        let labels = Self::listener(listener);
        self.connections_limit
            .get_or_create(&labels)
            .set(i64::try_from(max).unwrap_or(i64::MAX));
        self.connections_open.get_or_create(&labels).set(0);
        self.connections_evicted.get_or_create(&labels).inc_by(0);
        for reason in ["limit", "per_peer"] {
            self.connections_rejected
                .get_or_create(&RejectedConnectionLabels {
                    listener: listener.to_owned(),
                    reason: reason.to_owned(),
                })
                .inc_by(0);
        }
    }

    /// A connection took a slot.
    pub fn connection_opened(&self, listener: &str) {
        self.connections_open
            .get_or_create(&Self::listener(listener))
            .inc();
    }

    /// A connection gave its slot back.
    pub fn connection_closed(&self, listener: &str) {
        self.connections_open
            .get_or_create(&Self::listener(listener))
            .dec();
    }

    /// A connection was closed at accept because a limit (`limit` or `per_peer`) was reached.
    pub fn connection_rejected(&self, listener: &str, reason: &str) {
        self.connections_rejected
            .get_or_create(&RejectedConnectionLabels {
                listener: listener.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// An idle connection was closed to make room for a new one.
    pub fn connection_evicted(&self, listener: &str) {
        self.connections_evicted
            .get_or_create(&Self::listener(listener))
            .inc();
    }

    /// Counts a request to /validate answered without a verdict.
    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
