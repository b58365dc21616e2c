//! Detection: the watch-fed caches ([`aegis_k8s::cache`]) say which namespaces changed, and what the
//! analyzer finds in them becomes Incident objects.
//!
//! A change to a Pod, a workload or a Service only marks its namespace dirty; a short debounce later
//! each dirty namespace is analyzed once (one snapshot from memory, however many pods changed), and
//! every namespace in scope is analyzed again on a slower resync, for what no such change announces
//! (a node that stopped reporting, an Event). Nothing is re-listed from the API server: the caches,
//! and a metadata watch of Namespaces for the resync, are fed by watches. Incidents are
//! created under deterministic names (`crd::incident_name`): another replica, or this one after a
//! restart, finds the object already there (409) instead of creating a duplicate. A resource with an
//! unfinished incident gets no second one.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aegis_analysis::Snapshot;
use aegis_k8s::cache::{Caches, Touched};
use aegis_model::ResourceRef;
use futures::FutureExt;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::Notify;

use crate::crd::{Incident, IncidentSpec, incident_name};

/// Which namespaces and workloads the operator watches.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Watch only these namespaces; empty: every namespace (but the excluded ones).
    pub namespaces: Vec<String>,
    /// Only namespaces labelled `aegis.io/watch=enabled` (an opt-in per namespace).
    pub opt_in: bool,
    /// Only pods and workloads matching this label selector.
    pub label_selector: Option<String>,
    /// Never these when `namespaces` is empty (the operator's own namespace, kube-system …). Shadows
    /// are always excluded.
    pub exclude: Vec<String>,
}

/// The label that opts a namespace in when `Scope::opt_in` is set.
pub const OPT_IN_LABEL: &str = "aegis.io/watch";

impl Scope {
    /// Shadows never; a namespace named in `namespaces` always (naming it is explicit); otherwise any
    /// namespace not excluded.
    pub fn admits(&self, ns: &str) -> bool {
        if ns.starts_with("aegis-shadow-") {
            return false;
        }
        if !self.namespaces.is_empty() {
            return self.namespaces.iter().any(|n| n == ns);
        }
        !self.exclude.iter().any(|e| e == ns)
    }

    /// The namespaces to analyze at a resync, from the watched Namespaces' metadata (`None`: the
    /// namespaces are named and need no watch).
    fn namespaces(&self, known: Option<&Store<PartialObjectMeta<Namespace>>>) -> Vec<String> {
        let Some(known) = known else {
            return self.namespaces.iter().filter(|n| self.admits(n)).cloned().collect();
        };
        let opted_in = |n: &PartialObjectMeta<Namespace>| {
            !self.opt_in || n.metadata.labels.as_ref().and_then(|l| l.get(OPT_IN_LABEL)).is_some_and(|v| v == "enabled")
        };
        let mut out: Vec<String> =
            known.state().iter().filter(|n| opted_in(n)).filter_map(|n| n.metadata.name.clone()).filter(|n| self.admits(n)).collect();
        if !self.namespaces.is_empty() {
            out.retain(|n| self.namespaces.contains(n));
        }
        out.sort();
        out
    }
}

/// What one pass over a namespace did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Detected {
    pub created: Vec<String>,
    /// Incidents found that already had an object (or an unfinished one for the same resource).
    pub known: usize,
}

/// The generation of the analyzed resource, from the snapshot itself (what was analyzed is what is
/// recorded: a change after the snapshot makes the incident superseded).
fn generation(snapshot: &Snapshot, r: &ResourceRef) -> i64 {
    let pick = |m: &kube::core::ObjectMeta| m.name.as_deref() == Some(&r.name) && m.namespace.as_deref() == Some(&r.namespace);
    let g = match r.kind.as_str() {
        "Deployment" => snapshot.deployments.iter().find(|d| pick(&d.metadata)).and_then(|d| d.metadata.generation),
        "StatefulSet" => snapshot.stateful_sets.iter().find(|d| pick(&d.metadata)).and_then(|d| d.metadata.generation),
        "DaemonSet" => snapshot.daemon_sets.iter().find(|d| pick(&d.metadata)).and_then(|d| d.metadata.generation),
        "Job" => snapshot.jobs.iter().find(|d| pick(&d.metadata)).and_then(|d| d.metadata.generation),
        "PodDisruptionBudget" => snapshot.pod_disruption_budgets.iter().find(|d| pick(&d.metadata)).and_then(|d| d.metadata.generation),
        "Ingress" => snapshot.ingresses.iter().find(|d| pick(&d.metadata)).and_then(|d| d.metadata.generation),
        "Gateway" => snapshot.gateways.iter().find(|d| pick(&d.metadata)).and_then(|d| d.metadata.generation),
        "ListenerSet" => snapshot.listener_sets.iter().find(|d| pick(&d.metadata)).and_then(|d| d.metadata.generation),
        kind if aegis_analysis::gateway::RouteKind::from_kind(kind).is_some() => {
            snapshot.routes.iter().find(|d| d.kind.as_str() == kind && pick(&d.metadata)).and_then(|d| d.metadata.generation)
        }
        "HorizontalPodAutoscaler" => {
            snapshot.horizontal_pod_autoscalers.iter().find(|d| pick(&d.metadata)).and_then(|d| d.metadata.generation)
        }
        "Service" => {
            let selector = snapshot
                .services
                .iter()
                .find(|d| pick(&d.metadata))
                .and_then(|s| s.spec.as_ref()?.selector.as_ref())
                .and_then(|sel| serde_json::to_value(sel).ok());
            return crate::crd::change_marker("Service", None, selector.as_ref());
        }
        _ => None,
    };
    g.unwrap_or(0)
}

/// What `snapshot` shows, each incident with the generation of its resource. Synchronous: the
/// snapshot (megabytes at thousands of pods) is dropped before anything is sent.
pub fn findings(snapshot: &Snapshot) -> Vec<(aegis_model::Incident, i64)> {
    aegis_analysis::analyze(snapshot)
        .into_iter()
        .map(|i| {
            let g = generation(snapshot, &i.resource);
            (i, g)
        })
        .collect()
}

/// Create the Incidents of `found` ([`findings`] of `namespace`) that do not exist yet. Which exist is
/// read from `known`, the controllers' watch-fed stores of Incidents.
pub async fn detect_in(
    client: &Client,
    namespace: &str,
    found: Vec<(aegis_model::Incident, i64)>,
    known: &[Store<Incident>],
) -> Result<Detected, aegis_k8s::K8sError> {
    let mut out = Detected::default();
    if found.is_empty() {
        return Ok(out);
    }
    let api: Api<Incident> = Api::namespaced(client.clone(), namespace);
    let existing: Vec<Arc<Incident>> =
        known.iter().flat_map(|s| s.state()).filter(|i| i.metadata.namespace.as_deref() == Some(namespace)).collect();
    let names: BTreeSet<String> = existing.iter().map(|i| i.name_any()).collect();
    let open: BTreeSet<ResourceRef> = existing
        .iter()
        .filter(|i| !i.status.as_ref().map(|s| s.phase).unwrap_or_default().is_terminal())
        .map(|i| i.spec.resource.clone())
        .collect();
    for (incident, detected_generation) in found {
        let name = incident_name(&incident.resource, incident.category, detected_generation);
        if names.contains(&name) || open.contains(&incident.resource) {
            out.known += 1;
            continue;
        }
        let mut obj = Incident::new(
            &name,
            IncidentSpec {
                resource: incident.resource.clone(),
                category: incident.category,
                severity: incident.severity,
                detected_generation,
                approval: None,
            },
        );
        obj.metadata.namespace = Some(namespace.to_owned());
        obj.metadata.labels = Some(BTreeMap::from([
            ("app.kubernetes.io/managed-by".to_owned(), "aegis".to_owned()),
            ("aegis.io/resource-kind".to_owned(), incident.resource.kind.to_ascii_lowercase()),
            ("aegis.io/category".to_owned(), incident.category.to_string()),
        ]));
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {
                tracing::info!(incident = %name, namespace, resource = %incident.resource, category = %incident.category, "incident created");
                out.created.push(name);
            }
            Err(kube::Error::Api(e)) if e.code == 409 => out.known += 1,
            Err(source) => return Err(aegis_k8s::K8sError::Patch { target: format!("Incident/{name}"), source }),
        }
    }
    Ok(out)
}

/// The kinds whose changes mark a namespace dirty (the others only keep the caches current).
const TRIGGERS: [&str; 11] =
    ["Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Service", "HTTPRoute", "GRPCRoute", "TLSRoute", "Gateway"];

/// Run detection until the future is dropped: the caches' changes mark namespaces dirty, a debounce
/// batches them, a resync covers everything in scope. `changes` is the caches' stream: detection
/// polls it, which keeps the caches current. `incidents` are the controllers' stores of Incidents:
/// which exist is read from them, not listed.
pub async fn run(
    client: Client,
    scope: Scope,
    debounce: Duration,
    resync: Duration,
    caches: Arc<Caches>,
    changes: impl Stream<Item = Touched>,
    incidents: Vec<Store<Incident>>,
) {
    let dirty: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let wake = Arc::new(Notify::new());
    let mark = {
        let (dirty, wake, scope) = (dirty.clone(), wake.clone(), scope.clone());
        changes.for_each(move |t| {
            if TRIGGERS.contains(&t.kind) && scope.admits(&t.namespace) {
                if let Ok(mut d) = dirty.lock() {
                    d.insert(t.namespace);
                }
                wake.notify_one();
            }
            async {}
        })
    };
    // Which namespaces exist (and their opt-in label), for the resync: a metadata watch, not a list
    // per resync. Not needed when the namespaces are named and no opt-in applies.
    let (known, namespaces) = if scope.namespaces.is_empty() || scope.opt_in {
        let (store, writer) = reflector::store();
        let stream = watcher(Api::<PartialObjectMeta<Namespace>>::all(client.clone()), watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::warn!(kind = "Namespace", error = %e, "watch error; the watcher retries");
                }
            })
            .boxed();
        (Some(store), stream)
    } else {
        (None, futures::future::pending::<()>().boxed())
    };
    let detect = async {
        caches.ready().await;
        if let Some(known) = &known {
            let _ = known.wait_until_ready().await;
        }
        // Which Incidents exist is read from these: before their first list, every finding would look new.
        for store in &incidents {
            let _ = store.wait_until_ready().await;
        }
        tracing::info!("caches filled; detecting");
        // None: never resynced, so the first pass is a resync. (`Instant::now() - resync` panicked when
        // --resync exceeded the host's uptime.)
        let mut last_resync: Option<Instant> = None;
        // The namespaces of the resync pass in progress, analysed one per turn: a change is never queued
        // behind a whole pass (at 10,000 pods a pass takes about a second).
        let mut resyncing: VecDeque<String> = VecDeque::new();
        let mut trim = Trim::default();
        loop {
            if resyncing.is_empty() && last_resync.is_some() {
                let wait = until_resync(last_resync, resync);
                tokio::select! {
                    _ = wake.notified() => tokio::time::sleep(debounce).await,
                    _ = tokio::time::sleep(wait) => {}
                    // Quiet for a moment after analyses: what they dropped goes back now, not at the next change.
                    _ = tokio::time::sleep(TRIM_WHEN_QUIET), if trim.pending() => {
                        trim.now(release_freed_memory);
                        continue;
                    }
                }
            }
            let in_scope: BTreeSet<String> = scope.namespaces(known.as_ref()).into_iter().collect();
            if until_resync(last_resync, resync).is_zero() {
                resyncing = in_scope.iter().cloned().collect();
                last_resync = Some(Instant::now());
            }
            // What changed first, then the next namespace of the resync.
            let mut batch: Vec<String> = dirty.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default().into_iter().collect();
            if let Some(next) = resyncing.pop_front()
                && !batch.contains(&next)
            {
                batch.push(next);
            }
            if scope.opt_in {
                batch.retain(|ns| in_scope.contains(ns));
            }
            if !batch.is_empty() {
                trim.before_analyses(release_freed_memory);
            }
            for ns in batch {
                let Some(found) = caches.snapshot(&ns).map(|snapshot| findings(&snapshot)) else { continue };
                match detect_in(&client, &ns, found, &incidents).await {
                    Ok(d) if !d.created.is_empty() => tracing::debug!(namespace = %ns, created = ?d.created, "detected"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(namespace = %ns, error = %e, "detection failed; retried on the next event or resync"),
                }
            }
        }
    };
    tokio::join!(mark, namespaces, detect);
}

/// How often the memory of the snapshots analyses decoded and dropped is given back while they go on
/// (at most).
const TRIM_EVERY: Duration = Duration::from_secs(10);
/// How long detection is idle after analyses before their memory is given back at once.
const TRIM_WHEN_QUIET: Duration = Duration::from_secs(2);

/// When detection gives freed memory back: at most every [`TRIM_EVERY`] while analyses follow each
/// other, and once when they stop, so memory at rest does not keep the garbage of the last passes
/// until the next change comes.
#[derive(Debug)]
struct Trim {
    last: Instant,
    /// Analyses ran since the last trim.
    pending: bool,
}

impl Default for Trim {
    fn default() -> Self {
        Trim { last: Instant::now(), pending: false }
    }
}

impl Trim {
    fn pending(&self) -> bool {
        self.pending
    }

    /// Before a batch of analyses: trim what earlier ones freed if the last trim is old enough.
    fn before_analyses(&mut self, release: impl FnOnce()) {
        if self.last.elapsed() >= TRIM_EVERY {
            self.now(release);
        }
        self.pending = true;
    }

    fn now(&mut self, release: impl FnOnce()) {
        release();
        self.last = Instant::now();
        self.pending = false;
    }
}

/// Give the pages of the snapshots that passes decoded and dropped back to the system. glibc keeps
/// freed memory in its heap, between the long-lived cache entries, so RSS after churn stayed near the
/// peak of the passes (docs/benchmarks.md, "The operator at scale"); `malloc_trim` releases free
/// pages inside the heap as well as at its top. Other allocators (musl) give memory back themselves.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free pages back to the kernel; no live allocation is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How long until the next resync: at once when there has been none.
fn until_resync(last: Option<Instant>, resync: Duration) -> Duration {
    last.map_or(Duration::ZERO, |t| resync.saturating_sub(t.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_memory_goes_back_at_most_every_ten_seconds_during_analyses_and_once_when_they_stop() {
        let mut trim = Trim::default();
        let mut released = 0;
        assert!(!trim.pending(), "nothing analysed, nothing to give back when idle");
        trim.before_analyses(|| released += 1);
        trim.before_analyses(|| released += 1);
        assert_eq!(released, 0, "a trim a moment ago is recent enough");
        assert!(trim.pending(), "analyses ran: idle detection trims once");
        trim.now(|| released += 1);
        assert_eq!(released, 1);
        assert!(!trim.pending(), "and only once");
        trim.last -= TRIM_EVERY;
        trim.before_analyses(|| released += 1);
        assert_eq!(released, 2, "during a long run of analyses, every ten seconds");
    }

    #[test]
    fn a_resync_longer_than_the_hosts_uptime_is_due_at_once_without_overflow() {
        let ten_years = Duration::from_secs(10 * 365 * 24 * 3600);
        assert_eq!(until_resync(None, ten_years), Duration::ZERO);
        let just_now = Instant::now();
        assert!(until_resync(Some(just_now), ten_years) > Duration::from_secs(9 * 365 * 24 * 3600));
        assert_eq!(until_resync(Some(just_now), Duration::ZERO), Duration::ZERO);
    }

    /// A budget changed by a human opens a new incident if it still blocks; the same one does not.
    #[test]
    fn a_disruption_budget_incident_is_named_by_the_budgets_generation() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"policy/v1","kind":"PodDisruptionBudget",
            "metadata":{"name":"api","namespace":"shop","generation":3},"spec":{"minAvailable":2}}]}"#;
        let snapshot = Snapshot::from_text(text).unwrap();
        let r = ResourceRef { kind: "PodDisruptionBudget".into(), namespace: "shop".into(), name: "api".into() };
        assert_eq!(generation(&snapshot, &r), 3);
    }

    #[test]
    fn shadows_and_excluded_namespaces_are_never_watched() {
        let s = Scope { exclude: vec!["aegis-system".into()], ..Default::default() };
        assert!(s.admits("shop"));
        assert!(!s.admits("aegis-system"));
        assert!(!s.admits("aegis-shadow-1a2b3c4d"));
        let only =
            Scope { namespaces: vec!["shop".into(), "aegis-system".into()], exclude: vec!["aegis-system".into()], ..Default::default() };
        assert!(only.admits("shop") && !only.admits("billing"));
        assert!(only.admits("aegis-system"), "a namespace named explicitly is watched");
    }
}
