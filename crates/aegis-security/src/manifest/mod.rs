//! Built-in checks over Kubernetes workload manifests: the Pod Security Standards (baseline and
//! restricted profiles) and the hardening checks SREs expect from kubesec, kube-linter or Trivy's
//! KSV rules. Every check has a stable ID (`AEGIS-K8S-NNN`); docs/manifest-checks.md lists them and a
//! test keeps that page in step with [`CHECKS`].

mod checks;

pub use checks::{CHECKS, Check, Profile};

use aegis_model::{Finding, FindingKind, Fingerprint, Source, Target};
use serde_json::Value;

/// Why a manifest file could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is empty")]
    Empty,
    #[error("manifest is not valid YAML or JSON: {0}")]
    Invalid(String),
    #[error("document {index} is not a Kubernetes object (no apiVersion/kind)")]
    NotAnObject { index: usize },
}

/// The workload kinds whose pod templates are checked.
pub const WORKLOAD_KINDS: [&str; 7] = ["Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"];

/// Parse a YAML (multi-document) or JSON manifest into Kubernetes objects; `List` objects are expanded.
pub fn parse_objects(text: &str) -> Result<Vec<Value>, ManifestError> {
    if text.trim().is_empty() {
        return Err(ManifestError::Empty);
    }
    let docs: Vec<Value> = if text.trim_start().starts_with('{') {
        vec![serde_json::from_str(text).map_err(|e| ManifestError::Invalid(e.to_string()))?]
    } else {
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Invalid(e.to_string()))?
    };
    let mut out = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        if doc.get("kind").and_then(Value::as_str).is_none() || doc.get("apiVersion").is_none() {
            return Err(ManifestError::NotAnObject { index });
        }
        if doc.get("kind").and_then(Value::as_str) == Some("List") {
            out.extend(doc.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
        } else {
            out.push(doc);
        }
    }
    Ok(out)
}

/// The pod spec inside a workload object, by kind.
pub fn pod_spec(obj: &Value) -> Option<&Value> {
    match obj.get("kind")?.as_str()? {
        "Pod" => obj.get("spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => obj.pointer("/spec/template/spec"),
        "CronJob" => obj.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

/// Pod template annotations (AppArmor is still annotation-based on older clusters).
fn pod_annotations(obj: &Value) -> Option<&serde_json::Map<String, Value>> {
    let meta = match obj.get("kind")?.as_str()? {
        "Pod" => obj.get("metadata"),
        "CronJob" => obj.pointer("/spec/jobTemplate/spec/template/metadata"),
        _ => obj.pointer("/spec/template/metadata"),
    }?;
    meta.get("annotations")?.as_object()
}

/// Checked manifests: the findings, and the workload objects whose pod spec could not be read (a check
/// that cannot look at a field cannot clear it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checked {
    pub findings: Vec<Finding>,
    /// `Kind/name: what is wrong`, one per workload that was not checked.
    pub unreadable: Vec<String>,
}

/// Why a workload's pod spec cannot be checked, if it cannot: no spec, or containers that are not a
/// list of objects.
fn unreadable_pod_spec(obj: &Value) -> Option<String> {
    let spec = match pod_spec(obj) {
        None => return Some("no pod spec where its kind has one".into()),
        Some(s) if !s.is_object() => return Some("the pod spec is not an object".into()),
        Some(s) => s,
    };
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        match spec.get(key) {
            None | Some(Value::Null) if key != "containers" => {}
            None | Some(Value::Null) => return Some("no containers".into()),
            Some(Value::Array(items)) => {
                if let Some(i) = items.iter().position(|c| !c.is_object()) {
                    return Some(format!("{key}[{i}] is not an object"));
                }
            }
            Some(_) => return Some(format!("{key} is not a list")),
        }
    }
    None
}

/// Run every check over every workload in `objects`. Non-workload objects (Services, ConfigMaps) are
/// skipped; they carry no pod spec. A workload whose pod spec cannot be read is reported, not skipped.
pub fn check_objects(objects: &[Value]) -> Checked {
    let mut out = Checked::default();
    for obj in objects {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("<unnamed>").to_owned();
        if !WORKLOAD_KINDS.contains(&kind.as_str()) {
            continue;
        }
        if let Some(why) = unreadable_pod_spec(obj) {
            out.unreadable.push(format!("{kind}/{name}: {why}"));
            continue;
        }
        let Some(spec) = pod_spec(obj) else { continue };
        let namespace = obj.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_owned);
        let ctx = checks::Context { kind: &kind, spec, annotations: pod_annotations(obj) };
        for check in CHECKS {
            for hit in (check.run)(&ctx) {
                let place = hit.container.as_deref().map(|c| format!("container {c}")).unwrap_or_else(|| "pod spec".into());
                out.findings.push(Finding {
                    source: Source::Manifest,
                    kind: check.kind,
                    id: check.id.to_owned(),
                    title: check.title.to_owned(),
                    severity: check.severity,
                    target: Target::Resource { kind: kind.clone(), namespace: namespace.clone(), name: name.clone() },
                    location: Some(format!("{place}: {}", hit.detail)),
                    package: None,
                    references: vec![format!("remediation: {}", check.remediation)],
                    native_severity: None,
                    aliases: vec![check.name.to_owned()],
                    fingerprint: Fingerprint::of(&["manifest", check.id, &kind, &name, hit.container.as_deref().unwrap_or("")]),
                });
            }
        }
    }
    out
}

/// Convenience: parse and check one manifest text.
pub fn check_text(text: &str) -> Result<Checked, ManifestError> {
    Ok(check_objects(&parse_objects(text)?))
}

/// Whether these findings include a kind worth mentioning as a PSS violation.
pub fn is_pss(kind: FindingKind) -> bool {
    kind == FindingKind::PolicyViolation
}
