//! Incidents: what broke, why, and the fix to try.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Severity;

/// The stable incident categories. The names are part of AEGIS's interface (CRD fields, JSON output,
/// alert routing): never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Category {
    CrashLoopBackOff,
    OOMKilled,
    ImagePullBackOff,
    CreateContainerConfigError,
    Unschedulable,
    LivenessProbeFailure,
    ReadinessProbeFailure,
    ServiceSelectorMismatch,
    RolloutStuck,
    FailedMount,
    Evicted,
    JobFailed,
    /// A Job's pods fail while it still has retries left: it is backing off.
    JobRetrying,
    /// Pods held by scheduling gates longer than a controller takes to lift them.
    SchedulingGated,
    /// The controller cannot create the workload's pods: a ResourceQuota, a missing ServiceAccount,
    /// an admission webhook or Pod Security refuses them (`FailedCreate`).
    FailedCreate,
    /// Pods wait for a PersistentVolumeClaim that stays Pending (an unknown StorageClass, no
    /// provisioner, no volume that fits).
    VolumeClaimPending,
    /// A PodDisruptionBudget that allows no disruption while every pod it guards is healthy: drains
    /// and node upgrades hang on it.
    DisruptionBlocked,
    /// An Ingress whose backend Service, or the port it names, does not exist.
    IngressBackendMissing,
    /// An Ingress asking for an IngressClass the cluster does not have: no controller serves it.
    IngressClassMissing,
    /// A HorizontalPodAutoscaler whose scale target does not exist.
    AutoscalerTargetMissing,
    /// A HorizontalPodAutoscaler that cannot read its metrics (no metrics API; containers without the
    /// requests a utilization target needs).
    AutoscalerMetricsUnavailable,
    /// A HorizontalPodAutoscaler pinned at maxReplicas while it would scale further.
    AutoscalerAtMaxReplicas,
    /// The workload's pods are not ready because their node is NotReady (or its kubelet stopped
    /// reporting): the node, not the workload, is broken.
    NodeNotReady,
    /// An admission webhook whose backend cannot answer (its Service missing, without the port the
    /// webhook calls, or without a ready endpoint): with `failurePolicy: Fail` the API server refuses
    /// every request the webhook matches, cluster-wide; with `Ignore` the check is silently skipped.
    WebhookUnavailable,
    /// A CronJob whose runs do not start: scheduled times missed (past `startingDeadlineSeconds`, or
    /// too many to count), a schedule or time zone the controller cannot use, or its Job refused.
    CronJobNotStarting,
    /// The workload's pods run on a node under memory, disk or PID pressure, before anything is
    /// evicted: the kubelet evicts from that node (pods above their requests first) as soon as it
    /// must, and the scheduler already keeps new pods away.
    NodePressure,
    /// A Service whose every pod is isolated for ingress by NetworkPolicies, none of which admits the
    /// port the Service sends to: the pods run and are ready, and every connection through the
    /// Service times out.
    ServiceBlockedByNetworkPolicy,
    /// An Ingress whose TLS section names a Secret that does not exist in its namespace: the
    /// controller serves its default (self-signed) certificate for those hosts, or none.
    IngressTlsSecretMissing,
    /// A Gateway API route (HTTPRoute, GRPCRoute, TLSRoute) that no parent Gateway accepted (refused
    /// by its listeners, or a parent no controller reports on: a Gateway that does not exist): its
    /// hosts route nothing.
    RouteNotAttached,
    /// A Gateway API route whose backend Service, or the port it names, does not exist, or that its
    /// Gateway cannot resolve (`ResolvedRefs: False`): the Gateway answers 500 (HTTP), UNAVAILABLE
    /// (gRPC) or rejects the connection (TLS) for those rules.
    RouteBackendMissing,
    /// A Gateway its controller refused (`Accepted: False`) or cannot program (`Programmed: False`:
    /// no address, no resources): every route on it reaches nothing.
    GatewayNotReady,
    /// A running Gateway with listeners that cannot serve: a certificate Secret missing or not
    /// permitted, a hostname or protocol conflict on a port, a port or protocol the implementation
    /// refuses. The routes on those listeners reach nothing or are served without their certificate.
    GatewayListenerInvalid,
    /// A DaemonSet's pods run on nodes that no longer admit them (a `NoSchedule` taint it does not
    /// tolerate, added after they started): they stay until they restart or are evicted, then none
    /// takes their place.
    DaemonSetMisscheduled,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::CrashLoopBackOff => "CrashLoopBackOff",
            Category::OOMKilled => "OOMKilled",
            Category::ImagePullBackOff => "ImagePullBackOff",
            Category::CreateContainerConfigError => "CreateContainerConfigError",
            Category::Unschedulable => "Unschedulable",
            Category::LivenessProbeFailure => "LivenessProbeFailure",
            Category::ReadinessProbeFailure => "ReadinessProbeFailure",
            Category::ServiceSelectorMismatch => "ServiceSelectorMismatch",
            Category::RolloutStuck => "RolloutStuck",
            Category::FailedMount => "FailedMount",
            Category::Evicted => "Evicted",
            Category::JobFailed => "JobFailed",
            Category::JobRetrying => "JobRetrying",
            Category::SchedulingGated => "SchedulingGated",
            Category::FailedCreate => "FailedCreate",
            Category::VolumeClaimPending => "VolumeClaimPending",
            Category::DisruptionBlocked => "DisruptionBlocked",
            Category::IngressBackendMissing => "IngressBackendMissing",
            Category::IngressClassMissing => "IngressClassMissing",
            Category::AutoscalerTargetMissing => "AutoscalerTargetMissing",
            Category::AutoscalerMetricsUnavailable => "AutoscalerMetricsUnavailable",
            Category::AutoscalerAtMaxReplicas => "AutoscalerAtMaxReplicas",
            Category::NodeNotReady => "NodeNotReady",
            Category::WebhookUnavailable => "WebhookUnavailable",
            Category::CronJobNotStarting => "CronJobNotStarting",
            Category::NodePressure => "NodePressure",
            Category::ServiceBlockedByNetworkPolicy => "ServiceBlockedByNetworkPolicy",
            Category::IngressTlsSecretMissing => "IngressTlsSecretMissing",
            Category::RouteNotAttached => "RouteNotAttached",
            Category::RouteBackendMissing => "RouteBackendMissing",
            Category::GatewayNotReady => "GatewayNotReady",
            Category::GatewayListenerInvalid => "GatewayListenerInvalid",
            Category::DaemonSetMisscheduled => "DaemonSetMisscheduled",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Kubernetes object, by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub struct ResourceRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} -n {}", self.kind, self.name, self.namespace)
    }
}

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    Liveness,
    Readiness,
}

/// What a fix does, as data: never free-form shell. Each renders to the exact patch it applies and to
/// its inverse (`aegis-analysis`), so one object drives the shadow, production and rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum FixAction {
    /// Return the workload's pod template to a revision whose pods were healthy.
    Rollback {
        to_revision: i64,
    },
    SetImage {
        container: String,
        image: String,
    },
    /// Set resource quantities (e.g. `{"memory": "256Mi"}`); absent keys are left alone.
    SetResources {
        container: String,
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        requests: std::collections::BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        limits: std::collections::BTreeMap<String, String>,
    },
    SetEnv {
        container: String,
        name: String,
        value: String,
    },
    /// Environment from a ConfigMap or Secret (`envFrom`).
    EnvFrom {
        container: String,
        config_map: Option<String>,
        secret: Option<String>,
    },
    AdjustProbe {
        container: String,
        probe: ProbeKind,
        path: String,
    },
    SetServiceSelector {
        selector: std::collections::BTreeMap<String, String>,
    },
    Scale {
        replicas: i32,
    },
    /// Restart the pods (a template annotation change, as `kubectl rollout restart`).
    Restart,
    /// Nothing safe is known: what a human should look at.
    Manual {
        guidance: String,
    },
}

impl FixAction {
    /// The stable name of the fix type (the `type` field in JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            FixAction::Rollback { .. } => "rollback",
            FixAction::SetImage { .. } => "set-image",
            FixAction::SetResources { .. } => "set-resources",
            FixAction::SetEnv { .. } => "set-env",
            FixAction::EnvFrom { .. } => "env-from",
            FixAction::AdjustProbe { .. } => "adjust-probe",
            FixAction::SetServiceSelector { .. } => "set-service-selector",
            FixAction::Scale { .. } => "scale",
            FixAction::Restart => "restart",
            FixAction::Manual { .. } => "manual",
        }
    }
}

/// How a patch body is to be sent to the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PatchType {
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/json-patch+json` (RFC 6902), used where a merge would keep fields that must go
    /// (a rollback replaces the whole pod template, as `kubectl rollout undo` does).
    Json,
}

/// A patch, ready to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Patch {
    pub patch_type: PatchType,
    pub target: ResourceRef,
    pub body: Value,
}

/// Who proposed a fix. A model's output is a suggestion, never a decision: its fix is vetted more
/// strictly, always needs a human's approval, and says where it came from in every output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum FixOrigin {
    /// AEGIS's own rules.
    #[default]
    Rules,
    /// A language model (`aegis analyze --llm-endpoint`), named.
    Model { model: String },
    /// A person (`aegis shadow verify --fix FILE`).
    Human,
}

impl FixOrigin {
    pub fn is_rules(&self) -> bool {
        *self == FixOrigin::Rules
    }
}

/// A proposed fix with the patch that applies it and the patch that undoes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Fix {
    #[serde(flatten)]
    pub action: FixAction,
    /// One sentence: what the fix does and why it is the smallest change that removes the cause.
    pub summary: String,
    /// `None` for `manual`.
    pub patch: Option<Patch>,
    pub inverse: Option<Patch>,
    /// Who proposed it (absent: AEGIS's rules).
    #[serde(default, skip_serializing_if = "FixOrigin::is_rules")]
    pub origin: FixOrigin,
}

/// How a fix is to be proven in the shadow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VerificationPlan {
    pub duration_seconds: u64,
    /// Health criteria a human can read, e.g. "no container restarts".
    pub health_criteria: Vec<String>,
    /// Scanners to run: trivy for an image change, zap for an exposed HTTP service, always falco.
    pub security_checks: Vec<crate::Source>,
    /// HTTP paths to smoke-check (from the probes).
    pub smoke_paths: Vec<String>,
    pub approval_required: bool,
    /// The workload whose shadow copy proves the fix. The incident's own resource when that is a
    /// workload; for a Service whose selector is wrong, the workload it should select (the fix is proven
    /// by the Service routing to a healthy copy of it). `None` when there is nothing to copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<ResourceRef>,
}

/// One broken workload, one category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Incident {
    pub resource: ResourceRef,
    pub category: Category,
    pub severity: Severity,
    /// A sentence a human can act on.
    pub root_cause: String,
    /// The observations it rests on: event messages, exit codes, the diff between revisions.
    pub evidence: Vec<String>,
    /// 0.0 ..= 1.0.
    pub confidence: f64,
    /// The pods that show the problem.
    pub pods: Vec<String>,
    pub fix: Fix,
    pub verification_plan: VerificationPlan,
}
