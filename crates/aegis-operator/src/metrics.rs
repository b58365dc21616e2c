//! Prometheus metrics, in the OpenMetrics text format on `/metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `aegis_incidents` | gauge (from the controllers' cache of Incidents, on the leader) | `phase`, `category` |
//! | `aegis_incident_transitions_total` | counter | `phase`, `category` |
//! | `aegis_verification_duration_seconds` | histogram | |
//! | `aegis_verification_phase_duration_seconds` | histogram | `phase` (shadow_create, apply, health, baseline_scan, candidate_scan) |
//! | `aegis_reconcile_duration_seconds` | histogram | `phase` (the Incident's phase the step ran in) |
//! | `aegis_scanner_duration_seconds` | histogram | `scanner` |
//! | `aegis_scanner_errors_total` | counter | `scanner` |
//! | `aegis_gate_verdicts_total` | counter | `verdict` |
//! | `aegis_fixes_applied_total`, `aegis_rollbacks_total` | counter | |
//! | `aegis_reconcile_errors_total` | counter | `phase`, `kind` (conflict, api, timeout, verification, invalid) |
//! | `aegis_kubernetes_request_duration_seconds` | histogram | `verb` (HTTP method, or WATCH), `code` (HTTP status, or `none`) |
//! | `aegis_kubernetes_request_errors_total` | counter | `verb`, `kind` (no_answer, conflict, client_error, server_error) |
//! | `aegis_falco_alerts_received_total`, `aegis_falco_alerts_stored_total`, `aegis_falco_requests_rejected_total` | counter | |
//! | `aegis_leader` | gauge (1 on the replica that leads) | |

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use aegis_model::Category;
use aegis_scanners::falco::ReceiverCounters;
use aegis_verify::VerificationResult;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::crd::Phase;

type Labels = Vec<(&'static str, String)>;

/// The operator's metrics. Cloning shares them.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    incidents: Family<Labels, Gauge>,
    transitions: Family<Labels, Counter>,
    verification: Histogram,
    verification_phases: Family<Labels, Histogram>,
    reconcile_duration: Family<Labels, Histogram>,
    scanner_duration: Family<Labels, Histogram>,
    scanner_errors: Family<Labels, Counter>,
    verdicts: Family<Labels, Counter>,
    applied: Counter,
    rolled_back: Counter,
    reconcile_errors: Family<Labels, Counter>,
    leader: Gauge<i64, AtomicI64>,
}

/// Every Kubernetes API call's latency and failures, fed by the client's layer
/// ([`aegis_k8s::client`]). Made before the client, registered with the other metrics.
#[derive(Clone)]
pub struct ApiCalls {
    latency: Family<Labels, Histogram>,
    errors: Family<Labels, Counter>,
}

impl Default for ApiCalls {
    fn default() -> Self {
        ApiCalls {
            latency: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 16))),
            errors: Family::default(),
        }
    }
}

impl ApiCalls {
    /// The client's observer.
    pub fn observer(&self) -> aegis_k8s::client::Observer {
        let calls = self.clone();
        Arc::new(move |call: aegis_k8s::client::Call<'_>| calls.record(call))
    }

    fn record(&self, call: aegis_k8s::client::Call<'_>) {
        let code = call.status.map(|c| c.to_string()).unwrap_or_else(|| "none".into());
        self.latency.get_or_create(&vec![("verb", call.verb.to_owned()), ("code", code)]).observe(call.elapsed.as_secs_f64());
        let kind = match call.status {
            None => Some("no_answer"),
            Some(409) => Some("conflict"),
            Some(c) if c >= 500 => Some("server_error"),
            // 404 is how a `get_opt` learns that something is absent: not an error.
            Some(c) if c >= 400 && c != 404 => Some("client_error"),
            Some(_) => None,
        };
        if let Some(kind) = kind {
            self.errors.get_or_create(&vec![("verb", call.verb.to_owned()), ("kind", kind.to_owned())]).inc();
        }
    }
}

/// The Falco receiver's counters, read at scrape time.
#[derive(Debug)]
struct FalcoCollector(Arc<ReceiverCounters>);

impl Collector for FalcoCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = &self.0;
        for (name, help, value) in [
            ("aegis_falco_alerts_received", "Falco alerts in accepted requests", &c.received),
            ("aegis_falco_alerts_stored", "Falco alerts newly stored", &c.stored),
            ("aegis_falco_requests_rejected", "Falco receiver requests refused", &c.rejected),
        ] {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

impl Metrics {
    pub fn new(falco: Option<Arc<ReceiverCounters>>, api: ApiCalls) -> Metrics {
        let mut registry = Registry::default();
        registry.register(
            "aegis_kubernetes_request_duration_seconds",
            "Kubernetes API calls until the answer's headers, by verb and status",
            api.latency,
        );
        registry.register("aegis_kubernetes_request_errors", "Kubernetes API calls that failed, by verb and kind", api.errors);
        let incidents = Family::<Labels, Gauge>::default();
        registry.register("aegis_incidents", "Incidents by phase and category", incidents.clone());
        let transitions = Family::<Labels, Counter>::default();
        registry.register("aegis_incident_transitions", "Incident phase transitions", transitions.clone());
        let verification = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register("aegis_verification_duration_seconds", "Shadow verification wall time", verification.clone());
        let verification_phases = Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.05, 2.0, 14)));
        registry.register(
            "aegis_verification_phase_duration_seconds",
            "Shadow verification phases: shadow creation, apply, health window, baseline and candidate scans",
            verification_phases.clone(),
        );
        let reconcile_duration = Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 16)));
        registry.register(
            "aegis_reconcile_duration_seconds",
            "Reconcile step durations, by the phase they ran in",
            reconcile_duration.clone(),
        );
        let scanner_duration = Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.05, 2.0, 14)));
        registry.register("aegis_scanner_duration_seconds", "Scanner run durations", scanner_duration.clone());
        let scanner_errors = Family::<Labels, Counter>::default();
        registry.register("aegis_scanner_errors", "Scanner runs that failed or were skipped", scanner_errors.clone());
        let verdicts = Family::<Labels, Counter>::default();
        registry.register("aegis_gate_verdicts", "Verification verdicts", verdicts.clone());
        let applied = Counter::default();
        registry.register("aegis_fixes_applied", "Fixes applied to production", applied.clone());
        let rolled_back = Counter::default();
        registry.register("aegis_rollbacks", "Fixes rolled back after a regression", rolled_back.clone());
        let reconcile_errors = Family::<Labels, Counter>::default();
        registry.register("aegis_reconcile_errors", "Reconcile steps that failed (and were retried)", reconcile_errors.clone());
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register("aegis_leader", "1 on the replica that holds the leader Lease", leader.clone());
        if let Some(counters) = falco {
            registry.register_collector(Box::new(FalcoCollector(counters)));
        }
        Metrics {
            registry: Arc::new(registry),
            incidents,
            transitions,
            verification,
            verification_phases,
            reconcile_duration,
            scanner_duration,
            scanner_errors,
            verdicts,
            applied,
            rolled_back,
            reconcile_errors,
            leader,
        }
    }

    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn transition(&self, category: Category, phase: Phase) {
        self.transitions.get_or_create(&vec![("phase", phase.to_string()), ("category", category.to_string())]).inc();
    }

    pub fn reconciled(&self, phase: Phase, took: Duration) {
        self.reconcile_duration.get_or_create(&vec![("phase", phase.to_string())]).observe(took.as_secs_f64());
    }

    pub fn verification(&self, result: &VerificationResult, wall: Duration) {
        self.verification.observe(wall.as_secs_f64());
        let t = &result.timings;
        for (phase, ms) in [
            ("shadow_create", t.shadow_create_ms),
            ("apply", t.apply_ms),
            ("health", t.health_ms),
            ("baseline_scan", t.baseline_scan_ms),
            ("candidate_scan", t.candidate_scan_ms),
        ] {
            self.verification_phases.get_or_create(&vec![("phase", phase.to_owned())]).observe(ms as f64 / 1000.0);
        }
        self.verdicts.get_or_create(&vec![("verdict", result.verdict.to_string())]).inc();
        for run in result.security.iter().flat_map(|r| r.scanners.iter()) {
            let scanner = vec![("scanner", run.scanner.to_string())];
            self.scanner_duration.get_or_create(&scanner).observe(run.duration_ms as f64 / 1000.0);
            if !run.status.is_ok() {
                self.scanner_errors.get_or_create(&scanner).inc();
            }
        }
    }

    pub fn applied(&self) {
        self.applied.inc();
    }

    pub fn rolled_back(&self) {
        self.rolled_back.inc();
    }

    pub fn reconcile_error(&self, phase: Phase, kind: &str) {
        self.reconcile_errors.get_or_create(&vec![("phase", phase.to_string()), ("kind", kind.to_owned())]).inc();
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(leading as i64);
    }

    /// Replace the incident gauge with a fresh count (every phase × category seen is reset first, so a
    /// phase that emptied reads 0 rather than its last value).
    pub fn set_incidents(&self, counts: &BTreeMap<(Phase, Category), u64>) {
        self.incidents.clear();
        for ((phase, category), n) in counts {
            self.incidents.get_or_create(&vec![("phase", phase.to_string()), ("category", category.to_string())]).set(*n as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric_and_the_falco_counters() {
        let counters = Arc::new(ReceiverCounters::default());
        counters.stored.fetch_add(3, Ordering::Relaxed);
        let api = ApiCalls::default();
        let m = Metrics::new(Some(counters), api.clone());
        m.transition(Category::OOMKilled, Phase::Resolved);
        m.reconcile_error(Phase::Applying, "conflict");
        let observe = api.observer();
        observe(aegis_k8s::client::Call { verb: "PUT", status: Some(409), elapsed: Duration::from_millis(3) });
        observe(aegis_k8s::client::Call { verb: "GET", status: Some(404), elapsed: Duration::from_millis(1) });
        observe(aegis_k8s::client::Call { verb: "PATCH", status: None, elapsed: Duration::from_secs(30) });
        m.reconciled(Phase::Verifying, Duration::from_millis(1500));
        m.set_incidents(&[((Phase::AwaitingApproval, Category::CrashLoopBackOff), 2)].into_iter().collect());
        let text = m.encode();
        for needle in [
            "aegis_incident_transitions_total{phase=\"Resolved\",category=\"OOMKilled\"} 1",
            "aegis_incidents{phase=\"AwaitingApproval\",category=\"CrashLoopBackOff\"} 2",
            "aegis_reconcile_errors_total{phase=\"Applying\",kind=\"conflict\"} 1",
            "aegis_kubernetes_request_duration_seconds_count{verb=\"PUT\",code=\"409\"} 1",
            "aegis_kubernetes_request_errors_total{verb=\"PUT\",kind=\"conflict\"} 1",
            "aegis_kubernetes_request_errors_total{verb=\"PATCH\",kind=\"no_answer\"} 1",
            "aegis_falco_alerts_stored_total 3",
            "aegis_verification_duration_seconds_count 0",
            "aegis_leader 0",
            "aegis_reconcile_duration_seconds_count{phase=\"Verifying\"} 1",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        assert!(!text.contains("verb=\"GET\",kind="), "an absent object (404) is not an error:\n{text}");
    }

    /// Every series the sample Grafana dashboard (deploy/grafana) queries is one the operator registers.
    #[test]
    fn the_sample_dashboard_queries_only_metrics_the_operator_exports() {
        // The names registered above, and the Falco collector's.
        let source = include_str!("metrics.rs");
        let mut registered: Vec<String> = source
            .split("registry.register(")
            .skip(1)
            .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next().map(str::to_owned))
            .collect();
        registered.extend(["aegis_falco_alerts_received", "aegis_falco_alerts_stored", "aegis_falco_requests_rejected"].map(String::from));
        assert!(registered.len() >= 12, "{registered:?}");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/grafana/aegis-operator.json");
        let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let exprs: Vec<&str> = dashboard["panels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["targets"].as_array().unwrap().iter().filter_map(|t| t["expr"].as_str()))
            .collect();
        assert!(exprs.len() >= 10, "{exprs:?}");
        for expr in exprs {
            for name in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("aegis_")) {
                let family = ["_bucket", "_total", "_count", "_sum"].iter().fold(name, |n, suffix| n.trim_end_matches(suffix));
                assert!(registered.iter().any(|r| r == family), "the dashboard queries {name}, which the operator does not export");
            }
        }
    }
}
