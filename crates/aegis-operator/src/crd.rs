//! The `Incident` custom resource (`incidents.aegis.io`): one broken workload and category, from
//! detection to its end.
//!
//! The split follows Kubernetes' convention: `spec` is what was detected and what humans decide (the
//! approval, written by `aegis incident approve|reject`); `status` is what the operator observed and
//! did, written only through the status subresource. Large evidence (the full verification result and
//! security report) lives in a ConfigMap named in the status and bound by digest, so an Incident stays
//! a few kilobytes, far below etcd's object limit.

use aegis_model::{Category, Digest, Fix, ResourceRef, Severity, Verdict, VerificationPlan};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What was detected, and the human decision.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "aegis.io",
    version = "v1alpha1",
    kind = "Incident",
    namespaced,
    status = "IncidentStatus",
    shortname = "inc",
    category = "aegis",
    printcolumn = r#"{"name":"Severity","type":"string","jsonPath":".spec.severity"}"#,
    printcolumn = r#"{"name":"Kind","type":"string","jsonPath":".spec.resource.kind","priority":1}"#,
    printcolumn = r#"{"name":"Resource","type":"string","jsonPath":".spec.resource.name"}"#,
    printcolumn = r#"{"name":"Category","type":"string","jsonPath":".spec.category"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Verdict","type":"string","jsonPath":".status.verification.verdict"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct IncidentSpec {
    /// The broken resource; always in the Incident's namespace.
    pub resource: ResourceRef,
    pub category: Category,
    pub severity: Severity,
    /// The resource's `metadata.generation` when the incident was detected. A different generation
    /// later means the workload changed under AEGIS: the incident is superseded, never acted on.
    pub detected_generation: i64,
    /// A human's decision on the verified fix. It names the evidence digest it approves: the operator
    /// applies only when that digest is the current verification's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// A decision, as recorded by `aegis incident approve|reject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub decision: Decision,
    /// Who decided: the username the API server authenticated for the write (bound by the chart's
    /// admission policy).
    pub by: String,
    /// The verification evidence digest the decision is about.
    pub evidence_digest: Digest,
    /// RFC 3339.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub enum Decision {
    Approve,
    Reject,
}

/// Where an incident is. The last six are ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    #[default]
    Detected,
    Analyzing,
    Verifying,
    AwaitingApproval,
    Applying,
    Monitoring,
    Resolved,
    RolledBack,
    Failed,
    Rejected,
    Expired,
    Superseded,
}

impl Phase {
    pub const ALL: [Phase; 12] = [
        Phase::Detected,
        Phase::Analyzing,
        Phase::Verifying,
        Phase::AwaitingApproval,
        Phase::Applying,
        Phase::Monitoring,
        Phase::Resolved,
        Phase::RolledBack,
        Phase::Failed,
        Phase::Rejected,
        Phase::Expired,
        Phase::Superseded,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Resolved | Phase::RolledBack | Phase::Failed | Phase::Rejected | Phase::Expired | Phase::Superseded)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Detected => "Detected",
            Phase::Analyzing => "Analyzing",
            Phase::Verifying => "Verifying",
            Phase::AwaitingApproval => "AwaitingApproval",
            Phase::Applying => "Applying",
            Phase::Monitoring => "Monitoring",
            Phase::Resolved => "Resolved",
            Phase::RolledBack => "RolledBack",
            Phase::Failed => "Failed",
            Phase::Rejected => "Rejected",
            Phase::Expired => "Expired",
            Phase::Superseded => "Superseded",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the operator observed and did. Written only through the status subresource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentStatus {
    #[serde(default)]
    pub phase: Phase,
    /// The last transition's reason, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationSummary>,
    /// The approval the operator acted on (a human's, or the auto-approval policy's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<Approval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Every phase change, oldest first (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
}

/// The analysis: root cause and the typed fix with its plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    pub root_cause: String,
    /// The observations it rests on (the first few).
    pub evidence: Vec<String>,
    pub confidence: f64,
    /// The typed fix with its patch and inverse. Free-form in the CRD schema (patch bodies are
    /// arbitrary JSON); typed in Rust.
    #[schemars(schema_with = "preserve_unknown")]
    pub fix: Fix,
    #[schemars(schema_with = "preserve_unknown")]
    pub plan: VerificationPlan,
}

/// The shadow verification, summarised; the whole result is in the evidence ConfigMap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSummary {
    pub verdict: Verdict,
    pub healthy: bool,
    /// Why it did not pass (bounded).
    #[serde(default)]
    pub reasons: Vec<String>,
    /// What an approval binds to: the fix, the health observations and the security evidence.
    pub evidence_digest: Digest,
    /// The ConfigMap (in this namespace) holding the full `VerificationResult`.
    pub evidence_config_map: String,
    /// New findings by severity, from the security report.
    #[serde(default)]
    pub new_findings: std::collections::BTreeMap<String, u64>,
    pub shadow_namespace: String,
    pub total_ms: u64,
    /// The workload generation the fix was verified against: production must still be at it to apply.
    pub workload_generation: i64,
    pub finished_at: String,
}

/// What was applied to production, recorded *before* the patch is sent (with `at` empty) and
/// completed after, so a crash in between is recognised on resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedRecord {
    /// The patch that undoes the fix, kept for the automatic rollback.
    #[schemars(schema_with = "preserve_unknown")]
    pub inverse: Option<aegis_model::Patch>,
    /// The patched object's `metadata.generation` after the patch (`None` until applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackRecord {
    pub reason: String,
    pub at: String,
}

/// A condition, as Kubernetes' API conventions define it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub phase: Phase,
    pub at: String,
    pub reason: String,
}

fn preserve_unknown(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// The Incident's name: deterministic in (resource, category, generation), so detection on any replica
/// or after any restart finds the same object instead of creating a duplicate. A workload that breaks
/// again after a fix (a new generation) gets a new Incident.
pub fn incident_name(resource: &ResourceRef, category: Category, generation: i64) -> String {
    let base = format!("{}-{}-{}-g{generation}", resource.kind, resource.name, category.as_str()).to_ascii_lowercase();
    if base.len() <= 253 {
        return base;
    }
    let digest = Digest::of_bytes(base.as_bytes());
    let hex = digest.as_str().trim_start_matches("sha256:");
    format!("{}-{}", &base[..200].trim_end_matches(['-', '.']), &hex[..16])
}

/// What identifies a change of an object, as the Incident's `detectedGeneration` records it: a
/// workload's `metadata.generation`; for a Service, which has none (it stays 0 for ever, so a later
/// selector problem would never open a new incident, nor a human's edit supersede one), a number
/// derived from its selector — the part AEGIS judges and fixes.
pub fn change_marker(kind: &str, generation: Option<i64>, selector: Option<&serde_json::Value>) -> i64 {
    if kind != "Service" {
        return generation.unwrap_or(0);
    }
    let digest = Digest::of_json(&selector.cloned().unwrap_or(serde_json::Value::Null));
    let hex = digest.as_str().trim_start_matches("sha256:");
    // 15 hex digits: a positive i64, short enough to keep Incident names readable.
    i64::from_str_radix(&hex[..15], 16).unwrap_or(0)
}

/// The CRD, as `aegis crd` prints it.
pub fn crd() -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use kube::CustomResourceExt;
    Incident::crd()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(kind: &str, name: &str) -> ResourceRef {
        ResourceRef { kind: kind.into(), namespace: "shop".into(), name: name.into() }
    }

    #[test]
    fn a_service_changes_when_its_selector_does() {
        let a = serde_json::json!({"app": "api"});
        let b = serde_json::json!({"app": "apii"});
        assert_eq!(change_marker("Service", None, Some(&a)), change_marker("Service", None, Some(&a)));
        assert_ne!(change_marker("Service", None, Some(&a)), change_marker("Service", None, Some(&b)));
        assert!(change_marker("Service", None, Some(&a)) > 0);
        assert_eq!(change_marker("Deployment", Some(4), None), 4);
        let svc = r("Service", "api");
        assert_ne!(
            incident_name(&svc, Category::ServiceSelectorMismatch, change_marker("Service", None, Some(&a))),
            incident_name(&svc, Category::ServiceSelectorMismatch, change_marker("Service", None, Some(&b))),
            "a later selector problem on the same Service is a new incident"
        );
    }

    #[test]
    fn incident_names_are_deterministic_and_valid_object_names() {
        let a = incident_name(&r("Deployment", "api"), Category::CrashLoopBackOff, 2);
        assert_eq!(a, "deployment-api-crashloopbackoff-g2");
        assert_eq!(a, incident_name(&r("Deployment", "api"), Category::CrashLoopBackOff, 2));
        assert_ne!(a, incident_name(&r("Deployment", "api"), Category::CrashLoopBackOff, 3));
        let long = incident_name(&r("Deployment", &"x".repeat(300)), Category::OOMKilled, 1);
        assert!(long.len() <= 253 && long.ends_with(|c: char| c.is_ascii_hexdigit()), "{long}");
    }

    #[test]
    fn the_crd_has_a_status_subresource_and_the_printer_columns_sres_expect() {
        let crd = crd();
        let v = &crd.spec.versions[0];
        assert!(v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
        let columns: Vec<_> = v.additional_printer_columns.iter().flatten().map(|c| c.name.as_str()).collect();
        assert_eq!(columns, ["Severity", "Kind", "Resource", "Category", "Phase", "Verdict", "Age"]);
        assert_eq!(crd.metadata.name.as_deref(), Some("incidents.aegis.io"));
    }

    #[test]
    fn only_the_six_ends_are_terminal() {
        let ends: Vec<_> = Phase::ALL.into_iter().filter(|p| p.is_terminal()).collect();
        assert_eq!(ends, [Phase::Resolved, Phase::RolledBack, Phase::Failed, Phase::Rejected, Phase::Expired, Phase::Superseded]);
    }
}
