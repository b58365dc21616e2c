//! Hygiene findings that are not incidents: nothing is broken, nothing is fixed, the operator never
//! acts on them (`aegis analyze --lint`). What k8sgpt reports for ConfigMaps, with the evidence.

use std::collections::BTreeSet;

use aegis_model::ResourceRef;
use serde::Serialize;

use crate::snapshot::Snapshot;
use crate::workload::template_references;

/// One hygiene finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintFinding {
    pub resource: ResourceRef,
    /// A stable rule name: `configmap-unused`, `configmap-empty`.
    pub rule: &'static str,
    pub message: String,
}

/// ConfigMaps the cluster manages itself (every namespace has one): never reported.
const SYSTEM_CONFIG_MAPS: [&str; 1] = ["kube-root-ca.crt"];

/// Hygiene findings of a snapshot, ordered by resource.
pub fn lint(snapshot: &Snapshot) -> Vec<LintFinding> {
    // What pods, and the templates of workloads without pods yet, reference, by namespace.
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();
    let templates = snapshot
        .deployments
        .iter()
        .map(|d| (d.metadata.namespace.clone(), d.spec.as_ref().map(|s| s.template.clone())))
        .chain(snapshot.stateful_sets.iter().map(|s| (s.metadata.namespace.clone(), s.spec.as_ref().map(|s| s.template.clone()))))
        .chain(snapshot.daemon_sets.iter().map(|s| (s.metadata.namespace.clone(), s.spec.as_ref().map(|s| s.template.clone()))))
        .chain(snapshot.jobs.iter().map(|j| (j.metadata.namespace.clone(), j.spec.as_ref().map(|s| s.template.clone()))))
        .chain(snapshot.replica_sets.iter().map(|r| (r.metadata.namespace.clone(), r.spec.as_ref().and_then(|s| s.template.clone()))))
        .chain(snapshot.pods.iter().map(|p| {
            let t = k8s_openapi::api::core::v1::PodTemplateSpec { metadata: None, spec: p.spec.clone() };
            (p.metadata.namespace.clone(), Some(t))
        }));
    for (ns, t) in templates {
        if let Some(t) = t {
            let (cms, _) = template_references(&t);
            used.extend(cms.into_iter().map(|c| (ns.clone().unwrap_or_default(), c)));
        }
    }
    let mut out = Vec::new();
    for cm in &snapshot.config_maps {
        if SYSTEM_CONFIG_MAPS.contains(&cm.name.as_str()) {
            continue;
        }
        let resource = ResourceRef { kind: "ConfigMap".into(), namespace: cm.namespace.clone(), name: cm.name.clone() };
        if !used.contains(&(cm.namespace.clone(), cm.name.clone())) {
            out.push(LintFinding {
                resource: resource.clone(),
                rule: "configmap-unused",
                message: format!("ConfigMap {} is referenced by no pod or pod template in {}", cm.name, cm.namespace),
            });
        }
        if cm.keys.is_empty() {
            out.push(LintFinding { resource, rule: "configmap-empty", message: format!("ConfigMap {} has no keys", cm.name) });
        }
    }
    out.sort_by(|a, b| a.resource.cmp(&b.resource).then(a.rule.cmp(b.rule)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_and_empty_config_maps_are_reported_and_used_ones_are_not() {
        let s = Snapshot::from_text(
            &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "shop"}, "data": {"a": "1"}},
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stale", "namespace": "shop"}, "data": {"a": "1"}},
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "empty", "namespace": "shop"}},
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt", "namespace": "shop"}, "data": {"ca.crt": "x"}},
                {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"},
                 "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {"spec": {"containers": [{"name": "api",
                    "envFrom": [{"configMapRef": {"name": "app"}}]}], "volumes": [{"name": "e", "configMap": {"name": "empty"}}]}}}}
            ]})
            .to_string(),
        )
        .unwrap();
        let found: Vec<(String, &str)> = lint(&s).into_iter().map(|f| (f.resource.name, f.rule)).collect();
        assert_eq!(found, [("empty".to_owned(), "configmap-empty"), ("stale".to_owned(), "configmap-unused")]);
    }
}
