//! Detectors and fix rules: a snapshot in, incidents out.
//!
//! Per workload, the pods' signals decide the categories (the most specific wins: OOMKilled and a
//! failing liveness probe both show as CrashLoopBackOff, and are reported as themselves). The fix is
//! the smallest change that removes the cause:
//! - a rollout broke it (the current revision differs from the last healthy one) → roll back to it;
//! - OOMKilled with no such change → double the memory limit (never above the largest node);
//! - requests larger than every node → lower them to half of the largest node, and say so;
//! - a Service selector that matches nothing → the selector of the workload it was meant for;
//! - otherwise `manual`, with what to look at.

use std::collections::{BTreeMap, BTreeSet};

use aegis_model::{Category, Fix, FixAction, FixOrigin, Incident, ProbeKind, ResourceRef, Severity, Source, VerificationPlan};
use k8s_openapi::api::core::v1::{Node, PodTemplateSpec, Service, Taint, Toleration};

use crate::diff::{Change, diff, probe_text};
use crate::render::{mib_quantity, quantity_bytes, render_service_selector, render_workload, schedulable_amount};
use crate::signals::{Index, PodSignals, pod_signals};
use crate::snapshot::Snapshot;
use crate::workload::{Workload, workloads};

/// Analyze a snapshot. Incidents are ordered most severe first, then by resource.
pub fn analyze(snapshot: &Snapshot) -> Vec<Incident> {
    let mut incidents = Vec::new();
    let index = Index::new(snapshot);
    let all = workloads(snapshot);
    let mut by_ns: BTreeMap<&str, Vec<&Workload<'_>>> = BTreeMap::new();
    for w in &all {
        by_ns.entry(w.resource.namespace.as_str()).or_default().push(w);
        incidents.extend(analyze_workload(&index, w));
    }
    incidents.extend(crate::objects::analyze_objects(&index));
    // A webhook backend that selects nothing is reported once, as what it breaks (the webhook), not
    // also as a selector to fix.
    let webhook_backends: Vec<ResourceRef> =
        incidents.iter().filter(|i| i.category == Category::WebhookUnavailable).map(|i| i.resource.clone()).collect();
    for svc in &snapshot.services {
        let ns = svc.metadata.namespace.as_deref().unwrap_or("");
        if let Some(i) = selector_mismatch(&index, svc, by_ns.get(ns).map(Vec::as_slice).unwrap_or_default())
            && !webhook_backends.contains(&i.resource)
        {
            incidents.push(i);
        }
    }
    incidents
        .sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.resource.cmp(&b.resource)).then_with(|| a.category.cmp(&b.category)));
    incidents
}

struct Finding {
    category: Category,
    /// The container the problem is in, when the signals name one: the fix patches that one.
    container: Option<String>,
    pods: Vec<String>,
    evidence: Vec<String>,
}

/// The events that say a pod's volume cannot be set up: not attached to the node (the attach/detach
/// controller), a block volume not mapped, a volume not mounted (the kubelet).
const VOLUME_EVENTS: [&str; 3] = ["FailedAttachVolume", "FailedMapVolume", "FailedMount"];

fn has_event(s: &PodSignals, reason: &str, prefix: &str) -> bool {
    s.events.iter().any(|(r, m)| r == reason && m.starts_with(prefix))
}

/// Whether the pod's restarts are the kubelet's liveness kills, not the process's own exits. A process
/// that exits by itself (say, exit 1 without its setting) also fails its liveness probe while it is
/// down, so a failed probe alone does not say who stopped it: the kubelet's `Killing` event for the
/// probe does, and without it the last exit must be one a kill gives (0 or 143 after SIGTERM, 137 after
/// SIGKILL, 2 for a Go program's default SIGTERM handling).
fn killed_by_liveness(s: &PodSignals) -> bool {
    if s.events.iter().any(|(r, m)| r == "Killing" && m.contains("failed liveness probe")) {
        return true;
    }
    has_event(s, "Unhealthy", "Liveness probe failed") && s.last_terminated.iter().all(|(_, _, code)| matches!(code, 0 | 2 | 137 | 143))
}

/// How long a pod may stay gated before AEGIS reports it: controllers lift their gates in seconds.
const GATED_TOO_LONG_SECS: i64 = 300;

fn detect(index: &Index<'_>, w: &Workload<'_>, sigs: &[PodSignals], observed_at: Option<jiff::Timestamp>) -> Vec<Finding> {
    let snapshot = index.snapshot;
    fn add(by: &mut BTreeMap<Category, Finding>, category: Category, container: Option<&str>, pod: &str, line: String) {
        let f = by.entry(category).or_insert_with(|| Finding { category, container: None, pods: Vec::new(), evidence: Vec::new() });
        if f.container.is_none() {
            f.container = container.map(str::to_owned);
        }
        // Workload-level evidence (a Job's or a Deployment's condition) names no pod.
        if !pod.is_empty() && !f.pods.iter().any(|p| p == pod) {
            f.pods.push(pod.to_owned());
        }
        if !f.evidence.contains(&line) && f.evidence.len() < 8 {
            f.evidence.push(line);
        }
    }
    let mut by: BTreeMap<Category, Finding> = BTreeMap::new();
    // `sigs` are the workload's pods' signals, in the same order.
    for (pod, s) in w.pods.iter().zip(sigs) {
        // The kernel's OOM kill is SIGKILL (exit 137). containerd 1.6 on cgroup v1 reports it as OOMKilled,
        // or as Error when the task's exit outruns its OOM event: an Error 137 under a memory limit that
        // the kubelet does not say it killed (its `Killing` event) is the same kill. A failed liveness
        // probe alone does not explain it: an app still filling its memory at start fails one before the
        // kernel kills it (seen on the real node), and the kubelet kills only after failureThreshold.
        let killed_unexplained = |c: &str, r: &str, code: i32| {
            r == "Error" && code == 137 && s.memory_limited.iter().any(|m| m == c) && !has_event(s, "Killing", "")
        };
        if let Some((c, reason, code)) = s.last_terminated.iter().find(|(c, r, code)| r == "OOMKilled" || killed_unexplained(c, r, *code)) {
            let why = if reason == "OOMKilled" {
                String::new()
            } else {
                ": SIGKILL under a memory limit, no probe or eviction killed it — the OOM killer, reported as Error by the runtime".into()
            };
            add(
                &mut by,
                Category::OOMKilled,
                Some(c),
                &s.name,
                format!("pod {}: container {c} last terminated {reason} (exit code {code}{why}), {} restart(s)", s.name, s.restarts),
            );
        } else if s.restarts > 0 && killed_by_liveness(s) {
            let msg = s
                .events
                .iter()
                .rev()
                .find(|(r, m)| r == "Unhealthy" && m.starts_with("Liveness"))
                .map(|(_, m)| m.clone())
                .unwrap_or_default();
            add(&mut by, Category::LivenessProbeFailure, None, &s.name, format!("pod {}: {msg}; {} restart(s)", s.name, s.restarts));
        } else if let Some((c, _, _)) = s.waiting_with(&["CrashLoopBackOff"]) {
            let (reason, code) = s.terminated(c).map(|(_, r, code)| (r.clone(), *code)).unwrap_or_default();
            add(
                &mut by,
                Category::CrashLoopBackOff,
                Some(c),
                &s.name,
                format!(
                    "pod {}: container {c} in CrashLoopBackOff, last terminated {reason} with exit code {code}, {} restart(s)",
                    s.name, s.restarts
                ),
            );
        }
        if let Some((c, r, m)) = s.waiting_with(&["ImagePullBackOff", "ErrImagePull"]) {
            add(&mut by, Category::ImagePullBackOff, Some(c), &s.name, format!("pod {}: container {c} {r}: {m}", s.name));
        }
        if let Some((c, _, m)) = s.waiting_with(&["CreateContainerConfigError"]) {
            add(
                &mut by,
                Category::CreateContainerConfigError,
                Some(c),
                &s.name,
                format!("pod {}: container {c} CreateContainerConfigError: {m}", s.name),
            );
        }
        if let Some(m) = &s.unschedulable {
            // The scheduler waits for the pod's claims: the claim, not the pod's size, is the cause.
            let pending_claims =
                if m.contains("unbound") && m.contains("PersistentVolumeClaim") { pending_claims(index, pod) } else { Vec::new() };
            if pending_claims.is_empty() {
                add(&mut by, Category::Unschedulable, None, &s.name, format!("pod {}: Unschedulable: {m}", s.name));
            } else {
                add(&mut by, Category::VolumeClaimPending, None, &s.name, format!("pod {}: Unschedulable: {m}", s.name));
                for line in pending_claims {
                    add(&mut by, Category::VolumeClaimPending, None, &s.name, line);
                }
            }
        }
        if s.running && !s.ready && s.restarts == 0 && has_event(s, "Unhealthy", "Readiness probe failed") {
            add(
                &mut by,
                Category::ReadinessProbeFailure,
                None,
                &s.name,
                format!("pod {}: running but never ready (Readiness probe failed)", s.name),
            );
        }
        let node = pod.spec.as_ref().and_then(|p| p.node_name.as_deref());
        if let Some((reason, m)) = s.failed_reason.as_ref().filter(|(r, _)| r == "Evicted") {
            add(&mut by, Category::Evicted, None, &s.name, format!("pod {}: {reason}: {m}", s.name));
            // The node condition behind the eviction, when the snapshot holds the node.
            for line in node.map(|n| node_problems(snapshot, n, true)).unwrap_or_default() {
                add(&mut by, Category::Evicted, None, &s.name, line);
            }
        }
        let node_not_ready = node.map(|n| node_problems(snapshot, n, false)).unwrap_or_default();
        // Not ready because its node is: the node lifecycle controller marks the pods of a node that
        // stopped reporting not ready, whatever their containers do.
        if !s.ready && s.failed_reason.is_none() && !node_not_ready.is_empty() {
            add(&mut by, Category::NodeNotReady, None, &s.name, format!("pod {}: not ready on node {}", s.name, node.unwrap_or_default()));
            for line in &node_not_ready {
                add(&mut by, Category::NodeNotReady, None, &s.name, line.clone());
            }
        }
        // Still running, on a node under pressure: nothing evicted yet, but the kubelet will evict
        // from this node first, and the scheduler already keeps new pods away from it.
        if s.failed_reason.is_none()
            && let Some(n) = node
            && node_not_ready.is_empty()
        {
            // The node is Ready, so what it reports now is its pressure conditions only.
            let pressure = node_problems(snapshot, n, true);
            if !pressure.is_empty() {
                add(&mut by, Category::NodePressure, None, &s.name, format!("pod {}: runs on node {n}, which is under pressure", s.name));
                for line in pressure {
                    add(&mut by, Category::NodePressure, None, &s.name, line);
                }
            }
        }
        if let Some((gates, since)) = &s.gated
            && let (Some(since), Some(now)) = (since, observed_at)
            && now.duration_since(*since).as_secs() >= GATED_TOO_LONG_SECS
        {
            let held = now.duration_since(*since).as_secs() / 60;
            add(
                &mut by,
                Category::SchedulingGated,
                None,
                &s.name,
                format!("pod {}: held by scheduling gates {} for {held} min", s.name, gates.join(", ")),
            );
        }
        // The attach/detach controller's word first (a volume not attached to the node: the kubelet's
        // FailedMount that follows only says it timed out waiting), then the kubelet's.
        for reason in VOLUME_EVENTS {
            for (_, m) in s.events.iter().filter(|(r, _)| r == reason).take(1) {
                add(&mut by, Category::FailedMount, None, &s.name, format!("pod {}: {reason}: {m}", s.name));
            }
        }
    }
    if let Some(job) = (w.resource.kind == "Job")
        .then(|| {
            snapshot.jobs.iter().find(|j| {
                j.metadata.name.as_deref() == Some(&w.resource.name) && j.metadata.namespace.as_deref() == Some(&w.resource.namespace)
            })
        })
        .flatten()
        && let Some(st) = job.status.as_ref()
    {
        let failed = st.failed.unwrap_or(0);
        let condition = |t: &str| st.conditions.iter().flatten().find(|c| c.type_ == t && c.status == "True");
        let ended = ["Complete", "SuccessCriteriaMet"].iter().any(|t| condition(t).is_some());
        // The Job gave up (Failed), or its pods fail while it still has retries left.
        let headline = match condition("Failed") {
            Some(c) => Some((
                Category::JobFailed,
                format!(
                    "Job {}: Failed {}: {} ({failed} failed pod(s))",
                    w.resource.name,
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default()
                ),
            )),
            None if failed > 0 && !ended => {
                let limit = job.spec.as_ref().and_then(|s| s.backoff_limit).unwrap_or(6);
                Some((
                    Category::JobRetrying,
                    format!(
                        "Job {}: {failed} failed pod(s), {} retries left of backoffLimit {limit}, retrying with back-off",
                        w.resource.name,
                        (limit + 1 - failed).max(0)
                    ),
                ))
            }
            None => None,
        };
        if let Some((category, line)) = headline {
            add(&mut by, category, None, "", line);
            for s in sigs.iter().filter(|s| s.phase == "Failed") {
                let code = s
                    .last_terminated
                    .first()
                    .map(|(_, r, c)| format!("{r} exit code {c}"))
                    .unwrap_or_else(|| "no termination recorded".into());
                add(&mut by, category, None, &s.name, format!("pod {}: {code}", s.name));
            }
        }
    }
    for line in refused_pods(index, w) {
        add(&mut by, Category::FailedCreate, None, "", line);
    }
    if by.is_empty()
        && let Some(crate::workload::Controller::Deployment(d)) = w.controller
        && let Some(c) = d
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Progressing" && c.status == "False"))
    {
        add(
            &mut by,
            Category::RolloutStuck,
            None,
            "",
            format!(
                "Deployment {}: Progressing=False {}: {}",
                w.resource.name,
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default()
            ),
        );
    }
    by.into_values().collect()
}

/// What the workload's controller says when it cannot create pods: a Deployment's `ReplicaFailure`
/// condition (the latest refusal of its ReplicaSet), a StatefulSet's, DaemonSet's or Job's own
/// `FailedCreate` events (the newest, with how many there were: every retry names another pod).
fn refused_pods(index: &Index<'_>, w: &Workload<'_>) -> Vec<String> {
    let (kind, ns, name) = (w.resource.kind.as_str(), w.resource.namespace.as_str(), w.resource.name.as_str());
    if let Some(crate::workload::Controller::Deployment(d)) = w.controller {
        return d
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
            .filter(|c| c.type_ == "ReplicaFailure" && c.status == "True")
            .map(|c| {
                format!("Deployment {name}: ReplicaFailure {}: {}", c.reason.as_deref().unwrap_or(""), c.message.as_deref().unwrap_or(""))
            })
            .collect();
    }
    if !matches!(kind, "StatefulSet" | "DaemonSet" | "Job") {
        return Vec::new();
    }
    let refusals: Vec<String> = index.events(kind, ns, name).into_iter().filter(|(r, _)| r == "FailedCreate").map(|(_, m)| m).collect();
    refusals.last().map(|m| format!("{kind} {name}: FailedCreate ({} event(s)): {m}", refusals.len())).into_iter().collect()
}

/// The pod's claims that are not bound, each with its phase, class and the latest event about it (the
/// provisioner's or the binder's reason).
fn pending_claims(index: &Index<'_>, pod: &k8s_openapi::api::core::v1::Pod) -> Vec<String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let claims = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()).filter_map(|v| v.persistent_volume_claim.as_ref());
    claims
        .filter_map(|c| {
            let pvc = index
                .snapshot
                .persistent_volume_claims
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(c.claim_name.as_str()) && p.metadata.namespace.as_deref() == Some(ns));
            let phase = pvc.and_then(|p| p.status.as_ref()?.phase.clone());
            if phase.as_deref() == Some("Bound") {
                return None;
            }
            let class = pvc
                .and_then(|p| p.spec.as_ref()?.storage_class_name.clone())
                .unwrap_or_else(|| "(none named: the cluster's default)".into());
            let said =
                index.events("PersistentVolumeClaim", ns, &c.claim_name).last().map(|(r, m)| format!("; {r}: {m}")).unwrap_or_default();
            Some(match pvc {
                Some(_) => format!(
                    "PersistentVolumeClaim {}: {}, StorageClass {class}{said}",
                    c.claim_name,
                    phase.unwrap_or_else(|| "no phase".into())
                ),
                None => format!("PersistentVolumeClaim {}: not found in namespace {ns}", c.claim_name),
            })
        })
        .collect()
}

/// Impact: the share of desired replicas unavailable, and whether a Service lost every endpoint.
fn severity(index: &Index<'_>, w: &Workload<'_>) -> Severity {
    // i64: replica counts come from outside (a snapshot) and may sit at i32's edge.
    let desired = i64::from(w.desired_replicas().max(1));
    let available = i64::from(w.available_replicas());
    if available == 0 || service_lost_all_endpoints(index, w) {
        Severity::Critical
    } else if (desired - available) * 2 >= desired {
        Severity::High
    } else {
        // Fully available on older pods, but the current revision cannot roll out.
        Severity::Medium
    }
}

pub(crate) fn selects(selector: &BTreeMap<String, String>, labels: Option<&BTreeMap<String, String>>) -> bool {
    !selector.is_empty() && labels.is_some_and(|l| selector.iter().all(|(k, v)| l.get(k) == Some(v)))
}

fn service_lost_all_endpoints(index: &Index<'_>, w: &Workload<'_>) -> bool {
    let labels = w.template().and_then(|t| t.metadata.as_ref()?.labels.as_ref());
    index.services_in(&w.resource.namespace).iter().any(|svc| {
        let selector = svc.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
        selects(&selector, labels) && !w.pods.iter().any(|p| crate::signals::is_ready(p))
    })
}

/// The confidence at or above which a rules' fix may be approved by policy (`--auto-approve-max-severity`):
/// the cause is read off the evidence (a rollout that removed what the pods need, a limit they exceed),
/// not guessed.
pub const APPROVAL_CONFIDENCE: f64 = 0.85;

struct Decision {
    action: FixAction,
    summary: String,
    root_cause: String,
    confidence: f64,
    extra_evidence: Vec<String>,
}

fn first_container(w: &Workload<'_>) -> String {
    w.template().and_then(|t| t.spec.as_ref()?.containers.first().map(|c| c.name.clone())).unwrap_or_default()
}

/// The rollout diff, when the current revision differs from the last healthy one.
fn rollout_diff(w: &Workload<'_>) -> Option<(i64, i64, Vec<Change>)> {
    let cur = w.current_revision()?;
    let good = w.last_healthy_revision()?;
    let changes = diff(good.template()?, cur.template()?);
    (!changes.is_empty()).then_some((good.number, cur.number, changes))
}

fn rollback(category: Category, cause: String, good: i64, cur: i64, changes: &[Change], confidence: f64) -> Decision {
    Decision {
        action: FixAction::Rollback { to_revision: good },
        summary: format!(
            "Roll back to revision {good}, the last whose pods were healthy: the smallest change that undoes what revision {cur} introduced."
        ),
        root_cause: format!(
            "{category} since the rollout to revision {cur}: {cause} ({}).",
            changes.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        ),
        confidence,
        extra_evidence: changes.iter().map(|c| format!("revision {good} -> {cur}: {c}")).collect(),
    }
}

fn manual(guidance: String, root_cause: String, confidence: f64) -> Decision {
    Decision {
        summary: "No safe automatic fix is known; see the guidance.".into(),
        action: FixAction::Manual { guidance },
        root_cause,
        confidence,
        extra_evidence: Vec::new(),
    }
}

/// The CronJob a Job workload is a run of (its controller owner), if any.
fn job_cron(snapshot: &Snapshot, w: &Workload<'_>) -> Option<String> {
    let job = snapshot
        .jobs
        .iter()
        .find(|j| j.metadata.name.as_deref() == Some(&w.resource.name) && j.metadata.namespace.as_deref() == Some(&w.resource.namespace))?;
    job.metadata.owner_references.iter().flatten().find(|o| o.kind == "CronJob").map(|o| o.name.clone())
}

/// The nodes the finding's pods run on, for the guidance: "a, b".
fn nodes_of(w: &Workload<'_>, pods: &[String]) -> String {
    let nodes: BTreeSet<&str> = w
        .pods
        .iter()
        .filter(|p| p.metadata.name.as_ref().is_some_and(|n| pods.contains(n)))
        .filter_map(|p| p.spec.as_ref()?.node_name.as_deref())
        .collect();
    nodes.into_iter().collect::<Vec<_>>().join(", ")
}

/// What is wrong with node `name` in the snapshot: Ready not True (with the node controller's reason),
/// and with `pressure` also the memory, disk and PID pressure conditions that are True.
fn node_problems(snapshot: &Snapshot, name: &str, pressure: bool) -> Vec<String> {
    let Some(node) = snapshot.nodes.iter().find(|n| n.metadata.name.as_deref() == Some(name)) else {
        return Vec::new();
    };
    let conditions = node.status.iter().flat_map(|s| s.conditions.iter().flatten());
    conditions
        .filter(|c| {
            (c.type_ == "Ready" && c.status != "True")
                || (pressure && matches!(c.type_.as_str(), "MemoryPressure" | "DiskPressure" | "PIDPressure") && c.status == "True")
        })
        .map(|c| {
            format!("node {name}: {}={} {}: {}", c.type_, c.status, c.reason.as_deref().unwrap_or(""), c.message.as_deref().unwrap_or(""))
        })
        .collect()
}

/// What to do about a refusal to create pods, from the refusal's own words.
fn refusal_guidance(said: &str, ns: &str) -> String {
    if said.contains("exceeded quota") {
        format!(
            "A ResourceQuota refuses the pods: `kubectl describe resourcequota -n {ns}`; raise it, or lower the workload's replicas or requests."
        )
    } else if said.contains("serviceaccount") && said.contains("not found") {
        format!("The pods run as a ServiceAccount that does not exist in {ns}: create it, or set serviceAccountName to one that does.")
    } else if said.contains("failed calling webhook") {
        format!(
            "An admission webhook cannot be reached (its Service has no endpoints, or its backend is down) and fails closed: no pod it covers can be created. `kubectl get validatingwebhookconfigurations,mutatingwebhookconfigurations`, then `kubectl get endpointslices -n {ns}` for its Service; bring the backend up, or set its failurePolicy to Ignore while it is down."
        )
    } else if said.contains("admission webhook") {
        "An admission webhook denies the pods: its message says why; `kubectl get validatingwebhookconfigurations,mutatingwebhookconfigurations`.".into()
    } else if let Some(policy) = said.split("ValidatingAdmissionPolicy '").nth(1).and_then(|rest| rest.split('\'').next()) {
        format!(
            "ValidatingAdmissionPolicy {policy} denies the pods (its message says why): `kubectl get validatingadmissionpolicy {policy} -o yaml` and its bindings (`kubectl get validatingadmissionpolicybindings`); change the pod template to meet it, or the policy if it is wrong."
        )
    } else if said.contains("violates PodSecurity") {
        format!(
            "The namespace's Pod Security level refuses the pods: `kubectl get ns {ns} --show-labels`; change the pod's securityContext to meet it."
        )
    } else {
        format!("The controller cannot create the pods: `kubectl get events -n {ns} --field-selector reason=FailedCreate`.")
    }
}

/// The nodes a pod of `template` may be scheduled to: schedulable, carrying every label of its
/// nodeSelector, and with every NoSchedule/NoExecute taint tolerated. All schedulable nodes when the
/// template is unknown. (Node affinity is not weighed: it narrows, and a fix sized for a node the pod
/// cannot use would fail in the shadow, which is where that shows.)
pub(crate) fn eligible_nodes<'a>(snapshot: &'a Snapshot, template: Option<&PodTemplateSpec>) -> Vec<&'a Node> {
    let spec = template.and_then(|t| t.spec.as_ref());
    let selector = spec.and_then(|s| s.node_selector.as_ref());
    let tolerations = spec.and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
    snapshot
        .nodes
        .iter()
        .filter(|n| !n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false))
        .filter(|n| selector.is_none_or(|sel| carries_labels(n, sel)))
        .filter(|n| {
            let taints = n.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
            taints
                .iter()
                .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
                .all(|t| tolerations.iter().any(|tol| tolerates(tol, t)))
        })
        .collect()
}

/// Whether a node carries every label of a pod's nodeSelector.
pub(crate) fn carries_labels(node: &Node, selector: &BTreeMap<String, String>) -> bool {
    let labels = node.metadata.labels.as_ref();
    selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Whether a toleration matches a taint, as the scheduler decides it.
pub(crate) fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    let effect_ok = tol.effect.as_deref().is_none_or(|e| e.is_empty() || e == taint.effect);
    let exists = tol.operator.as_deref() == Some("Exists");
    let key_ok = match tol.key.as_deref() {
        None | Some("") => exists,
        Some(k) => k == taint.key,
    };
    let value_ok = exists || tol.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default();
    effect_ok && key_ok && value_ok
}

/// The largest allocatable CPU (millicores) or memory (bytes) among the nodes a pod of `template` may
/// use ([`eligible_nodes`]); see [`schedulable_amount`].
pub(crate) fn largest_node(snapshot: &Snapshot, resource: &str, template: Option<&PodTemplateSpec>) -> Option<f64> {
    eligible_nodes(snapshot, template)
        .into_iter()
        .filter_map(|n| schedulable_amount(resource, &n.status.as_ref()?.allocatable.as_ref()?.get(resource)?.0))
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
}

/// Pods waiting for claims that do not bind: why they do not (the provisioner's or binder's event in
/// the evidence), and — for a StatefulSet's claims, which come from volumeClaimTemplates that cannot
/// change in place — how to replace the template.
fn claim_decision(w: &Workload<'_>, f: &Finding) -> Decision {
    let ns = &w.resource.namespace;
    let claims: Vec<&str> = f
        .evidence
        .iter()
        .filter_map(|e| e.strip_prefix("PersistentVolumeClaim ")?.split(':').next())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let evidence = f.evidence.join("\n");
    let unknown_class = evidence
        .split("storageclass.storage.k8s.io \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .filter(|_| evidence.contains("\" not found"));
    let named = if claims.is_empty() { "a PersistentVolumeClaim".to_owned() } else { format!("claim(s) {}", claims.join(", ")) };
    let root_cause = match unknown_class {
        Some(class) => {
            format!("The pods wait for {named}, which ask for StorageClass {class}: it does not exist, so nothing provisions them.")
        }
        None if evidence.contains("no storage class is set") => format!(
            "The pods wait for {named}, which name no StorageClass while the cluster has no default one: nothing provisions them, and no \
             PersistentVolume matches."
        ),
        None if evidence.contains("kubernetes.io/no-provisioner") => format!(
            "The pods wait for {named}, whose StorageClass has no provisioner (kubernetes.io/no-provisioner: its volumes are \
             made by hand) and no PersistentVolume of that class fits them (capacity, access modes, or already bound)."
        ),
        None if evidence.contains("waiting for a volume to be created") => {
            format!("The pods wait for {named}: their StorageClass's provisioner has not created the volume (is it running?).")
        }
        None => format!("The pods wait for {named}, which is not bound."),
    };
    let statefulset = match w.controller {
        Some(crate::workload::Controller::StatefulSet(s)) => {
            s.spec.as_ref().and_then(|s| s.volume_claim_templates.as_ref()).is_some_and(|t| !t.is_empty())
        }
        _ => false,
    };
    let name = &w.resource.name;
    let guidance = if statefulset {
        format!(
            "The claims come from StatefulSet {name}'s volumeClaimTemplates, which cannot be changed in place: `kubectl delete \
             statefulset {name} -n {ns} --cascade=orphan`, create it again with a storageClassName that exists (`kubectl get \
             storageclass`), then `kubectl delete pvc {} -n {ns}` (Pending: they hold no data) so that its controller creates them \
             from the new template.",
            if claims.is_empty() { "…".to_owned() } else { claims.join(" ") }
        )
    } else {
        format!(
            "Bind the claim: `kubectl describe pvc -n {ns}` names why it waits. An unknown StorageClass needs an existing one \
             (`kubectl get storageclass`; a claim's class cannot change, so recreate the claim); no provisioner needs one installed \
             or a PersistentVolume that fits."
        )
    };
    manual(guidance, root_cause, 0.7)
}

/// A volume that cannot be set up, without a rollout to blame: what the events say, and what to do
/// about it.
fn volume_decision(w: &Workload<'_>, f: &Finding, pod: &str) -> Decision {
    let ns = &w.resource.namespace;
    let evidence = f.evidence.join("\n");
    if evidence.contains("Multi-Attach error") {
        // A ReadWriteOnce volume follows its pod from node to node only once the old node lets it go.
        let rolling = match w.controller {
            Some(crate::workload::Controller::Deployment(d)) => d
                .spec
                .as_ref()
                .is_some_and(|s| s.strategy.as_ref().and_then(|st| st.type_.as_deref()).unwrap_or("RollingUpdate") == "RollingUpdate"),
            _ => false,
        };
        let name = &w.resource.name;
        let how = if rolling {
            format!(
                "Deployment {name} rolls out with RollingUpdate, which starts the new pod before the old one lets its ReadWriteOnce \
                 volume go: switch to Recreate (`kubectl patch deployment {name} -n {ns} --type merge -p \
                 '{{\"spec\":{{\"strategy\":{{\"type\":\"Recreate\",\"rollingUpdate\":null}}}}}}'`), or use a ReadWriteMany volume. "
            )
        } else {
            String::new()
        };
        return manual(
            format!(
                "{how}If the node that holds the volume is gone, the attach/detach controller force-detaches it after 6 minutes; \
                 `kubectl get volumeattachments` shows which node holds it."
            ),
            "A ReadWriteOnce volume is still attached to another node (Multi-Attach error): the pod cannot start until that node \
             releases it."
                .into(),
            0.7,
        );
    }
    if evidence.contains("FailedAttachVolume") {
        return manual(
            format!(
                "The volume's driver cannot attach it to the node (the event says why: a zone the node is not in, a volume limit \
                 per node, a driver down): `kubectl describe pod -n {ns} {pod}`, `kubectl get volumeattachments`, the CSI driver's \
                 controller logs."
            ),
            "A volume cannot be attached to the pod's node.".into(),
            0.6,
        );
    }
    manual(format!("A volume cannot be mounted: `kubectl describe pod -n {ns} {pod}`."), "A volume cannot be mounted.".into(), 0.6)
}

fn decide(snapshot: &Snapshot, w: &Workload<'_>, f: &Finding, sigs: &[PodSignals], rollout: &Option<(i64, i64, Vec<Change>)>) -> Decision {
    // The container the signals name, else the first one.
    let container = f.container.clone().unwrap_or_else(|| first_container(w));
    let ns = &w.resource.namespace;
    let pod = f.pods.first().cloned().unwrap_or_default();
    match f.category {
        Category::CrashLoopBackOff => match rollout {
            Some((good, cur, changes)) => {
                let removed: Vec<String> = changes
                    .iter()
                    .filter_map(|c| if let Change::EnvRemoved { name, .. } = c { Some(name.clone()) } else { None })
                    .collect();
                let cause = if removed.is_empty() {
                    "the containers exit and restart".to_owned()
                } else {
                    format!("the containers exit since env {} was removed, which revision {good} had", removed.join(", "))
                };
                rollback(f.category, cause, *good, *cur, changes, if removed.is_empty() { 0.75 } else { 0.9 })
            }
            None => manual(
                format!("Read why the container exits: `kubectl logs -n {ns} {pod} --previous`; check its configuration and dependencies."),
                "The container keeps exiting and restarting (CrashLoopBackOff); no recent rollout explains it.".into(),
                0.5,
            ),
        },
        Category::ImagePullBackOff => match rollout {
            Some((good, cur, changes)) if changes.iter().any(|c| matches!(c, Change::Image { .. })) => {
                rollback(f.category, "the new image cannot be pulled".into(), *good, *cur, changes, 0.9)
            }
            _ => manual(
                format!(
                    "Check that the image and tag exist and that the pod can pull them (imagePullSecrets): `kubectl describe pod -n {ns} {pod}`."
                ),
                "The image cannot be pulled (ImagePullBackOff).".into(),
                0.6,
            ),
        },
        Category::OOMKilled => {
            let lowered = rollout
                .as_ref()
                .filter(|(_, _, ch)| ch.iter().any(|c| matches!(c, Change::Resource { field, .. } if field == "limits.memory")));
            if let Some((good, cur, changes)) = lowered {
                return rollback(
                    f.category,
                    "the memory limit was changed and the container is OOM-killed".into(),
                    *good,
                    *cur,
                    changes,
                    0.85,
                );
            }
            // The previous revision runs healthy beside the new one under the same limit: what the
            // rollout changed (a setting, an image) makes the container need more. Undo it rather
            // than feed it; once the rollout has completed, growth is as likely, so the limit rises.
            if let Some((good, cur, changes)) = rollout.as_ref().filter(|(good, _, _)| !w.presumed_healthy(*good)) {
                return rollback(f.category, "the container is OOM-killed since the rollout".into(), *good, *cur, changes, 0.8);
            }
            let memory_limit = |spec: Option<&k8s_openapi::api::core::v1::PodSpec>| {
                spec?
                    .containers
                    .iter()
                    .find(|c| c.name == container)?
                    .resources
                    .as_ref()?
                    .limits
                    .as_ref()?
                    .get("memory")
                    .map(|q| q.0.clone())
            };
            // A template without a limit may still run under one: the namespace's LimitRange gives
            // its pods a default, which they carry. That is the limit they are killed at.
            let (limit, from_limit_range) = match memory_limit(w.template().and_then(|t| t.spec.as_ref())) {
                Some(l) => (Some(l), false),
                None => (w.pods.iter().find_map(|p| memory_limit(p.spec.as_ref())), true),
            };
            match limit.as_deref().and_then(quantity_bytes) {
                Some(bytes) => {
                    let cap = largest_node(snapshot, "memory", w.template()).unwrap_or(f64::MAX);
                    let new = mib_quantity((bytes * 2.0).min(cap));
                    let old = limit.unwrap_or_default();
                    Decision {
                        action: FixAction::SetResources {
                            container: container.clone(),
                            requests: BTreeMap::new(),
                            limits: [("memory".to_owned(), new.clone())].into(),
                        },
                        summary: format!(
                            "Raise container {container}'s memory limit from {old} to {new} (rule: double the limit, never above the largest node)."
                        ),
                        root_cause: format!(
                            "Container {container} is killed for exceeding its memory limit of {old} (OOMKilled, exit 137); no recent change lowered it."
                        ),
                        confidence: 0.85,
                        extra_evidence: vec![match from_limit_range {
                            false => format!("memory limit {old}"),
                            true => format!(
                                "memory limit {old}, which the pods carry and the template does not: the namespace's LimitRange sets it (`kubectl get limitrange -n {ns}`)"
                            ),
                        }],
                    }
                }
                None => manual(
                    format!(
                        "The container is OOM-killed without a memory limit: the node ran out of memory. Set requests that match usage: `kubectl top pod -n {ns}`."
                    ),
                    "OOMKilled without a container memory limit.".into(),
                    0.5,
                ),
            }
        }
        Category::Unschedulable => {
            if let Some((good, cur, changes)) = rollout
                .as_ref()
                .filter(|(_, _, ch)| ch.iter().any(|c| matches!(c, Change::Resource { field, .. } if field.starts_with("requests."))))
            {
                return rollback(f.category, "the new requests fit no node".into(), *good, *cur, changes, 0.85);
            }
            if let Some((good, cur, changes)) =
                rollout.as_ref().filter(|(_, _, ch)| ch.iter().any(|c| matches!(c, Change::Placement { .. })))
            {
                return rollback(f.category, "the new placement rules match no node".into(), *good, *cur, changes, 0.85);
            }
            // The container whose requests no node can hold (a sidecar before it may fit anywhere).
            let exceeds = |c: &&k8s_openapi::api::core::v1::Container| {
                c.resources.as_ref().and_then(|r| r.requests.as_ref()).is_some_and(|r| {
                    r.iter().any(|(res, q)| {
                        matches!((schedulable_amount(res, &q.0), largest_node(snapshot, res, w.template())), (Some(want), Some(node)) if want > node)
                    })
                })
            };
            let c = w.template().and_then(|t| {
                let containers = &t.spec.as_ref()?.containers;
                containers.iter().find(exceeds).or_else(|| containers.iter().find(|c| c.name == container)).cloned()
            });
            let container = c.as_ref().map(|c| c.name.clone()).unwrap_or(container);
            let requests: BTreeMap<String, String> =
                c.and_then(|c| c.resources?.requests).map(|r| r.into_iter().map(|(k, v)| (k, v.0)).collect()).unwrap_or_default();
            let mut lowered = BTreeMap::new();
            let mut said = Vec::new();
            // Room for every replica on the nodes the pod may use, and for one more pod beside them on
            // each: with N replicas over K such nodes, the largest holds ceil(N/K) of them.
            let eligible = eligible_nodes(snapshot, w.template()).len().max(1);
            let per_node = (w.desired_replicas().max(1) as usize).div_ceil(eligible);
            for (res, q) in &requests {
                let (Some(node), Some(want)) = (largest_node(snapshot, res, w.template()), schedulable_amount(res, q)) else {
                    continue;
                };
                if want > node {
                    let fit = node / (per_node + 1) as f64;
                    let text = if res == "memory" { mib_quantity(fit) } else { format!("{}m", fit.floor() as u64) };
                    said.push(format!(
                        "{res} request {q} exceeds the allocatable of every node the pod may use; lowered to {text} \
                         ({per_node} replica(s) per node and room for one more pod)"
                    ));
                    lowered.insert(res.clone(), text);
                }
            }
            if lowered.is_empty() {
                return manual(
                    format!("No node can take the pod: `kubectl describe pod -n {ns} {pod}` (taints, affinity, capacity)."),
                    "The scheduler finds no node for the pod.".into(),
                    0.5,
                );
            }
            // Only requests are lowered: the limits, at least the old requests, stay at least the new ones
            // (the API server refuses a request above its limit).
            Decision {
                summary: format!("Lower container {container}'s requests to fit the nodes: {}.", said.join("; ")),
                action: FixAction::SetResources { container: container.clone(), requests: lowered, limits: BTreeMap::new() },
                root_cause: format!(
                    "Container {container} requests more than any node can offer, so the scheduler leaves its pods Pending."
                ),
                confidence: 0.8,
                extra_evidence: said,
            }
        }
        Category::LivenessProbeFailure | Category::ReadinessProbeFailure => {
            let (probe, field) = if f.category == Category::LivenessProbeFailure {
                (ProbeKind::Liveness, "livenessProbe")
            } else {
                (ProbeKind::Readiness, "readinessProbe")
            };
            match rollout.as_ref().filter(|(_, _, ch)| ch.iter().any(|c| matches!(c, Change::Probe { probe, .. } if *probe == field))) {
                Some((good, cur, changes)) => rollback(f.category, format!("the {field} now fails"), *good, *cur, changes, 0.85),
                None if let Some(d) = probe_path_fix(w, &container, probe, sigs) => d,
                None => {
                    let current = w.template().and_then(|t| t.spec.as_ref()?.containers.iter().find(|c| c.name == container).cloned());
                    let text = current.and_then(|c| {
                        probe_text(if probe == ProbeKind::Liveness { c.liveness_probe.as_ref() } else { c.readiness_probe.as_ref() })
                    });
                    manual(
                        format!("The {field} ({}) fails: check the path and port the application serves.", text.unwrap_or_default()),
                        format!("The {field} fails and no recent rollout changed it."),
                        0.5,
                    )
                }
            }
        }
        Category::CreateContainerConfigError => match rollout {
            // The kubelet names what is missing; the revision before referenced none of it and ran.
            Some((good, cur, changes)) => rollback(
                f.category,
                format!("revision {cur} references configuration that does not exist (the kubelet cannot create its containers)"),
                *good,
                *cur,
                changes,
                0.8,
            ),
            None => manual(
                format!("A ConfigMap, Secret or key the pod references is missing: `kubectl describe pod -n {ns} {pod}`."),
                "The container cannot be created: its configuration references something missing.".into(),
                0.6,
            ),
        },
        Category::FailedMount => {
            match rollout.as_ref().filter(|(_, _, ch)| ch.iter().any(|c| matches!(c, Change::Volume { to: Some(_), .. }))) {
                // The kubelet names the missing source; the revision before did not mount it and ran.
                Some((good, cur, changes)) => {
                    rollback(f.category, format!("revision {cur} mounts a volume the kubelet cannot set up"), *good, *cur, changes, 0.8)
                }
                None => volume_decision(w, f, &pod),
            }
        }
        Category::Evicted => manual(
            format!("The node evicted the pod under resource pressure: `kubectl describe node` and set requests that match usage in {ns}."),
            "Pods were evicted by the kubelet.".into(),
            0.6,
        ),
        Category::RolloutStuck => match rollout {
            Some((good, cur, changes)) => rollback(f.category, "the rollout does not progress".into(), *good, *cur, changes, 0.7),
            None => manual(
                format!("`kubectl rollout status -n {ns} deployment/{}`", w.resource.name),
                "The rollout does not progress.".into(),
                0.5,
            ),
        },
        Category::JobFailed | Category::JobRetrying => {
            let (read, cause) = if f.category == Category::JobFailed {
                (
                    format!("Read why the job's pods fail: `kubectl logs -n {ns} job/{} --previous`", w.resource.name),
                    format!("Job {} failed: its pods exhausted the retry limit.", w.resource.name),
                )
            } else {
                (
                    format!("Read why the pods fail before the Job gives up: `kubectl logs -n {ns} {pod}`"),
                    format!(
                        "Job {}'s pods fail and it retries with back-off; it will fail once its backoffLimit is spent.",
                        w.resource.name
                    ),
                )
            };
            // A run of a CronJob: its jobTemplate is what fails, and every run will until it changes.
            let cron = job_cron(snapshot, w);
            let remedy = match &cron {
                Some(c) => format!(
                    "this Job is a run of CronJob {c}: fix its jobTemplate (`kubectl edit cronjob -n {ns} {c}`), which the next run uses; suspend it meanwhile if failed runs pile up (`kubectl patch cronjob -n {ns} {c} -p '{{\"spec\":{{\"suspend\":true}}}}'`)."
                ),
                None => "a Job is not patched in place — fix its spec and create it again.".into(),
            };
            let mut d = manual(format!("{read}; {remedy}"), cause, 0.6);
            if let Some(c) = cron {
                d.extra_evidence.push(format!("Job {} is a run of CronJob {c}", w.resource.name));
            }
            d
        }
        Category::SchedulingGated => manual(
            format!(
                "The gates are lifted by the controller that set them: `kubectl get pod -n {ns} {pod} -o jsonpath='{{.spec.schedulingGates}}'`, then check that controller (a queue, a quota manager)."
            ),
            "Pods are held by scheduling gates that nothing lifts.".into(),
            0.6,
        ),
        Category::FailedCreate => {
            let said = f.evidence.first().cloned().unwrap_or_default();
            match rollout {
                // The revision before was created and ran; what the rollout changed is refused.
                Some((good, cur, changes)) => {
                    rollback(f.category, format!("the controller cannot create revision {cur}'s pods"), *good, *cur, changes, 0.8)
                }
                None => manual(refusal_guidance(&said, ns), format!("The controller cannot create the pods: {said}"), 0.6),
            }
        }
        Category::VolumeClaimPending => claim_decision(w, f),
        Category::NodeNotReady => {
            let nodes = nodes_of(w, &f.pods);
            manual(
                format!(
                    "The node ({nodes}) is the problem, not {}: `kubectl describe node {nodes}`. Its pods are evicted and recreated elsewhere once their tolerationSeconds for node.kubernetes.io/unreachable or not-ready pass (300 s by default); cordon and drain the node if it does not come back.",
                    w.resource.name
                ),
                format!("Pods of {} are not ready because their node ({nodes}) is not ready.", w.resource.name),
                0.8,
            )
        }
        Category::NodePressure => {
            let nodes = nodes_of(w, &f.pods);
            manual(
                format!(
                    "The node ({nodes}) is short of memory, disk or PIDs, not {name}: `kubectl describe node {nodes}` names the condition. Free the resource on the node (disk: unused images and logs; memory and PIDs: what runs there beyond its requests), or cordon and drain it. The kubelet evicts pods whose usage exceeds their requests first: requests that match the containers' real usage keep {name} from being the first to go.",
                    name = w.resource.name
                ),
                format!("Pods of {} run on a node under resource pressure ({nodes}): evictions come next.", w.resource.name),
                0.7,
            )
        }
        // Budgets, Ingresses, autoscalers, webhooks, CronJobs and NetworkPolicies are analyzed in
        // `objects`, routes and Gateways in `gateway`, misscheduled daemons in `daemonsets`; a
        // workload finding never has these.
        Category::DisruptionBlocked
        | Category::IngressBackendMissing
        | Category::IngressClassMissing
        | Category::AutoscalerTargetMissing
        | Category::AutoscalerMetricsUnavailable
        | Category::AutoscalerAtMaxReplicas
        | Category::WebhookUnavailable
        | Category::CronJobNotStarting
        | Category::ServiceBlockedByNetworkPolicy
        | Category::IngressTlsSecretMissing
        | Category::RouteNotAttached
        | Category::RouteBackendMissing
        | Category::GatewayNotReady
        | Category::GatewayListenerInvalid
        | Category::DaemonSetMisscheduled => manual(
            format!("See the {} incident about the object in {ns} that names {}.", f.category, w.resource.name),
            format!("{} (reported on the object itself).", f.category),
            0.5,
        ),
        // Services are analyzed by `selector_mismatch`; a workload finding never has this category.
        Category::ServiceSelectorMismatch => manual(
            format!("Compare the selectors of the Services in {ns} with the labels of {}'s pods.", w.resource.name),
            "A Service selects none of the workload's pods.".into(),
            0.5,
        ),
    }
}

/// A probe the kubelet gets 404 from, beside the container's other probe on the same port that never
/// got a bad status back: the path the other one asks for is served, so pointing the failing probe there is the
/// smallest change the evidence supports. It rests on an inference (the two endpoints may mean
/// different things: liveness, readiness), so its confidence asks a human to approve it.
fn probe_path_fix(w: &Workload<'_>, container: &str, probe: ProbeKind, sigs: &[PodSignals]) -> Option<Decision> {
    let c = w.template()?.spec.as_ref()?.containers.iter().find(|c| c.name == container)?;
    let (failing, other, field, name, other_name) = match probe {
        ProbeKind::Liveness => (c.liveness_probe.as_ref()?, c.readiness_probe.as_ref()?, "livenessProbe", "Liveness", "Readiness"),
        ProbeKind::Readiness => (c.readiness_probe.as_ref()?, c.liveness_probe.as_ref()?, "readinessProbe", "Readiness", "Liveness"),
    };
    let (bad, good) = (failing.http_get.as_ref()?, other.http_get.as_ref()?);
    let (bad_path, good_path) = (bad.path.as_deref().unwrap_or("/"), good.path.as_deref().unwrap_or("/"));
    if bad.port != good.port || bad_path == good_path {
        return None;
    }
    // The other probe may have been refused a connection while the app started (seen on the real node):
    // that says nothing about its path. A status it got back would.
    let events = || sigs.iter().flat_map(|s| s.events.iter()).filter(|(r, _)| r == "Unhealthy").map(|(_, m)| m.as_str());
    let not_found = format!("{name} probe failed: HTTP probe failed with statuscode: 404");
    let other_answered_badly = format!("{other_name} probe failed: HTTP probe failed with statuscode");
    if !events().any(|m| m.starts_with(&not_found)) || events().any(|m| m.starts_with(&other_answered_badly)) {
        return None;
    }
    let other_field = if probe == ProbeKind::Liveness { "readinessProbe" } else { "livenessProbe" };
    Some(Decision {
        action: FixAction::AdjustProbe { container: container.to_owned(), probe, path: good_path.to_owned() },
        summary: format!(
            "Point container {container}'s {field} at {good_path}, which its {other_field} finds served on the same port, instead of {bad_path}."
        ),
        root_cause: format!(
            "Container {container}'s {field} asks for {bad_path}, which the application answers with 404; its {other_field} on the same port ({good_path}) never got a bad status."
        ),
        confidence: 0.6,
        extra_evidence: vec![format!("{other_field} GET {good_path}: the kubelet never reported a bad status from it")],
    })
}

/// The verification plan of `action` on `w`. `category` is the incident's, `None` for a fix a human wrote.
/// `confidence` is the rules' confidence in the inference behind the fix, `None` for a fix from outside
/// the rules: below [`APPROVAL_CONFIDENCE`], or from outside, the plan asks for a human's approval, and
/// the operator never approves it by policy.
pub(crate) fn plan(
    index: &Index<'_>,
    w: Option<&Workload<'_>>,
    rollout: &Option<(i64, i64, Vec<Change>)>,
    action: &FixAction,
    confidence: Option<f64>,
    category: Option<Category>,
) -> VerificationPlan {
    let template = match (action, w) {
        (FixAction::Rollback { to_revision }, Some(w)) => w.revisions.iter().find(|r| r.number == *to_revision).and_then(|r| r.template()),
        (_, Some(w)) => w.template(),
        _ => None,
    };
    let containers = template.and_then(|t| t.spec.as_ref()).map(|s| s.containers.clone()).unwrap_or_default();
    let mut smoke_paths: Vec<String> = containers
        .iter()
        .flat_map(|c| [&c.readiness_probe, &c.liveness_probe])
        .filter_map(|p| p.as_ref()?.http_get.as_ref()?.path.clone())
        .collect();
    smoke_paths.sort();
    smoke_paths.dedup();
    let image_changes = match action {
        FixAction::SetImage { .. } => true,
        FixAction::Rollback { .. } => rollout.as_ref().is_some_and(|(_, _, ch)| ch.iter().any(|c| matches!(c, Change::Image { .. }))),
        _ => false,
    };
    let serves_http = w.is_some_and(|w| {
        let labels = w.template().and_then(|t| t.metadata.as_ref()?.labels.as_ref());
        index
            .services_in(&w.resource.namespace)
            .iter()
            .any(|s| selects(&s.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default(), labels))
    }) || !smoke_paths.is_empty();
    let mut security_checks = Vec::new();
    if image_changes {
        security_checks.push(Source::Trivy);
    }
    security_checks.push(Source::Manifest);
    if serves_http {
        security_checks.push(Source::Zap);
    }
    security_checks.push(Source::Falco);
    let mut health_criteria = vec![
        "rollout completes: observed generation current, all replicas updated and available".to_owned(),
        "no container restarts during the window".to_owned(),
        "no CrashLoopBackOff, OOMKilled or image pull errors".to_owned(),
        "every pod Ready".to_owned(),
    ];
    if category == Some(Category::ServiceSelectorMismatch) || matches!(action, FixAction::SetServiceSelector { .. }) {
        health_criteria.push("the Service has ready endpoints".to_owned());
    }
    VerificationPlan {
        duration_seconds: if category == Some(Category::OOMKilled) { 300 } else { 120 },
        health_criteria,
        security_checks,
        smoke_paths,
        approval_required: confidence.is_none_or(|c| c < APPROVAL_CONFIDENCE),
        workload: w.filter(|w| w.patchable()).map(|w| w.resource.clone()),
    }
}

fn analyze_workload(index: &Index<'_>, w: &Workload<'_>) -> Vec<Incident> {
    let snapshot = index.snapshot;
    let sigs: Vec<PodSignals> = w.pods.iter().map(|p| pod_signals(index, p)).collect();
    let findings = detect(index, w, &sigs, index.observed_at());
    // What the last rollout changed, computed once for every finding of this workload.
    let rollout = if findings.is_empty() { None } else { rollout_diff(w) };
    findings
        .into_iter()
        .map(|f| {
            let mut d = decide(snapshot, w, &f, &sigs, &rollout);
            // A rollback to a revision with no ready pods now (the rollout to the current one completed
            // before it broke) rests on the revision history alone: weaker, so a human approves it.
            if let FixAction::Rollback { to_revision } = d.action
                && w.presumed_healthy(to_revision)
            {
                d.confidence = (d.confidence - 0.15).max(0.0);
                d.extra_evidence.push(format!(
                    "revision {to_revision} has no ready pods now: presumed healthy, as it ran until the current revision replaced it"
                ));
            }
            let severity = severity(index, w);
            let (patch, inverse) = render_workload(&d.action, w);
            let mut evidence = f.evidence.clone();
            evidence.extend(d.extra_evidence.iter().cloned());
            evidence.extend(
                index
                    .events(&w.resource.kind, &w.resource.namespace, &w.resource.name)
                    .into_iter()
                    .rev()
                    .take(2)
                    .map(|(r, m)| format!("{} event {r}: {m}", w.resource.kind)),
            );
            let verification_plan = plan(index, Some(w), &rollout, &d.action, Some(d.confidence), Some(f.category));
            Incident {
                resource: w.resource.clone(),
                category: f.category,
                severity,
                root_cause: d.root_cause,
                evidence,
                confidence: d.confidence,
                pods: f.pods,
                fix: Fix { action: d.action, summary: d.summary, patch, inverse, origin: FixOrigin::Rules },
                verification_plan,
            }
        })
        .collect()
}

/// Whether two label values differ as a typo does: by at most two edits, or one extending the other
/// with a suffix (`api` / `api-v2`).
fn a_typo_away(a: &str, b: &str) -> bool {
    if a == b || (a.len().min(b.len()) >= 3 && (a.starts_with(b) || b.starts_with(a))) {
        return true;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 2 || a.len().max(b.len()) > 63 {
        return false;
    }
    // Levenshtein distance, one row at a time (label values are at most 63 characters).
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            row[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[b.len()] <= 2 && a.len().min(b.len()) > 2
}

/// A Service whose selector matches no pod in its namespace, and the workload it was meant for.
fn selector_mismatch(index: &Index<'_>, svc: &Service, in_namespace: &[&Workload<'_>]) -> Option<Incident> {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let selector = svc.spec.as_ref()?.selector.clone().filter(|s| !s.is_empty())?;
    let matches_any = index.pods_in(&ns).iter().any(|p| selects(&selector, p.metadata.labels.as_ref()));
    if matches_any {
        return None;
    }
    // The intended workload: same namespace, its pods carry every selector key, and it is plausibly the
    // one meant — the Service's namesake, or labelled with values a typo away from the selector's
    // (`wbe` for `web`, `api-v2` for `api`). Carrying the key is not enough: every workload has an
    // `app` label, and pointing a webhook's Service at the application it guards is no fix.
    let candidate = in_namespace
        .iter()
        .filter(|w| w.patchable())
        .filter_map(|w| {
            let labels = w.template()?.metadata.as_ref()?.labels.clone()?;
            let keys = selector.keys().all(|k| labels.contains_key(k));
            let meant = w.resource.name == name || selector.iter().all(|(k, v)| labels.get(k).is_some_and(|l| a_typo_away(l, v)));
            (keys && meant).then_some((w, labels))
        })
        .max_by_key(|(w, _)| (w.resource.name == name) as u8);
    let resource = ResourceRef { kind: "Service".into(), namespace: ns.clone(), name: name.clone() };
    let shown = selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let mut evidence = vec![format!("Service {name} selects {shown}: no pod in namespace {ns} has these labels")];
    match candidate {
        Some((w, labels)) => {
            let new: BTreeMap<String, String> = selector.keys().map(|k| (k.clone(), labels[k].clone())).collect();
            let new_shown = new.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            evidence.push(format!("{} {} labels its pods {new_shown}", w.resource.kind, w.resource.name));
            let (patch, inverse) = render_service_selector(svc, &new);
            let action = FixAction::SetServiceSelector { selector: new };
            let confidence = if w.resource.name == name { 0.9 } else { 0.7 };
            let verification_plan = plan(index, Some(w), &None, &action, Some(confidence), Some(Category::ServiceSelectorMismatch));
            Some(Incident {
                resource,
                category: Category::ServiceSelectorMismatch,
                severity: Severity::Critical,
                root_cause: format!(
                    "Service {name} has no endpoints: its selector {shown} matches no pod; {} {}'s pods are labelled {new_shown}.",
                    w.resource.kind, w.resource.name
                ),
                evidence,
                confidence,
                pods: Vec::new(),
                fix: Fix {
                    summary: format!("Set Service {name}'s selector to {new_shown}, the labels of {}'s pods.", w.resource.name),
                    action,
                    patch: Some(patch),
                    inverse: Some(inverse),
                    origin: FixOrigin::Rules,
                },
                verification_plan,
            })
        }
        None => Some(crate::objects::object_incident(
            index,
            crate::objects::ObjectFinding {
                resource,
                category: Category::ServiceSelectorMismatch,
                severity: Severity::High,
                root_cause: format!("Service {name} selects {shown}, which matches no pod."),
                evidence,
                guidance: format!(
                    "No workload in {ns} is the one selector {shown} means (none is the Service's namesake or labelled a typo away): fix the selector or the pod labels, or deploy the Service's backend."
                ),
                confidence: 0.6,
            },
        )),
    }
}

/// Validate a fix proposed for `resource` from outside the rules (the optional LLM) against the
/// snapshot, and render its patch and inverse. Refused: an unknown resource or container, a rollback to
/// a revision that does not exist or never ran healthy, a selector for a resource that is not a Service.
/// The verification plan for a fix a human wrote (`aegis shadow verify --fix FILE`), built by the same
/// rules as the analysis' own plans: what the fix changes decides the scanners, the probes the smoke
/// paths, and a selector fix is proven on the workload its new selector picks.
pub fn plan_for(snapshot: &Snapshot, resource: &ResourceRef, action: &FixAction) -> Result<VerificationPlan, String> {
    let index = Index::new(snapshot);
    let all = workloads(snapshot);
    let in_ns = |w: &&Workload<'_>| w.resource.namespace == resource.namespace && w.patchable();
    let w = match action {
        FixAction::SetServiceSelector { selector } => all.iter().filter(in_ns).find(|w| {
            let labels = w.template().and_then(|t| t.metadata.as_ref()?.labels.as_ref());
            selects(selector, labels)
        }),
        _ => all.iter().find(|w| &w.resource == resource),
    }
    .ok_or_else(|| format!("no workload in the snapshot to prove a {} fix for {resource} on", action.kind()))?;
    // A fix from outside the rules: its plan always asks for a human.
    Ok(plan(&index, Some(w), &rollout_diff(w), action, None, None))
}

pub fn render_fix(snapshot: &Snapshot, resource: &ResourceRef, action: &FixAction) -> Result<Fix, String> {
    let summary = format!("{} proposed for {resource}", action.kind());
    if resource.kind == "Service" {
        let svc = snapshot
            .services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(&resource.name) && s.metadata.namespace.as_deref() == Some(&resource.namespace))
            .ok_or_else(|| format!("no Service {resource} in the snapshot"))?;
        return match action {
            FixAction::SetServiceSelector { selector } if !selector.is_empty() => {
                let (p, i) = render_service_selector(svc, selector);
                Ok(Fix { action: action.clone(), summary, patch: Some(p), inverse: Some(i), origin: FixOrigin::Human })
            }
            FixAction::Manual { .. } => Ok(Fix { action: action.clone(), summary, patch: None, inverse: None, origin: FixOrigin::Human }),
            other => Err(format!("a {} fix does not apply to a Service", other.kind())),
        };
    }
    let all = workloads(snapshot);
    let w = all.iter().find(|w| &w.resource == resource).ok_or_else(|| format!("no workload {resource} in the snapshot"))?;
    let containers: Vec<String> =
        w.template().and_then(|t| t.spec.as_ref()).map(|s| s.containers.iter().map(|c| c.name.clone()).collect()).unwrap_or_default();
    let check_container = |c: &str| {
        if containers.iter().any(|x| x == c) {
            Ok(())
        } else {
            Err(format!("no container {c:?} in {resource} (has {})", containers.join(", ")))
        }
    };
    match action {
        FixAction::Rollback { to_revision } => {
            let rev =
                w.revisions.iter().find(|r| r.number == *to_revision).ok_or_else(|| format!("{resource} has no revision {to_revision}"))?;
            if w.current_revision().is_some_and(|c| c.number == rev.number) {
                return Err(format!("revision {to_revision} is {resource}'s current revision: nothing to roll back to"));
            }
        }
        FixAction::SetImage { container, .. }
        | FixAction::SetResources { container, .. }
        | FixAction::SetEnv { container, .. }
        | FixAction::EnvFrom { container, .. }
        | FixAction::AdjustProbe { container, .. } => check_container(container)?,
        FixAction::Scale { replicas } if *replicas < 0 => return Err("replicas must not be negative".into()),
        FixAction::SetServiceSelector { .. } => return Err("a selector fix applies to a Service, not a workload".into()),
        FixAction::Scale { .. } | FixAction::Restart | FixAction::Manual { .. } => {}
    }
    let (patch, inverse) = render_workload(action, w);
    if patch.is_none() && !matches!(action, FixAction::Manual { .. }) {
        return Err(format!("{} cannot be rendered for {resource}", action.kind()));
    }
    Ok(Fix { action: action.clone(), summary, patch, inverse, origin: FixOrigin::Human })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(conditions: serde_json::Value) -> Snapshot {
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "shop"},
             "spec": {"activeDeadlineSeconds": 10, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": "x:1"}]}}},
             "status": {"failed": 1, "conditions": conditions}}
        ]});
        Snapshot::from_text(&list.to_string()).unwrap()
    }

    /// The Job controller deletes a Job's running pods when its activeDeadlineSeconds passes: the
    /// Job's Failed condition is then all there is, and it is enough.
    #[test]
    fn a_job_failed_by_its_deadline_is_found_after_its_pods_are_gone() {
        let failed = job(serde_json::json!([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
            "message": "Job was active longer than specified deadline"}]));
        let found: Vec<(Category, String)> = analyze(&failed).into_iter().map(|i| (i.category, i.resource.to_string())).collect();
        assert_eq!(found, [(Category::JobFailed, "Job/migrate -n shop".to_owned())]);
        let done = job(serde_json::json!([{"type": "Complete", "status": "True"}]));
        assert!(analyze(&done).is_empty(), "a Job that completed and whose pods are gone is no incident");
    }

    #[test]
    fn label_values_a_typo_apart_are_told_from_unrelated_ones() {
        for (a, b) in [("web", "wbe"), ("api", "api-v2"), ("payments", "payment"), ("checkout", "chekout")] {
            assert!(a_typo_away(a, b) && a_typo_away(b, a), "{a} / {b}");
        }
        for (a, b) in [("api", "policy-webhook"), ("db", "ui"), ("web", "api"), ("a", "b")] {
            assert!(!a_typo_away(a, b), "{a} / {b}");
        }
    }
}
