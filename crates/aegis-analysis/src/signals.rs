//! What a good SRE reads off a pod: container states, last terminations, restarts, conditions, events.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Event, Pod, Service};

use crate::snapshot::Snapshot;

/// The signals of one pod.
#[derive(Debug, Clone, Default)]
pub struct PodSignals {
    pub name: String,
    pub phase: String,
    pub ready: bool,
    pub restarts: i32,
    /// `(container, reason, message)` of every waiting container, app containers first, then init
    /// containers: a sidecar still starting must not hide the app container that crash-loops.
    pub waiting: Vec<(String, String, String)>,
    /// `(container, reason, exit code)` of every container's last termination, in the same order.
    pub last_terminated: Vec<(String, String, i32)>,
    pub running: bool,
    /// PodScheduled=False reason Unschedulable, with the scheduler's message.
    pub unschedulable: Option<String>,
    /// `status.reason` of a failed pod (e.g. Evicted) with its message.
    pub failed_reason: Option<(String, String)>,
    /// The scheduling gates holding the pod (PodScheduled=False, SchedulingGated) and since when.
    pub gated: Option<(Vec<String>, Option<jiff::Timestamp>)>,
    /// `(reason, message)` of the events about this pod, oldest first.
    pub events: Vec<(String, String)>,
    /// The containers with a memory limit (an exit by SIGKILL there may be the kernel's OOM killer).
    pub memory_limited: Vec<String>,
}

pub fn is_ready(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Lookups the detectors need, built once per analysis so that nothing scans the whole snapshot per
/// pod: events by the object they are about, pods and Services by namespace.
pub struct Index<'a> {
    pub snapshot: &'a Snapshot,
    events: HashMap<(&'a str, &'a str, &'a str), Vec<&'a Event>>,
    pods_by_ns: HashMap<&'a str, Vec<&'a Pod>>,
    services_by_ns: HashMap<&'a str, Vec<&'a Service>>,
    /// Computed once: without a recorded capture time it is a walk over every event and pod, and
    /// every workload asks for it.
    observed_at: Option<jiff::Timestamp>,
}

impl PodSignals {
    /// The first waiting container whose reason is one of `reasons`.
    pub fn waiting_with(&self, reasons: &[&str]) -> Option<&(String, String, String)> {
        self.waiting.iter().find(|(_, r, _)| reasons.contains(&r.as_str()))
    }

    /// The last termination of `container`.
    pub fn terminated(&self, container: &str) -> Option<&(String, String, i32)> {
        self.last_terminated.iter().find(|(c, _, _)| c == container)
    }
}

impl<'a> Index<'a> {
    pub fn new(snapshot: &'a Snapshot) -> Index<'a> {
        let mut events: HashMap<(&str, &str, &str), Vec<&Event>> = HashMap::new();
        for e in &snapshot.events {
            let o = &e.involved_object;
            let ns = o.namespace.as_deref().or(e.metadata.namespace.as_deref()).unwrap_or("");
            events.entry((o.kind.as_deref().unwrap_or(""), ns, o.name.as_deref().unwrap_or(""))).or_default().push(e);
        }
        for list in events.values_mut() {
            list.sort_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0).or(e.event_time.as_ref().map(|t| t.0)));
        }
        let mut pods_by_ns: HashMap<&str, Vec<&Pod>> = HashMap::new();
        for p in &snapshot.pods {
            pods_by_ns.entry(p.metadata.namespace.as_deref().unwrap_or("")).or_default().push(p);
        }
        let mut services_by_ns: HashMap<&str, Vec<&Service>> = HashMap::new();
        for s in &snapshot.services {
            services_by_ns.entry(s.metadata.namespace.as_deref().unwrap_or("")).or_default().push(s);
        }
        let observed_at = observed_at(snapshot);
        Index { snapshot, events, pods_by_ns, services_by_ns, observed_at }
    }

    /// `(reason, message)` of the events about an object, oldest first.
    pub fn events(&self, kind: &str, namespace: &str, name: &str) -> Vec<(String, String)> {
        self.events
            .get(&(kind, namespace, name))
            .map(|v| v.iter().map(|e| (e.reason.clone().unwrap_or_default(), e.message.clone().unwrap_or_default())).collect())
            .unwrap_or_default()
    }

    /// When the snapshot was taken: the time it records, else as far as it shows (its newest event or
    /// pod condition time). The analysis has no clock (it is pure); "held for long" is measured
    /// against this.
    pub fn observed_at(&self) -> Option<jiff::Timestamp> {
        self.observed_at
    }

    pub fn pods_in(&self, namespace: &str) -> &[&'a Pod] {
        self.pods_by_ns.get(namespace).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn services_in(&self, namespace: &str) -> &[&'a Service] {
        self.services_by_ns.get(namespace).map(Vec::as_slice).unwrap_or_default()
    }
}

/// See [`Index::observed_at`].
fn observed_at(snapshot: &Snapshot) -> Option<jiff::Timestamp> {
    if let Some(at) = snapshot.captured_at {
        return Some(at);
    }
    let events = snapshot.events.iter().filter_map(|e| e.last_timestamp.as_ref().map(|t| t.0).or(e.event_time.as_ref().map(|t| t.0)));
    let conditions = snapshot
        .pods
        .iter()
        .flat_map(|p| p.status.iter().flat_map(|s| s.conditions.iter().flatten()))
        .filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0));
    events.chain(conditions).max()
}

pub fn pod_signals(index: &Index<'_>, p: &Pod) -> PodSignals {
    let name = p.metadata.name.clone().unwrap_or_default();
    let namespace = p.metadata.namespace.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let mut s =
        PodSignals { name: name.clone(), phase: status.phase.clone().unwrap_or_default(), ready: is_ready(p), ..Default::default() };
    s.memory_limited = p
        .spec
        .iter()
        .flat_map(|sp| sp.containers.iter().chain(sp.init_containers.iter().flatten()))
        .filter(|c| c.resources.as_ref().and_then(|r| r.limits.as_ref()).is_some_and(|l| l.contains_key("memory")))
        .map(|c| c.name.clone())
        .collect();
    for cs in status.container_statuses.iter().flatten().chain(status.init_container_statuses.iter().flatten()) {
        s.restarts += cs.restart_count;
        if let Some(state) = &cs.state {
            if let Some(w) = &state.waiting {
                s.waiting.push((cs.name.clone(), w.reason.clone().unwrap_or_default(), w.message.clone().unwrap_or_default()));
            }
            if state.running.is_some() {
                s.running = true;
            }
        }
        if let Some(t) = cs.last_state.as_ref().and_then(|l| l.terminated.as_ref()) {
            s.last_terminated.push((cs.name.clone(), t.reason.clone().unwrap_or_default(), t.exit_code));
        }
    }
    // A container the kubelet will start again, seen between two runs: a real kubelet (1.35) reports
    // the exited run as `state.terminated` for most of the back-off, and `waiting: CrashLoopBackOff`
    // only part of the time (kubectl shows "Error" or "Completed"). Once it has restarted before, it
    // is in the same back-off loop either way.
    let policy = p.spec.as_ref().and_then(|sp| sp.restart_policy.as_deref()).unwrap_or("Always");
    for cs in status.container_statuses.iter().flatten().chain(status.init_container_statuses.iter().flatten()) {
        if let Some(t) = cs.state.as_ref().and_then(|st| st.terminated.as_ref())
            && cs.restart_count >= 1
            && (policy == "Always" || (policy == "OnFailure" && t.exit_code != 0))
            && !s.waiting.iter().any(|(c, _, _)| c == &cs.name)
        {
            let reason = t.reason.as_deref().unwrap_or("exited");
            let message = format!("back-off restarting container {} after it exited ({reason}, exit code {})", cs.name, t.exit_code);
            s.waiting.push((cs.name.clone(), "CrashLoopBackOff".into(), message));
        }
    }
    // A Job's pods with restartPolicy Never end in `state.terminated`, not `lastState`.
    for cs in status.container_statuses.iter().flatten() {
        if let Some(t) = cs.state.as_ref().and_then(|st| st.terminated.as_ref())
            && t.exit_code != 0
            && s.terminated(&cs.name).is_none()
        {
            s.last_terminated.push((cs.name.clone(), t.reason.clone().unwrap_or_default(), t.exit_code));
        }
    }
    s.gated = status.conditions.iter().flatten().find_map(|c| {
        (c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("SchedulingGated")).then(|| {
            let gates = p.spec.iter().flat_map(|sp| sp.scheduling_gates.iter().flatten()).map(|g| g.name.clone()).collect();
            (gates, c.last_transition_time.as_ref().map(|t| t.0))
        })
    });
    s.unschedulable = status.conditions.iter().flatten().find_map(|c| {
        (c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
            .then(|| c.message.clone().unwrap_or_default())
    });
    if s.phase == "Failed" {
        s.failed_reason = status.reason.clone().map(|r| (r, status.message.clone().unwrap_or_default()));
    }
    s.events = index.events("Pod", &namespace, &name);
    s
}
