//! Whether a shadow is isolated — shown, not assumed. A NetworkPolicy only declares isolation; a
//! cluster without an enforcer ignores it. So a short-lived pod inside the shadow, placed like the
//! workload's pods (same nodeSelector, tolerations, affinity, runtime class) and subject to the same
//! NetworkPolicy, tries TCP connections to what must be out of its reach — the production Services
//! whose copies are in the shadow, and the API server — and reports what it reached.
//!
//! The probe image's contract: run with the arguments `probe connect ADDR...`, it tries each address
//! and writes one line per address, `reached ADDR` or `blocked ADDR: why`, to its termination message
//! (`/dev/termination-log`, which the kubelet copies into the pod's status: no log access needed).
//! `aegis probe connect` does exactly that, so the operator's own image is the default probe.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, Service};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::K8sError;
use crate::shadow::Shadow;

/// The probe pod's name inside a shadow.
pub const PROBE_POD: &str = "aegis-isolation-probe";

/// How to run the probe.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// An image whose entrypoint speaks the contract above (the AEGIS image: `aegis probe connect`).
    pub image: String,
    /// How long the probe pod may take, pull and scheduling included.
    pub deadline: Duration,
}

/// What the probe showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IsolationStatus {
    /// Every probed address was out of the shadow's reach.
    Enforced,
    /// The shadow reached production or the API server.
    NotEnforced,
    /// No probe ran (none configured, nothing to probe, or it did not finish): isolation is unknown,
    /// which is not "enforced".
    #[default]
    NotChecked,
}

impl std::fmt::Display for IsolationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IsolationStatus::Enforced => "enforced",
            IsolationStatus::NotEnforced => "not enforced",
            IsolationStatus::NotChecked => "not checked",
        })
    }
}

/// One address the probe tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// What the address is: `Service shop/api`, `the API server`.
    pub target: String,
    pub address: String,
    pub reached: bool,
    pub detail: String,
}

/// The isolation part of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Isolation {
    pub status: IsolationStatus,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeResult>,
}

impl Isolation {
    pub fn not_checked(why: impl Into<String>) -> Self {
        Isolation { status: IsolationStatus::NotChecked, detail: why.into(), probes: Vec::new() }
    }
}

/// Probe `shadow`'s isolation with a pod placed like `template`'s (the shadow workload's).
pub async fn probe_isolation(client: &Client, shadow: &Shadow, template: Option<&PodTemplateSpec>, probe: &ProbeSpec) -> Isolation {
    let targets = targets(client, shadow).await;
    if targets.is_empty() {
        return Isolation::not_checked("nothing to probe: no production Service and no API server address could be read");
    }
    match run_probe(client, shadow, template, probe, &targets).await {
        Ok(message) => judge(&targets, &message),
        Err(e) => Isolation::not_checked(format!("the probe did not run: {e}")),
    }
}

/// Production's Services (their ClusterIP and first port) and the API server's Service.
async fn targets(client: &Client, shadow: &Shadow) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut wanted: Vec<(String, String, String)> = shadow
        .production_services
        .iter()
        .filter_map(|s| s.split_once('/'))
        .map(|(ns, name)| (ns.to_owned(), name.to_owned(), format!("Service {ns}/{name}")))
        .collect();
    wanted.push(("default".into(), "kubernetes".into(), "the API server".into()));
    for (ns, name, label) in wanted {
        let Ok(Some(svc)) = Api::<Service>::namespaced(client.clone(), &ns).get_opt(&name).await else { continue };
        if let Some(address) = svc.spec.as_ref().and_then(crate::service_address) {
            out.push((label, address));
        }
    }
    out
}

async fn run_probe(
    client: &Client,
    shadow: &Shadow,
    template: Option<&PodTemplateSpec>,
    probe: &ProbeSpec,
    targets: &[(String, String)],
) -> Result<String, K8sError> {
    let spec = template.and_then(|t| t.spec.as_ref());
    let args: Vec<String> = ["probe", "connect"].into_iter().map(str::to_owned).chain(targets.iter().map(|(_, a)| a.clone())).collect();
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": PROBE_POD, "namespace": shadow.namespace,
                     "labels": {"app.kubernetes.io/managed-by": "aegis", "aegis.io/isolation-probe": "true"}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 1,
            // Where the workload's pods run: the same nodes enforce (or ignore) the same policy.
            "nodeSelector": spec.and_then(|s| s.node_selector.clone()),
            "tolerations": spec.and_then(|s| s.tolerations.clone()),
            "affinity": spec.and_then(|s| s.affinity.clone()),
            "runtimeClassName": spec.and_then(|s| s.runtime_class_name.clone()),
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": probe.image, "args": args,
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}
            }]
        }
    }))
    .map_err(|e| K8sError::Invalid(e.to_string()))?;
    let pods = Api::<Pod>::namespaced(client.clone(), &shadow.namespace);
    let err = |source| K8sError::Request { what: format!("Pod {}/{PROBE_POD}", shadow.namespace), source };
    pods.create(&PostParams::default(), &pod).await.map_err(err)?;
    let started = std::time::Instant::now();
    let outcome = loop {
        let p = pods.get(PROBE_POD).await.map_err(err)?;
        let status = p.status.unwrap_or_default();
        let terminated = status.container_statuses.iter().flatten().find_map(|c| c.state.as_ref()?.terminated.clone());
        if let Some(t) = terminated {
            break match t.message.filter(|m| !m.trim().is_empty()) {
                Some(m) => Ok(m),
                None => Err(K8sError::Invalid(format!(
                    "the probe exited {} ({}) without a termination message: does {} speak `probe connect`?",
                    t.exit_code,
                    t.reason.unwrap_or_default(),
                    probe.image
                ))),
            };
        }
        if started.elapsed() >= probe.deadline {
            let waiting = status.container_statuses.iter().flatten().find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
            break Err(K8sError::Invalid(format!(
                "the probe pod did not finish within {}s (phase {}{})",
                probe.deadline.as_secs(),
                status.phase.unwrap_or_default(),
                waiting.map(|w| format!(", {w}")).unwrap_or_default()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = pods.delete(PROBE_POD, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await;
    outcome
}

/// Read the probe's lines against what was asked. An address without a line was not shown to be
/// blocked: the isolation is then not checked, never "enforced".
fn judge(targets: &[(String, String)], message: &str) -> Isolation {
    let mut probes = Vec::new();
    for (target, address) in targets {
        let line = message.lines().find(|l| l.split_whitespace().nth(1).is_some_and(|a| a.trim_end_matches(':') == address));
        let Some(line) = line else {
            return Isolation::not_checked(format!("the probe said nothing about {target} ({address})"));
        };
        let reached = line.starts_with("reached ");
        let detail = line.split_once(": ").map(|(_, d)| d.to_owned()).unwrap_or_default();
        probes.push(ProbeResult { target: target.clone(), address: address.clone(), reached, detail });
    }
    let reached: Vec<String> = probes.iter().filter(|p| p.reached).map(|p| format!("{} ({})", p.target, p.address)).collect();
    if reached.is_empty() {
        let what: Vec<&str> = probes.iter().map(|p| p.target.as_str()).collect();
        Isolation { status: IsolationStatus::Enforced, detail: format!("a pod in the shadow could not reach {}", what.join(", ")), probes }
    } else {
        Isolation { status: IsolationStatus::NotEnforced, detail: format!("a pod in the shadow reached {}", reached.join(", ")), probes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Vec<(String, String)> {
        vec![("Service shop/api".into(), "10.0.0.7:80".into()), ("the API server".into(), "10.0.0.1:443".into())]
    }

    #[test]
    fn every_address_blocked_is_enforced() {
        let i = judge(&targets(), "blocked 10.0.0.7:80: dial tcp 10.0.0.7:80: i/o timeout\nblocked 10.0.0.1:443: i/o timeout\n");
        assert_eq!(i.status, IsolationStatus::Enforced, "{i:?}");
        assert!(i.probes.iter().all(|p| !p.reached));
    }

    #[test]
    fn one_address_reached_is_not_enforced_and_named() {
        let i = judge(&targets(), "reached 10.0.0.7:80\nblocked 10.0.0.1:443: i/o timeout\n");
        assert_eq!(i.status, IsolationStatus::NotEnforced);
        assert!(i.detail.contains("Service shop/api"), "{}", i.detail);
    }

    #[test]
    fn an_address_the_probe_did_not_report_leaves_isolation_unchecked() {
        let i = judge(&targets(), "blocked 10.0.0.7:80: i/o timeout\n");
        assert_eq!(i.status, IsolationStatus::NotChecked, "silence about the API server is not a block");
        let i = judge(&targets(), "garbage");
        assert_eq!(i.status, IsolationStatus::NotChecked);
    }
}
