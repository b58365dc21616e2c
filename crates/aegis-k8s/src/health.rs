//! Health of a workload after a change: the signals a shadow verification watches, and the ones
//! production monitoring after an apply will watch — one definition, so both judge alike.
//!
//! Only the workload's newest revision is judged (the newest ReplicaSet of a Deployment, a
//! StatefulSet's update revision): pods of the old, broken revision are expected to be unhealthy.
//! Fatal signals give an early verdict, so a wrong fix is rejected in seconds rather than at the
//! deadline: CrashLoopBackOff, OOMKilled and other restarts, image pull and config errors,
//! Unschedulable (after a grace: short in a shadow, the rollout timeout in production), a controller
//! that cannot create pods (quota, admission), a container that stayed
//! unready past its readiness probe's allowance, and a Service that selects no ready pod.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aegis_model::ResourceRef;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Event, Pod, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Client;
use kube::api::{Api, ListParams};

use crate::K8sError;

mod feeds;
use feeds::Feeds;

/// What to watch: a Deployment or StatefulSet, and the Services that must route to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthTarget {
    pub workload: ResourceRef,
    /// Services (in the workload's namespace) that must have a ready endpoint once the workload is up.
    pub services: Vec<String>,
    /// How long a pod may stay Unschedulable before that is fatal. Short in a shadow, whose capacity is
    /// part of what is proven; long in production, where capacity frees as old pods (and the shadow's)
    /// terminate and an autoscaler adds nodes — there the deadline judges.
    pub unschedulable_grace: Duration,
}

/// The shadow's grace for Unschedulable pods: the scheduler's first retries.
pub const SHADOW_UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(10);

/// How the workload fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Rolled out, every pod ready, no restart during the window, every Service routing to it.
    Healthy,
    /// A fatal signal (or not healthy by the deadline), with what was seen.
    Unhealthy { reasons: Vec<String> },
}

/// What the watch saw, for humans.
#[derive(Debug, Clone)]
pub struct HealthSummary {
    pub health: Health,
    pub observations: Vec<String>,
    pub elapsed: Duration,
}

/// How often the watch looks (at what its watches delivered: no API call).
const POLL: Duration = Duration::from_millis(500);

/// The health window as it stands, for a person watching (`aegis analyze --verify` on a terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthProgress {
    /// Pods of the newest revision, and how many of them are ready.
    pub pods: usize,
    pub ready: usize,
    /// Whole seconds the workload has been healthy (rolled out, ready, routed); `None` while it is not.
    pub healthy_for: Option<u64>,
    pub window: Duration,
}

impl std::fmt::Display for HealthProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let window = self.window.as_secs();
        match self.healthy_for {
            None if self.pods == 0 => write!(f, "waiting for pods of the new revision"),
            None => write!(f, "{}/{} pods ready", self.ready, self.pods),
            Some(h) if h < window => write!(f, "{}/{} pods ready, healthy {h}s of {window}s ({}s left)", self.ready, self.pods, window - h),
            Some(h) => {
                write!(f, "{}/{} pods ready, healthy {h}s: window done, giving liveness probes their chance to fail", self.ready, self.pods)
            }
        }
    }
}

/// Watch until healthy for `window`, a fatal signal, or `deadline`. The workload is read once for
/// its selector; then watches of it, its revisions, pods and Services' EndpointSlices feed each look.
pub async fn watch_health(client: &Client, target: &HealthTarget, window: Duration, deadline: Duration) -> Result<HealthSummary, K8sError> {
    watch_health_with(client, target, window, deadline, |_| {}).await
}

/// [`watch_health`], telling `progress` each time what it sees changes (pods ready, seconds healthy).
pub async fn watch_health_with(
    client: &Client,
    target: &HealthTarget,
    window: Duration,
    deadline: Duration,
    mut progress: impl FnMut(HealthProgress),
) -> Result<HealthSummary, K8sError> {
    let mut last_progress = None;
    let start = Instant::now();
    let mut observations = Vec::new();
    let selector = Workload::get(client, &target.workload).await?.selector();
    let feeds = Feeds::start(client, &target.workload, &selector, &target.services);
    if !feeds.listed(deadline).await? {
        let reason = format!("not healthy within {}s: the watches of {} did not list", deadline.as_secs(), target.workload);
        return Ok(HealthSummary {
            health: Health::Unhealthy { reasons: vec![reason.clone()] },
            observations: vec![reason],
            elapsed: start.elapsed(),
        });
    }
    let mut healthy_since: Option<Instant> = None;
    let mut unrouted_since: Option<Instant> = None;
    loop {
        let elapsed = start.elapsed();
        let workload =
            feeds.workload().ok_or_else(|| K8sError::Invalid(format!("{} was deleted while its health was watched", target.workload)))?;
        let rollout = rollout_state(&workload);
        // Until the controller has observed the latest spec, its "newest" revision is the one before
        // the change: judging those pods would blame the fix for what it replaces.
        if !rollout.observed {
            if elapsed >= deadline {
                let reason =
                    format!("not healthy within {}s: the controller has not observed the change ({})", deadline.as_secs(), rollout.detail);
                observations.push(reason.clone());
                return Ok(HealthSummary { health: Health::Unhealthy { reasons: vec![reason] }, observations, elapsed });
            }
            tokio::time::sleep(POLL).await;
            continue;
        }
        // A Deployment's newest ReplicaSet: its pods are the ones judged, its own failure to create them is fatal.
        let newest_rs = matches!(workload, Workload::Deployment(_)).then(|| newest_replica_set(&target.workload, &feeds)).flatten();
        let pods = newest_pods(&workload, newest_rs.as_deref(), &target.workload, &feeds);
        let now = Timestamp::now();
        let mut fatal: Vec<String> = newest_rs.iter().filter_map(|rs| replica_failure(&target.workload, rs)).collect();
        let mut all_ready = !pods.is_empty();
        let mut ready_pods = 0;
        let mut liveness_pending = 0;
        let mut unready_too_long = Vec::new();
        for pod in &pods {
            let signals = pod_signals(pod, now, target.unschedulable_grace);
            all_ready &= signals.ready;
            ready_pods += usize::from(signals.ready);
            liveness_pending = liveness_pending.max(signals.liveness_pending);
            fatal.extend(signals.fatal);
            unready_too_long.extend(signals.unready_past_probe);
        }
        if !unready_too_long.is_empty() {
            let events = Api::<Event>::namespaced(client.clone(), &target.workload.namespace)
                .list(&ListParams::default().fields("reason=Unhealthy"))
                .await
                .map_err(|source| K8sError::List { kind: "Event", scope: target.workload.namespace.clone(), source })?
                .items;
            fatal.extend(unready_too_long.iter().filter_map(|u| u.judged(&events)));
        }
        let mut unrouted = Vec::new();
        if rollout.done && all_ready {
            unrouted.extend(target.services.iter().filter(|svc| feeds.ready_endpoints(svc) == 0).cloned());
            // The endpoint controller needs a moment after pods become ready; a Service still empty a
            // full window (at least 5 s) later selects none of them.
            let since = *unrouted_since.get_or_insert_with(Instant::now);
            if unrouted.is_empty() {
                unrouted_since = None;
            } else if since.elapsed() >= window.max(Duration::from_secs(5)) {
                fatal.extend(unrouted.iter().map(|s| format!("Service {s} selects no ready pod of {}", target.workload)));
            }
        }
        if !fatal.is_empty() {
            fatal.sort();
            fatal.dedup();
            observations.push(format!("after {:.1}s: {}", elapsed.as_secs_f64(), fatal.join("; ")));
            return Ok(HealthSummary { health: Health::Unhealthy { reasons: fatal }, observations, elapsed });
        }
        // A watch that failed during the window may have missed a change: nothing is shown healthy
        // across it. If the watches keep failing, the deadline judges, with why.
        let watch_failure = healthy_since.and_then(|since| feeds.failed_since(since));
        if let Some(why) = &watch_failure {
            observations.push(format!("after {:.1}s: healthy window restarted: {why}", elapsed.as_secs_f64()));
            healthy_since = None;
        }
        let healthy = rollout.done && all_ready && unrouted.is_empty() && watch_failure.is_none();
        let now_progress = HealthProgress {
            pods: pods.len(),
            ready: ready_pods,
            healthy_for: healthy.then(|| healthy_since.map_or(0, |s| s.elapsed().as_secs())),
            window,
        };
        if last_progress != Some(now_progress) {
            progress(now_progress);
            last_progress = Some(now_progress);
        }
        if healthy {
            let since = *healthy_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= window && liveness_pending <= 0 {
                let routed =
                    if target.services.is_empty() { String::new() } else { format!(", routed by Service {}", target.services.join(", ")) };
                observations.push(format!(
                    "rolled out, {} pod(s) ready and without restarts for {:.0}s{routed}",
                    pods.len(),
                    since.elapsed().as_secs_f64()
                ));
                return Ok(HealthSummary { health: Health::Healthy, observations, elapsed });
            }
        } else {
            healthy_since = None;
        }
        if elapsed >= deadline {
            let failing = feeds.failed_since(start).map(|why| format!(" (last watch error: {why})")).unwrap_or_default();
            let reason = format!("not healthy within {}s: {}{failing}", deadline.as_secs(), rollout.detail);
            observations.push(reason.clone());
            return Ok(HealthSummary { health: Health::Unhealthy { reasons: vec![reason] }, observations, elapsed });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What one pod says.
#[derive(Debug, Default, PartialEq, Eq)]
struct PodSignals {
    ready: bool,
    /// Seconds until every container's liveness probe has had the chance to fail (0: it has). A pod
    /// is not shown healthy before then: a liveness probe on the wrong path or port lets the pod be
    /// ready for its first `failureThreshold × period` seconds, then gets it killed.
    liveness_pending: i64,
    fatal: Vec<String>,
    unready_past_probe: Vec<Unready>,
}

/// A container running but never ready for longer than its readiness probe allows.
#[derive(Debug, PartialEq, Eq)]
struct Unready {
    pod: String,
    container: String,
    seconds: i64,
    probe: String,
}

impl Unready {
    /// The reason, with the kubelet's last readiness probe failure for the pod; `None` while the
    /// kubelet has reported no such failure. A container can show unready past its allowance only
    /// because the kubelet has not yet reported the success (its status reaches the API server
    /// seconds late on a busy node): only the kubelet's own word that the probe failed makes the
    /// signal fatal early. Without it the deadline still decides, so nothing passes unproven.
    fn judged(&self, events: &[Event]) -> Option<String> {
        let failure = events
            .iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(&self.pod) && e.reason.as_deref() == Some("Unhealthy"))
            .filter_map(|e| e.message.as_deref())
            .rfind(|m| m.starts_with("Readiness probe failed"))?;
        Some(format!(
            "pod {}: container {} not ready {}s after it started ({}): {failure}",
            self.pod, self.container, self.seconds, self.probe
        ))
    }
}

/// The fatal signals of one pod. Pure, so the rules are tested without a cluster.
fn pod_signals(pod: &Pod, now: Timestamp, unschedulable_grace: Duration) -> PodSignals {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let condition = |t: &str| status.conditions.iter().flatten().find(|c| c.type_ == t);
    let mut out = PodSignals { ready: condition("Ready").is_some_and(|c| c.status == "True"), ..Default::default() };
    if let Some(c) = condition("PodScheduled").filter(|c| c.status == "False" && c.reason.as_deref() == Some("Unschedulable")) {
        let since = c.last_transition_time.as_ref().map(|t| now.duration_since(t.0).unsigned_abs()).unwrap_or(Duration::MAX);
        if since >= unschedulable_grace {
            let why = c.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            out.fatal.push(format!("pod {name}: Unschedulable{why}"));
        }
    }
    let probes: BTreeMap<&str, &Probe> =
        pod.spec.iter().flat_map(|s| s.containers.iter()).filter_map(|c| Some((c.name.as_str(), c.readiness_probe.as_ref()?))).collect();
    let liveness: BTreeMap<&str, &Probe> =
        pod.spec.iter().flat_map(|s| s.containers.iter()).filter_map(|c| Some((c.name.as_str(), c.liveness_probe.as_ref()?))).collect();
    for cs in status.container_statuses.iter().flatten() {
        let state = cs.state.as_ref();
        if let Some(r) = state.and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref())
            && matches!(r, "CrashLoopBackOff" | "ImagePullBackOff" | "ErrImagePull" | "CreateContainerConfigError" | "InvalidImageName")
        {
            out.fatal.push(format!("pod {name}: container {} {r}", cs.name));
        }
        if let Some(t) = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
            let reason = t.reason.clone().unwrap_or_default();
            out.fatal.push(format!("pod {name}: container {} restarted ({reason}, exit code {})", cs.name, t.exit_code));
        } else if cs.restart_count > 0 {
            out.fatal.push(format!("pod {name}: container {} restarted {} time(s)", cs.name, cs.restart_count));
        }
        let started = state.and_then(|s| s.running.as_ref()).and_then(|r| r.started_at.as_ref()).map(|t| t.0);
        if let Some(probe) = liveness.get(cs.name.as_str()) {
            // Not running yet counts as the whole allowance still to come.
            let ran = started.map_or(0, |t| now.duration_since(t).as_secs().max(0));
            out.liveness_pending = out.liveness_pending.max(liveness_allowance(probe) - ran);
        }
        if let (false, Some(started), Some(probe)) = (cs.ready, started, probes.get(cs.name.as_str())) {
            let seconds = now.duration_since(started).as_secs();
            if seconds > readiness_allowance(probe) {
                out.unready_past_probe.push(Unready { pod: name.clone(), container: cs.name.clone(), seconds, probe: probe_text(probe) });
            }
        }
    }
    out
}

/// How long the kubelet may take to report a healthy container ready: the initial delay, then
/// `failureThreshold` failed probes, plus one period of slack (Kubernetes' defaults: 0 s, 3 × 10 s),
/// plus the time its status takes to reach the API server on a busy node.
fn readiness_allowance(p: &Probe) -> i64 {
    let period = i64::from(p.period_seconds.unwrap_or(10).max(1));
    i64::from(p.initial_delay_seconds.unwrap_or(0))
        + period * (i64::from(p.failure_threshold.unwrap_or(3).max(1)) + 1)
        + STATUS_REPORT_SLACK
}

/// Seconds a kubelet's probe result may take to show in the pod's status. Seen on the real node under
/// a full test run (2 cores): a container ready by its 1 s probe still showed unready 4 s after start.
const STATUS_REPORT_SLACK: i64 = 5;

/// How long a container must have run before its liveness probe could have killed it: the initial
/// delay, then `failureThreshold` failed probes each up to its timeout apart (defaults: 0 s, 3 × 10 s,
/// 1 s), plus one period for the kill to show in the pod's status.
fn liveness_allowance(p: &Probe) -> i64 {
    let period = i64::from(p.period_seconds.unwrap_or(10).max(1));
    let timeout = i64::from(p.timeout_seconds.unwrap_or(1).max(1));
    i64::from(p.initial_delay_seconds.unwrap_or(0)) + (period + timeout) * i64::from(p.failure_threshold.unwrap_or(3).max(1)) + period
}

fn probe_text(p: &Probe) -> String {
    if let Some(h) = &p.http_get {
        return format!("readinessProbe GET {}", h.path.as_deref().unwrap_or("/"));
    }
    if let Some(t) = &p.tcp_socket {
        return format!("readinessProbe TCP {:?}", t.port);
    }
    "readinessProbe".into()
}

/// Whether the controller has seen the latest spec and rolled it out, and a detail for humans.
struct Rollout {
    observed: bool,
    done: bool,
    detail: String,
}

/// The watched workload, read once per look: its rollout state and its newest pods both come from it.
enum Workload {
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
    DaemonSet(Box<DaemonSet>),
}

impl Workload {
    async fn get(client: &Client, w: &ResourceRef) -> Result<Workload, K8sError> {
        let get_err = |source| K8sError::Patch { target: w.to_string(), source };
        Ok(match w.kind.as_str() {
            "StatefulSet" => Workload::StatefulSet(Box::new(
                Api::<StatefulSet>::namespaced(client.clone(), &w.namespace).get(&w.name).await.map_err(get_err)?,
            )),
            "DaemonSet" => Workload::DaemonSet(Box::new(
                Api::<DaemonSet>::namespaced(client.clone(), &w.namespace).get(&w.name).await.map_err(get_err)?,
            )),
            _ => Workload::Deployment(Box::new(
                Api::<Deployment>::namespaced(client.clone(), &w.namespace).get(&w.name).await.map_err(get_err)?,
            )),
        })
    }

    fn selector(&self) -> String {
        match self {
            Workload::Deployment(d) => selector_string(d.spec.as_ref().map(|s| &s.selector)),
            Workload::StatefulSet(s) => selector_string(s.spec.as_ref().map(|s| &s.selector)),
            Workload::DaemonSet(d) => selector_string(d.spec.as_ref().map(|s| &s.selector)),
        }
    }
}

fn rollout_state(workload: &Workload) -> Rollout {
    let d = match workload {
        Workload::StatefulSet(s) => {
            let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let st = s.status.clone().unwrap_or_default();
            let observed = st.observed_generation >= s.metadata.generation;
            let done = observed && st.ready_replicas == Some(want) && st.updated_replicas == Some(want);
            let detail = format!("{}/{want} ready, {} updated", st.ready_replicas.unwrap_or(0), st.updated_replicas.unwrap_or(0));
            return Rollout { observed, done, detail };
        }
        Workload::DaemonSet(d) => {
            let st = d.status.clone().unwrap_or_default();
            let want = st.desired_number_scheduled;
            let observed = st.observed_generation >= d.metadata.generation;
            let done = observed && st.updated_number_scheduled == Some(want) && st.number_available == Some(want);
            let detail =
                format!("{}/{want} available, {} updated", st.number_available.unwrap_or(0), st.updated_number_scheduled.unwrap_or(0));
            return Rollout { observed, done, detail };
        }
        Workload::Deployment(d) => d,
    };
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.clone().unwrap_or_default();
    let observed = st.observed_generation >= d.metadata.generation;
    let done = observed && st.updated_replicas == Some(want) && st.available_replicas == Some(want) && st.replicas == Some(want);
    // The Deployment's own ReplicaFailure condition is not read: it carries any of its ReplicaSets'
    // failures, an older revision's included, which a rollback is replacing. The newest ReplicaSet's
    // own condition is ([`replica_failure`]).
    let detail = format!(
        "{}/{want} available, {} updated, {} total",
        st.available_replicas.unwrap_or(0),
        st.updated_replicas.unwrap_or(0),
        st.replicas.unwrap_or(0)
    );
    Rollout { observed, done, detail }
}

/// The newest ReplicaSet cannot create pods at all (a quota exceeded, admission refused, its
/// ServiceAccount missing): its ReplicaFailure condition, with the controller's message.
fn replica_failure(w: &ResourceRef, newest: &ReplicaSet) -> Option<String> {
    let c = newest.status.as_ref()?.conditions.iter().flatten().find(|c| c.type_ == "ReplicaFailure" && c.status == "True")?;
    Some(format!(
        "{w}: ReplicaSet {}: {} ({})",
        newest.metadata.name.as_deref().unwrap_or_default(),
        c.reason.as_deref().unwrap_or("ReplicaFailure"),
        c.message.as_deref().unwrap_or("no message")
    ))
}

/// The newest ReplicaSet a Deployment owns (by its revision annotation).
fn newest_replica_set(w: &ResourceRef, feeds: &Feeds) -> Option<Arc<ReplicaSet>> {
    let revision = |rs: &ReplicaSet| {
        rs.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let owned = |rs: &&Arc<ReplicaSet>| rs.metadata.owner_references.iter().flatten().any(|o| o.kind == "Deployment" && o.name == w.name);
    feeds.replica_sets().iter().filter(owned).max_by_key(|rs| revision(rs)).cloned()
}

/// The workload's selector as a query; an empty one (selects everything) matches no pod here.
fn selector_string(s: Option<&LabelSelector>) -> String {
    s.and_then(crate::selector_query).unwrap_or_else(|| "aegis.io/empty-selector-matches-nothing".into())
}

/// Pods of the workload's newest revision (for a Deployment, `newest_rs`: [`newest_replica_set`]; a StatefulSet's
/// pods on its update revision; a DaemonSet's on its newest ControllerRevision), as the watches of the
/// workload's own selector delivered them.
fn newest_pods(workload: &Workload, newest_rs: Option<&ReplicaSet>, w: &ResourceRef, feeds: &Feeds) -> Vec<Pod> {
    // A StatefulSet's update revision (its pods' controller-revision-hash), or a Deployment's newest
    // ReplicaSet (its pods' owner).
    let (label_rev, owner_rs) = match workload {
        Workload::StatefulSet(s) => (s.status.as_ref().and_then(|s| s.update_revision.clone()).unwrap_or_default(), None),
        // A DaemonSet's newest ControllerRevision; its pods carry that revision's hash.
        Workload::DaemonSet(_) => {
            let crs = feeds.revisions();
            let owned = |cr: &&Arc<ControllerRevision>| {
                cr.metadata.owner_references.iter().flatten().any(|o| o.kind == "DaemonSet" && o.name == w.name)
            };
            let newest = crs.iter().filter(owned).max_by_key(|cr| cr.revision);
            let Some(hash) = newest.and_then(|cr| cr.metadata.labels.as_ref()?.get("controller-revision-hash").cloned()) else {
                return Vec::new();
            };
            (hash, None)
        }
        Workload::Deployment(_) => {
            let Some(newest) = newest_rs.and_then(|rs| rs.metadata.name.clone()) else {
                return Vec::new();
            };
            (String::new(), Some(newest))
        }
    };
    let on_revision = |p: &Pod| match &owner_rs {
        Some(rs) => p.metadata.owner_references.iter().flatten().any(|o| o.kind == "ReplicaSet" && &o.name == rs),
        None => p.metadata.labels.as_ref().and_then(|l| l.get("controller-revision-hash")) == Some(&label_rev),
    };
    let live = |p: &Pod| p.metadata.deletion_timestamp.is_none();
    feeds.pods().iter().map(|p| &**p).filter(|p| live(p) && on_revision(p)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(started_secs_ago: i64, ready: bool, probe: serde_json::Value) -> (Pod, Timestamp) {
        let now: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let started = now.checked_sub(jiff::SignedDuration::from_secs(started_secs_ago)).unwrap();
        let pod = serde_json::from_value(json!({
            "metadata": {"name": "api-1"},
            "spec": {"containers": [{"name": "api", "image": "x", "readinessProbe": probe}]},
            "status": {
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
                "containerStatuses": [{"name": "api", "image": "x", "imageID": "", "ready": ready, "restartCount": 0,
                    "state": {"running": {"startedAt": started.to_string()}}}]
            }
        }))
        .unwrap();
        (pod, now)
    }

    #[test]
    fn a_container_unready_within_its_probe_allowance_is_not_yet_fatal() {
        let (p, now) = pod(30, false, json!({"httpGet": {"path": "/ready", "port": 8080}}));
        let s = pod_signals(&p, now, Duration::ZERO);
        assert!(!s.ready);
        assert!(s.fatal.is_empty() && s.unready_past_probe.is_empty(), "{s:?}");
    }

    #[test]
    fn a_container_unready_past_initial_delay_and_failure_threshold_is_reported_with_its_probe() {
        let (p, now) = pod(
            17,
            false,
            json!({"httpGet": {"path": "/readyz", "port": 8080}, "initialDelaySeconds": 2, "periodSeconds": 2, "failureThreshold": 3}),
        );
        let s = pod_signals(&p, now, Duration::ZERO);
        assert_eq!(s.unready_past_probe.len(), 1, "{s:?}");
        let events: Vec<Event> = vec![
            serde_json::from_value(json!({
                "metadata": {"name": "e"}, "involvedObject": {"name": "api-1"}, "reason": "Unhealthy",
                "message": "Readiness probe failed: HTTP probe failed with statuscode: 404"
            }))
            .unwrap(),
        ];
        let text = s.unready_past_probe[0].judged(&events);
        assert_eq!(
            text.as_deref(),
            Some(
                "pod api-1: container api not ready 17s after it started (readinessProbe GET /readyz): Readiness probe failed: HTTP probe failed with statuscode: 404"
            )
        );
    }

    /// Seen in CI: a container whose 1 s readiness probe passed still showed unready 4 s after it
    /// started, because the kubelet had not yet reported it; the good fix was rejected.
    #[test]
    fn a_container_unready_a_few_seconds_past_a_short_probe_is_not_yet_fatal() {
        let (p, now) = pod(4, false, json!({"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1, "failureThreshold": 2}));
        assert!(pod_signals(&p, now, Duration::ZERO).unready_past_probe.is_empty());
    }

    #[test]
    fn a_container_unready_past_its_allowance_without_a_failed_probe_from_the_kubelet_is_left_to_the_deadline() {
        let (p, now) = pod(60, false, json!({"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1}));
        let s = pod_signals(&p, now, Duration::ZERO);
        assert_eq!(s.unready_past_probe.len(), 1, "{s:?}");
        let liveness_only: Vec<Event> = vec![
            serde_json::from_value(json!({
                "metadata": {"name": "e"}, "involvedObject": {"name": "api-1"}, "reason": "Unhealthy",
                "message": "Liveness probe failed: HTTP probe failed with statuscode: 500"
            }))
            .unwrap(),
        ];
        assert_eq!(s.unready_past_probe[0].judged(&[]), None);
        assert_eq!(s.unready_past_probe[0].judged(&liveness_only), None);
    }

    /// A ready pod whose liveness probe could not yet have failed is not proven healthy: with the
    /// default probe (3 failures, 10 s apart, 1 s timeout) the kubelet may kill it up to 43 s after start.
    #[test]
    fn a_ready_pod_is_not_proven_before_its_liveness_probe_had_the_chance_to_fail() {
        let (mut p, now) = pod(5, true, json!({"httpGet": {"path": "/ready", "port": 8080}}));
        p.spec.as_mut().unwrap().containers[0].liveness_probe =
            Some(serde_json::from_value(json!({"httpGet": {"path": "/healthz", "port": 8080}})).unwrap());
        assert_eq!(pod_signals(&p, now, Duration::ZERO).liveness_pending, 43 - 5);
        let (mut old, now) = pod(60, true, json!({"httpGet": {"path": "/ready", "port": 8080}}));
        old.spec.as_mut().unwrap().containers[0].liveness_probe = p.spec.as_ref().unwrap().containers[0].liveness_probe.clone();
        assert!(pod_signals(&old, now, Duration::ZERO).liveness_pending <= 0);
        let (without, now) = pod(0, true, json!({"httpGet": {"path": "/ready", "port": 8080}}));
        assert_eq!(pod_signals(&without, now, Duration::ZERO).liveness_pending, 0, "no liveness probe, nothing to wait for");
    }

    #[test]
    fn a_ready_container_is_never_reported_unready() {
        let (p, now) = pod(3600, true, json!({"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1}));
        let s = pod_signals(&p, now, Duration::ZERO);
        assert!(s.ready && s.unready_past_probe.is_empty() && s.fatal.is_empty());
    }

    #[test]
    fn unschedulable_pods_carry_the_schedulers_message() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "api-1"},
            "status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory."}]}
        }))
        .unwrap();
        let s = pod_signals(&p, Timestamp::now(), Duration::ZERO);
        assert_eq!(s.fatal, vec!["pod api-1: Unschedulable: 0/3 nodes are available: 3 Insufficient memory.".to_owned()]);
    }

    #[test]
    fn an_unschedulable_pod_is_fatal_only_after_its_grace() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "api-1"},
            "status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastTransitionTime": "2026-11-26T10:00:00Z"}]}
        }))
        .unwrap();
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        assert!(pod_signals(&p, at("2026-11-26T10:00:09Z"), SHADOW_UNSCHEDULABLE_GRACE).fatal.is_empty());
        assert_eq!(
            pod_signals(&p, at("2026-11-26T10:00:10Z"), SHADOW_UNSCHEDULABLE_GRACE).fatal,
            vec!["pod api-1: Unschedulable".to_owned()]
        );
    }

    #[test]
    fn a_restarted_container_is_fatal_with_its_last_termination() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "api-1"},
            "status": {"containerStatuses": [{"name": "api", "image": "x", "imageID": "", "ready": false, "restartCount": 2,
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
        }))
        .unwrap();
        let s = pod_signals(&p, Timestamp::now(), Duration::ZERO);
        assert_eq!(
            s.fatal,
            vec![
                "pod api-1: container api CrashLoopBackOff".to_owned(),
                "pod api-1: container api restarted (OOMKilled, exit code 137)".to_owned()
            ]
        );
    }

    fn replica_failure_condition() -> serde_json::Value {
        json!([{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                "message": "pods \"api-7d9\" is forbidden: error looking up service account shop/api-runner: serviceaccount \"api-runner\" not found"}])
    }

    /// A rollback away from a revision whose pods could not be created: the Deployment still carries
    /// the old ReplicaSet's ReplicaFailure for a moment, and blaming the rollback for it rejected the
    /// right fix (seen live). Only the newest ReplicaSet's own condition counts.
    #[test]
    fn a_replica_failure_of_an_older_replica_set_is_not_blamed_on_the_newest_revision() {
        let w = ResourceRef { kind: "Deployment".into(), namespace: "shop".into(), name: "api".into() };
        let newest: ReplicaSet = serde_json::from_value(json!({"metadata": {"name": "api-5c8"}, "spec": {"selector": {}}})).unwrap();
        assert_eq!(replica_failure(&w, &newest), None);
    }

    #[test]
    fn the_newest_replica_sets_own_failure_to_create_pods_is_fatal_with_the_controllers_message() {
        let w = ResourceRef { kind: "Deployment".into(), namespace: "shop".into(), name: "api".into() };
        let newest: ReplicaSet = serde_json::from_value(json!({"metadata": {"name": "api-7d9"}, "spec": {"selector": {}},
            "status": {"replicas": 0, "conditions": replica_failure_condition()}}))
        .unwrap();
        let why = replica_failure(&w, &newest).expect("fatal");
        assert!(why.contains("FailedCreate") && why.contains("api-runner") && why.contains("ReplicaSet api-7d9"), "{why}");
    }

    #[test]
    fn the_health_progress_counts_the_window_down_once_every_pod_is_ready() {
        let p = |pods, ready, healthy_for| HealthProgress { pods, ready, healthy_for, window: Duration::from_secs(30) };
        assert_eq!(p(0, 0, None).to_string(), "waiting for pods of the new revision");
        assert_eq!(p(2, 1, None).to_string(), "1/2 pods ready");
        assert_eq!(p(2, 2, Some(12)).to_string(), "2/2 pods ready, healthy 12s of 30s (18s left)");
        assert!(p(2, 2, Some(30)).to_string().contains("window done"));
    }

    #[test]
    fn the_default_readiness_allowance_is_forty_five_seconds() {
        assert_eq!(readiness_allowance(&Probe::default()), 45);
    }
}
