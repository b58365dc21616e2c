//! Incidents about objects that are not workloads but break them or the paths to them: a
//! PodDisruptionBudget that blocks every eviction, an Ingress whose backend or class does not exist,
//! a HorizontalPodAutoscaler that cannot scale. What k8sgpt's Pdb, Ingress and Hpa analyzers check,
//! each with its evidence. No typed fix yet: the guidance names the change a human makes.

use aegis_model::{Category, Fix, FixAction, FixOrigin, Incident, ResourceRef, Severity};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::networking::v1::{Ingress, IngressServiceBackend};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::analyze::plan;
use crate::diff::int_or_string;
use crate::signals::Index;

/// What is wrong with an object that is not a workload (or a Service with no backend to point it at),
/// for which no safe automatic change is known: the guidance says what a human changes.
pub(crate) struct ObjectFinding {
    pub(crate) resource: ResourceRef,
    pub(crate) category: Category,
    pub(crate) severity: Severity,
    pub(crate) root_cause: String,
    pub(crate) evidence: Vec<String>,
    pub(crate) guidance: String,
    pub(crate) confidence: f64,
}

pub(crate) fn object_incident(index: &Index<'_>, f: ObjectFinding) -> Incident {
    let action = FixAction::Manual { guidance: f.guidance };
    let verification_plan = plan(index, None, &None, &action, Some(f.confidence), Some(f.category));
    Incident {
        resource: f.resource,
        category: f.category,
        severity: f.severity,
        root_cause: f.root_cause,
        evidence: f.evidence,
        confidence: f.confidence,
        pods: Vec::new(),
        fix: Fix {
            summary: "No safe automatic fix is known; see the guidance.".into(),
            action,
            patch: None,
            inverse: None,
            origin: FixOrigin::Rules,
        },
        verification_plan,
    }
}

/// Every non-workload incident in the snapshot.
pub(crate) fn analyze_objects(index: &Index<'_>) -> Vec<Incident> {
    let s = index.snapshot;
    let mut out: Vec<Incident> = s.pod_disruption_budgets.iter().filter_map(|p| disruption_blocked(index, p)).collect();
    out.extend(s.ingresses.iter().flat_map(|i| ingress_problems(index, i)));
    out.extend(s.horizontal_pod_autoscalers.iter().filter_map(|h| autoscaler_problem(index, h)));
    out
}

/// A PodDisruptionBudget that allows no disruption while every pod it guards is healthy: nothing is
/// broken now, but every drain and node upgrade will hang on it. (A budget at zero because pods are
/// unhealthy is doing its job.)
fn disruption_blocked(index: &Index<'_>, pdb: &PodDisruptionBudget) -> Option<Incident> {
    let st = pdb.status.as_ref()?;
    if st.disruptions_allowed > 0 || st.expected_pods == 0 || st.current_healthy < st.expected_pods {
        return None;
    }
    let ns = pdb.metadata.namespace.clone().unwrap_or_default();
    let name = pdb.metadata.name.clone().unwrap_or_default();
    let spec = pdb.spec.as_ref();
    let budget = match (spec.and_then(|s| s.min_available.as_ref()), spec.and_then(|s| s.max_unavailable.as_ref())) {
        (Some(min), _) => format!("minAvailable {}", int_or_string(min)),
        (None, Some(max)) => format!("maxUnavailable {}", int_or_string(max)),
        (None, None) => "no budget".into(),
    };
    Some(object_incident(
        index,
        ObjectFinding {
            resource: ResourceRef { kind: "PodDisruptionBudget".into(), namespace: ns, name: name.clone() },
            category: Category::DisruptionBlocked,
            severity: Severity::Medium,
            root_cause: format!(
                "PodDisruptionBudget {name} ({budget}) allows no disruption although all {} of its pods are healthy: every eviction, drain and node upgrade will wait on it.",
                st.expected_pods
            ),
            evidence: vec![format!(
                "PodDisruptionBudget {name}: {budget}, {} expected pod(s), {} healthy, {} desired healthy, disruptionsAllowed 0",
                st.expected_pods, st.current_healthy, st.desired_healthy
            )],
            guidance: format!(
                "Allow one pod at a time to go: set `maxUnavailable: 1` on PodDisruptionBudget {name} (or minAvailable below {}), or run more replicas.",
                st.expected_pods
            ),
            confidence: 0.8,
        },
    ))
}

/// An Ingress that routes to nothing: a backend Service that does not exist or has no such port, or
/// an IngressClass the cluster does not have (no controller serves it). One incident per Ingress,
/// every broken backend in its evidence.
fn ingress_problems(index: &Index<'_>, ing: &Ingress) -> Vec<Incident> {
    let ns = ing.metadata.namespace.clone().unwrap_or_default();
    let name = ing.metadata.name.clone().unwrap_or_default();
    let resource = ResourceRef { kind: "Ingress".into(), namespace: ns.clone(), name: name.clone() };
    let spec = ing.spec.as_ref();
    let mut out = Vec::new();
    let class = spec
        .and_then(|s| s.ingress_class_name.clone())
        .or_else(|| ing.metadata.annotations.as_ref().and_then(|a| a.get("kubernetes.io/ingress.class")).cloned());
    // IngressClasses are cluster-scoped: a snapshot that holds none (RBAC, or a file without them)
    // says nothing about whether the class exists.
    if let Some(class) = class
        && !index.snapshot.ingress_classes.is_empty()
        && !index.snapshot.ingress_classes.iter().any(|c| c.metadata.name.as_deref() == Some(&class))
    {
        let known: Vec<String> = index.snapshot.ingress_classes.iter().filter_map(|c| c.metadata.name.clone()).collect();
        let known = known.join(", ");
        let root_cause = format!(
            "Ingress {name} asks for IngressClass {class}, which does not exist: no controller serves it, so nothing routes its traffic."
        );
        out.push(object_incident(
            index,
            ObjectFinding {
                resource: resource.clone(),
                category: Category::IngressClassMissing,
                severity: Severity::High,
                root_cause,
                evidence: vec![format!("Ingress {name}: ingressClassName {class}; IngressClasses in the cluster: {known}")],
                guidance: format!("Set spec.ingressClassName of Ingress {name} to a class the cluster has ({known})."),
                confidence: 0.8,
            },
        ));
    }
    let backends = spec.and_then(|s| s.default_backend.as_ref()).and_then(|b| b.service.as_ref()).into_iter().chain(
        spec.iter()
            .flat_map(|s| s.rules.iter().flatten())
            .flat_map(|r| r.http.iter().flat_map(|h| h.paths.iter()))
            .filter_map(|p| p.backend.service.as_ref()),
    );
    let broken: Vec<String> =
        backends.filter_map(|b| backend_problem(index, &ns, b)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    if !broken.is_empty() {
        out.push(object_incident(
            index,
            ObjectFinding {
                resource,
                category: Category::IngressBackendMissing,
                severity: Severity::High,
                root_cause: format!("Ingress {name} routes to a backend that does not exist: {}.", broken.join("; ")),
                evidence: broken.iter().map(|b| format!("Ingress {name}: {b}")).collect(),
                guidance: format!("Point Ingress {name}'s backends at a Service and port that exist: `kubectl get svc -n {ns}`."),
                confidence: 0.8,
            },
        ));
    }
    out
}

/// What is wrong with one backend: its Service missing, or no port of it matching.
fn backend_problem(index: &Index<'_>, ns: &str, b: &IngressServiceBackend) -> Option<String> {
    let svc = index.services_in(ns).iter().find(|s| s.metadata.name.as_deref() == Some(b.name.as_str()));
    let Some(svc) = svc else {
        return Some(format!("Service {} not found", b.name));
    };
    let port = b.port.as_ref()?;
    let ports = svc.spec.iter().flat_map(|s| s.ports.iter().flatten());
    let matches = |p: &&k8s_openapi::api::core::v1::ServicePort| match (&port.number, &port.name) {
        (Some(n), _) => p.port == *n,
        (None, Some(name)) => p.name.as_deref() == Some(name.as_str()),
        (None, None) => true,
    };
    if ports.clone().any(|p| matches(&p)) {
        return None;
    }
    let wanted = port.number.map(|n| n.to_string()).or_else(|| port.name.clone()).unwrap_or_default();
    let has: Vec<String> = ports.map(|p| p.name.as_ref().map_or(p.port.to_string(), |n| format!("{} ({n})", p.port))).collect();
    Some(format!("Service {} has no port {wanted} (it has {})", b.name, has.join(", ")))
}

/// A HorizontalPodAutoscaler that cannot do its job: its target does not exist, it cannot read its
/// metrics (no metrics API, or containers without the requests a utilization target needs), or it is
/// pinned at maxReplicas while the metric stays over target.
fn autoscaler_problem(index: &Index<'_>, hpa: &HorizontalPodAutoscaler) -> Option<Incident> {
    let ns = hpa.metadata.namespace.clone().unwrap_or_default();
    let name = hpa.metadata.name.clone().unwrap_or_default();
    let spec = hpa.spec.as_ref()?;
    let target = &spec.scale_target_ref;
    let resource = ResourceRef { kind: "HorizontalPodAutoscaler".into(), namespace: ns.clone(), name: name.clone() };
    let s = index.snapshot;
    let exists = |n: Option<&String>| n.map(String::as_str) == Some(target.name.as_str());
    let in_ns = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| m.namespace.as_deref() == Some(ns.as_str());
    let found = match target.kind.as_str() {
        "Deployment" => Some(s.deployments.iter().any(|d| in_ns(&d.metadata) && exists(d.metadata.name.as_ref()))),
        "StatefulSet" => Some(s.stateful_sets.iter().any(|d| in_ns(&d.metadata) && exists(d.metadata.name.as_ref()))),
        "ReplicaSet" => Some(s.replica_sets.iter().any(|d| in_ns(&d.metadata) && exists(d.metadata.name.as_ref()))),
        _ => None,
    };
    let conditions: Vec<_> = hpa.status.iter().flat_map(|st| st.conditions.iter().flatten()).collect();
    let condition = |t: &str, status: &str| conditions.iter().find(|c| c.type_ == t && c.status == status);
    let said = |c: &&&k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerCondition| {
        format!("{}={} {}: {}", c.type_, c.status, c.reason.as_deref().unwrap_or(""), c.message.as_deref().unwrap_or(""))
    };
    let target_text = format!("{}/{}", target.kind, target.name);
    if found == Some(false) {
        return Some(object_incident(
            index,
            ObjectFinding {
                resource,
                category: Category::AutoscalerTargetMissing,
                severity: Severity::High,
                root_cause: format!("HorizontalPodAutoscaler {name} scales {target_text}, which does not exist: nothing is autoscaled."),
                evidence: vec![format!("HorizontalPodAutoscaler {name}: scaleTargetRef {target_text} not found in namespace {ns}")],
                guidance: format!("Point scaleTargetRef of HorizontalPodAutoscaler {name} at the workload it should scale, or delete it."),
                confidence: 0.85,
            },
        ));
    }
    if let Some(c) = condition("ScalingActive", "False") {
        let mut evidence = vec![format!("HorizontalPodAutoscaler {name}: {}", said(&c))];
        evidence
            .extend(index.events("HorizontalPodAutoscaler", &ns, &name).into_iter().rev().take(2).map(|(r, m)| format!("event {r}: {m}")));
        let missing_request = c.message.as_deref().is_some_and(|m| m.contains("missing request"));
        let guidance = if missing_request {
            format!(
                "Give every container of {target_text} a request for the resource the HorizontalPodAutoscaler measures (utilization is a share of the request)."
            )
        } else {
            "Check that the metrics API serves the autoscaler (`kubectl get apiservices | grep metrics`; metrics-server or an adapter)."
                .into()
        };
        return Some(object_incident(
            index,
            ObjectFinding {
                resource,
                category: Category::AutoscalerMetricsUnavailable,
                severity: Severity::Medium,
                root_cause: format!(
                    "HorizontalPodAutoscaler {name} cannot compute a replica count for {target_text}: it cannot read its metrics."
                ),
                evidence,
                guidance,
                confidence: 0.8,
            },
        ));
    }
    let st = hpa.status.as_ref()?;
    if st.current_replicas.unwrap_or(0) >= spec.max_replicas
        && let Some(c) = condition("ScalingLimited", "True").filter(|c| c.reason.as_deref() == Some("TooManyReplicas"))
    {
        return Some(object_incident(
            index,
            ObjectFinding {
                resource,
                category: Category::AutoscalerAtMaxReplicas,
                severity: Severity::Medium,
                root_cause: format!(
                    "HorizontalPodAutoscaler {name} holds {target_text} at its maxReplicas ({}) and would scale further: the load is over what it may give.",
                    spec.max_replicas
                ),
                evidence: vec![format!(
                    "HorizontalPodAutoscaler {name}: {} of max {} replicas; {}",
                    st.current_replicas.unwrap_or(0),
                    spec.max_replicas,
                    said(&c)
                )],
                guidance: format!(
                    "Raise maxReplicas of HorizontalPodAutoscaler {name} if the nodes have room, or make each replica cheaper."
                ),
                confidence: 0.6,
            },
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{Snapshot, analyze};
    use aegis_model::Category;

    fn found(items: serde_json::Value) -> Vec<(Category, String)> {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        analyze(&Snapshot::from_text(&list.to_string()).unwrap()).into_iter().map(|i| (i.category, i.resource.name)).collect()
    }

    fn hpa(current: i32, limited: &str) -> serde_json::Value {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}, "minReplicas": 2, "maxReplicas": 5},
            "status": {"currentReplicas": current, "desiredReplicas": current, "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"},
                {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"},
                {"type": "ScalingLimited", "status": limited, "reason": if limited == "True" { "TooManyReplicas" } else { "DesiredWithinRange" },
                 "message": "the desired replica count is more than the maximum replica count"}]}})
    }

    fn deployment() -> serde_json::Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "api"}}, "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "api", "image": "x"}]}}}})
    }

    /// Metrics are not served on this cluster, so an autoscaler at its limit is shown with the objects
    /// the HPA controller writes.
    #[test]
    fn an_autoscaler_pinned_at_max_replicas_that_would_scale_further_is_reported_and_one_within_range_is_not() {
        assert_eq!(found(json!([deployment(), hpa(5, "True")])), [(Category::AutoscalerAtMaxReplicas, "api".to_owned())]);
        assert!(found(json!([deployment(), hpa(3, "False")])).is_empty());
    }

    /// A snapshot without IngressClasses (an operator without the RBAC to read them, a file captured
    /// without them) cannot say a class is missing.
    #[test]
    fn an_ingress_class_is_judged_missing_only_against_the_classes_the_snapshot_holds() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "shop"}, "spec": {"ports": [{"port": 80}]}});
        let ing = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"ingressClassName": "nginx", "defaultBackend": {"service": {"name": "api", "port": {"number": 80}}}}});
        let class = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "traefik"}, "spec": {"controller": "x"}});
        assert!(found(json!([svc.clone(), ing.clone()])).is_empty());
        assert_eq!(found(json!([svc, ing, class])), [(Category::IngressClassMissing, "api".to_owned())]);
    }
}
