//! What a good SRE reads off a pod: container states, last terminations, restarts, conditions, events.

use k8s_openapi::api::core::v1::{Event, Pod};

use crate::snapshot::Snapshot;

/// The signals of one pod.
#[derive(Debug, Clone, Default)]
pub struct PodSignals {
    pub name: String,
    pub phase: String,
    pub ready: bool,
    pub restarts: i32,
    /// `(container, reason, message)` of a waiting container.
    pub waiting: Option<(String, String, String)>,
    /// `(container, reason, exit code)` of the last termination.
    pub last_terminated: Option<(String, String, i32)>,
    pub running: bool,
    /// PodScheduled=False reason Unschedulable, with the scheduler's message.
    pub unschedulable: Option<String>,
    /// `status.reason` of a failed pod (e.g. Evicted) with its message.
    pub failed_reason: Option<(String, String)>,
    /// `(reason, message)` of the events about this pod, oldest first.
    pub events: Vec<(String, String)>,
}

pub fn is_ready(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn events_for<'a>(snapshot: &'a Snapshot, kind: &str, namespace: &str, name: &str) -> Vec<&'a Event> {
    let mut v: Vec<&Event> = snapshot
        .events
        .iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object.name.as_deref() == Some(name)
                && e.involved_object.namespace.as_deref().unwrap_or(namespace) == namespace
        })
        .collect();
    v.sort_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0).or(e.event_time.as_ref().map(|t| t.0)));
    v
}

/// Events about any object, for detectors that look beyond pods (Services, Deployments).
pub fn object_events(snapshot: &Snapshot, kind: &str, namespace: &str, name: &str) -> Vec<(String, String)> {
    events_for(snapshot, kind, namespace, name)
        .into_iter()
        .map(|e| (e.reason.clone().unwrap_or_default(), e.message.clone().unwrap_or_default()))
        .collect()
}

pub fn pod_signals(snapshot: &Snapshot, p: &Pod) -> PodSignals {
    let name = p.metadata.name.clone().unwrap_or_default();
    let namespace = p.metadata.namespace.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let mut s = PodSignals { name: name.clone(), phase: status.phase.clone().unwrap_or_default(), ready: is_ready(p), ..Default::default() };
    for cs in status.container_statuses.iter().flatten().chain(status.init_container_statuses.iter().flatten()) {
        s.restarts += cs.restart_count;
        if let Some(state) = &cs.state {
            if let Some(w) = &state.waiting
                && s.waiting.is_none()
            {
                s.waiting = Some((cs.name.clone(), w.reason.clone().unwrap_or_default(), w.message.clone().unwrap_or_default()));
            }
            if state.running.is_some() {
                s.running = true;
            }
        }
        if let Some(t) = cs.last_state.as_ref().and_then(|l| l.terminated.as_ref())
            && s.last_terminated.is_none()
        {
            s.last_terminated = Some((cs.name.clone(), t.reason.clone().unwrap_or_default(), t.exit_code));
        }
    }
    s.unschedulable = status.conditions.iter().flatten().find_map(|c| {
        (c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")).then(|| c.message.clone().unwrap_or_default())
    });
    if s.phase == "Failed" {
        s.failed_reason = status.reason.clone().map(|r| (r, status.message.clone().unwrap_or_default()));
    }
    s.events = object_events(snapshot, "Pod", &namespace, &name);
    s
}
