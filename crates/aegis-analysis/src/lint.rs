//! Hygiene findings that are not incidents: nothing is broken, nothing is fixed, the operator never
//! acts on them (`aegis analyze --lint`). What k8sgpt reports for ConfigMaps, Secrets, NetworkPolicies
//! and CronJobs, and DaemonSets that run nowhere, with the evidence.

use std::collections::{BTreeMap, BTreeSet};

use aegis_model::ResourceRef;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Serialize;

use crate::snapshot::Snapshot;
use crate::workload::template_references;

/// One hygiene finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintFinding {
    pub resource: ResourceRef,
    /// A stable rule name: `configmap-unused`, `configmap-empty`, `secret-unused`,
    /// `networkpolicy-selects-nothing`, `cronjob-suspended`, `daemonset-schedules-nowhere`.
    pub rule: &'static str,
    pub message: String,
}

/// ConfigMaps the cluster manages itself (every namespace has one): never reported.
const SYSTEM_CONFIG_MAPS: [&str; 1] = ["kube-root-ca.crt"];

/// Hygiene findings of a snapshot, ordered by resource.
pub fn lint(snapshot: &Snapshot) -> Vec<LintFinding> {
    // What pods, and the templates of workloads without pods yet, reference, by namespace.
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();
    let mut used_secrets: BTreeSet<(String, String)> = BTreeSet::new();
    for (ns, t) in templates(snapshot) {
        if let Some(t) = t {
            let ns = ns.unwrap_or_default();
            let (cms, secrets) = template_references(&t);
            used.extend(cms.into_iter().map(|c| (ns.clone(), c)));
            used_secrets.extend(secrets.into_iter().map(|s| (ns.clone(), s)));
        }
    }
    let mut out = unused_secrets(snapshot, used_secrets);
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
    // A policy meant to protect pods that none of its selector matches protects nothing (a typo in a
    // label, pods renamed): the gap it leaves is silent. An empty podSelector selects every pod.
    for np in &snapshot.network_policies {
        let ns = np.metadata.namespace.clone().unwrap_or_default();
        let name = np.metadata.name.clone().unwrap_or_default();
        // An absent podSelector, like an empty one, selects every pod.
        let Some(selector) = np.spec.as_ref().and_then(|s| s.pod_selector.as_ref()) else { continue };
        let empty =
            selector.match_labels.as_ref().is_none_or(|m| m.is_empty()) && selector.match_expressions.as_ref().is_none_or(|e| e.is_empty());
        let selects_one = snapshot
            .pods
            .iter()
            .any(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()) && selects(selector, p.metadata.labels.as_ref()));
        if !empty && !selects_one {
            out.push(LintFinding {
                resource: ResourceRef { kind: "NetworkPolicy".into(), namespace: ns.clone(), name: name.clone() },
                rule: "networkpolicy-selects-nothing",
                message: format!("NetworkPolicy {name} selects no pod in {ns}: the pods it was written for are not protected by it"),
            });
        }
    }
    out.extend(snapshot.daemon_sets.iter().filter_map(|ds| schedules_nowhere(snapshot, ds)));
    // Suspended on purpose, often — and forgotten as often: no run starts while it is.
    for cj in snapshot.cron_jobs.iter().filter(|c| c.spec.as_ref().and_then(|s| s.suspend) == Some(true)) {
        let ns = cj.metadata.namespace.clone().unwrap_or_default();
        let name = cj.metadata.name.clone().unwrap_or_default();
        let last = cj
            .status
            .as_ref()
            .and_then(|s| s.last_schedule_time.as_ref())
            .map(|t| format!("; last run scheduled {}", t.0))
            .unwrap_or_default();
        out.push(LintFinding {
            resource: ResourceRef { kind: "CronJob".into(), namespace: ns, name: name.clone() },
            rule: "cronjob-suspended",
            message: format!("CronJob {name} is suspended: none of its runs start{last}"),
        });
    }
    out.sort_by(|a, b| a.resource.cmp(&b.resource).then(a.rule.cmp(b.rule)));
    out
}

/// A DaemonSet its controller places on no node (`desiredNumberScheduled` 0, for its current
/// generation): a nodeSelector no node carries (a typo, labels not applied yet), taints it does not
/// tolerate, an affinity nothing meets. Often meant — a daemon for GPU nodes a cluster has none of
/// today — so hygiene, not an incident; the message says which, when the snapshot holds the nodes.
fn schedules_nowhere(snapshot: &Snapshot, ds: &k8s_openapi::api::apps::v1::DaemonSet) -> Option<LintFinding> {
    let status = ds.status.as_ref()?;
    if status.desired_number_scheduled != 0 || status.observed_generation.is_none() || status.observed_generation != ds.metadata.generation
    {
        return None;
    }
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let name = ds.metadata.name.clone().unwrap_or_default();
    let template = ds.spec.as_ref().map(|s| &s.template);
    let node_selector = template.and_then(|t| t.spec.as_ref()).and_then(|s| s.node_selector.clone()).unwrap_or_default();
    let selector = node_selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let nodes = snapshot.nodes.len();
    let why = if nodes == 0 {
        match selector.is_empty() {
            true => "its affinity or the nodes' taints leave it none".to_owned(),
            false => format!("its nodeSelector {selector}, affinity or the nodes' taints leave it none"),
        }
    } else {
        let labelled = snapshot.nodes.iter().filter(|n| crate::analyze::carries_labels(n, &node_selector)).count();
        let eligible = crate::analyze::eligible_nodes(snapshot, template).len();
        match (labelled, eligible) {
            (0, _) => format!("none of the {nodes} nodes carries its nodeSelector {selector}"),
            (_, 0) => format!("the {labelled} node(s) its nodeSelector admits are cordoned or have taints it does not tolerate"),
            _ => format!("{eligible} node(s) admit its nodeSelector and tolerations, so its node affinity leaves it none"),
        }
    };
    Some(LintFinding {
        resource: ResourceRef { kind: "DaemonSet".into(), namespace: ns, name: name.clone() },
        rule: "daemonset-schedules-nowhere",
        message: format!("DaemonSet {name} runs on no node (desiredNumberScheduled 0): {why}"),
    })
}

/// Every pod template of the snapshot with its namespace: the workloads', CronJobs' jobTemplates (a
/// CronJob's runs come and go: it uses what it references between runs too), ReplicaSets', and the
/// pods' own specs.
fn templates(snapshot: &Snapshot) -> impl Iterator<Item = (Option<String>, Option<k8s_openapi::api::core::v1::PodTemplateSpec>)> + '_ {
    snapshot
        .deployments
        .iter()
        .map(|d| (d.metadata.namespace.clone(), d.spec.as_ref().map(|s| s.template.clone())))
        .chain(snapshot.stateful_sets.iter().map(|s| (s.metadata.namespace.clone(), s.spec.as_ref().map(|s| s.template.clone()))))
        .chain(snapshot.daemon_sets.iter().map(|s| (s.metadata.namespace.clone(), s.spec.as_ref().map(|s| s.template.clone()))))
        .chain(snapshot.jobs.iter().map(|j| (j.metadata.namespace.clone(), j.spec.as_ref().map(|s| s.template.clone()))))
        .chain(snapshot.cron_jobs.iter().map(|c| {
            (c.metadata.namespace.clone(), c.spec.as_ref().and_then(|s| s.job_template.spec.as_ref()).map(|s| s.template.clone()))
        }))
        .chain(snapshot.replica_sets.iter().map(|r| (r.metadata.namespace.clone(), r.spec.as_ref().and_then(|s| s.template.clone()))))
        .chain(snapshot.pods.iter().map(|p| {
            let t = k8s_openapi::api::core::v1::PodTemplateSpec { metadata: None, spec: p.spec.clone() };
            (p.metadata.namespace.clone(), Some(t))
        }))
}

/// Secrets the cluster or a tool manages for itself: a Helm release's record, a ServiceAccount's
/// token (its keys say so).
fn managed_secret(name: &str, keys: &[String]) -> bool {
    name.starts_with("sh.helm.release.v1.") || ["token", "ca.crt", "namespace"].iter().all(|k| keys.iter().any(|have| have == k))
}

/// Secrets no pod, pod template, Ingress or Gateway listener references (judged only on a snapshot that holds Secrets:
/// a file; a live snapshot never lists them). What reads a Secret from outside a pod (a
/// ServiceAccount's imagePullSecrets, a controller) is not in the snapshot, so the message says so.
/// `used`: the Secrets the pod templates reference, by namespace.
fn unused_secrets(snapshot: &Snapshot, mut used: BTreeSet<(String, String)>) -> Vec<LintFinding> {
    for ing in &snapshot.ingresses {
        let ns = ing.metadata.namespace.clone().unwrap_or_default();
        let tls = ing.spec.iter().flat_map(|s| s.tls.iter().flatten()).filter_map(|t| t.secret_name.clone());
        used.extend(tls.map(|s| (ns.clone(), s)));
    }
    for owner in crate::gateway::listener_owners(snapshot) {
        used.extend(owner.certificate_secrets().map(|(_, ns, name)| (ns.to_owned(), name.to_owned())));
    }
    snapshot
        .secrets
        .iter()
        .filter(|s| !managed_secret(&s.name, &s.keys) && !used.contains(&(s.namespace.clone(), s.name.clone())))
        .map(|s| LintFinding {
            resource: ResourceRef { kind: "Secret".into(), namespace: s.namespace.clone(), name: s.name.clone() },
            rule: "secret-unused",
            message: format!(
                "Secret {} is referenced by no pod, pod template, Ingress or Gateway listener in {} (a ServiceAccount's imagePullSecrets or a controller may still read it: check before deleting)",
                s.name, s.namespace
            ),
        })
        .collect()
}

/// Whether a label selector (matchLabels and matchExpressions: In, NotIn, Exists, DoesNotExist)
/// matches `labels`, as the API server evaluates it.
pub(crate) fn selects(s: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k));
    s.match_labels.iter().flatten().all(|(k, v)| get(k) == Some(v))
        && s.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => get(&e.key).is_some_and(|v| values.contains(v)),
                "NotIn" => get(&e.key).is_none_or(|v| !values.contains(v)),
                "Exists" => get(&e.key).is_some(),
                "DoesNotExist" => get(&e.key).is_none(),
                _ => false,
            }
        })
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
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nightly", "namespace": "shop"}, "data": {"a": "1"}},
                {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report", "namespace": "shop"},
                 "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "r",
                    "envFrom": [{"configMapRef": {"name": "nightly"}}]}]}}}}}},
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

    #[test]
    fn a_secret_nothing_references_is_reported_and_used_helm_and_token_secrets_are_not() {
        let secret = |name: &str, keys: &[&str]| {
            let data: serde_json::Map<String, serde_json::Value> = keys.iter().map(|k| ((*k).to_owned(), "".into())).collect();
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "shop"}, "data": data})
        };
        let s = Snapshot::from_text(
            &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
                secret("db", &["password"]), secret("stale", &["password"]), secret("pull", &[".dockerconfigjson"]),
                secret("shop-tls", &["tls.crt", "tls.key"]), secret("sh.helm.release.v1.shop.v3", &["release"]),
                secret("legacy-token", &["token", "ca.crt", "namespace"]),
                {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"},
                 "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {"spec": {"imagePullSecrets": [{"name": "pull"}],
                    "containers": [{"name": "api", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}]}}}},
                {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "shop", "namespace": "shop"},
                 "spec": {"tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]}}
            ]})
            .to_string(),
        )
        .unwrap();
        let found: Vec<(String, &str)> = lint(&s).into_iter().map(|f| (f.resource.name, f.rule)).collect();
        assert_eq!(found, [("stale".to_owned(), "secret-unused")]);
    }

    #[test]
    fn a_secret_a_gateway_or_listener_set_serves_as_its_certificate_is_in_use() {
        let secret = |name: &str, ns: &str| {
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
                "data": {"tls.crt": "", "tls.key": ""}})
        };
        let listener = |cert: serde_json::Value| serde_json::json!({"name": "https", "port": 443, "protocol": "HTTPS", "tls": {"mode": "Terminate", "certificateRefs": [cert]}});
        let s = Snapshot::from_text(
            &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
                secret("gateway-tls", "shop"), secret("set-tls", "shop"), secret("shared-tls", "certs"), secret("stale", "shop"),
                {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "public", "namespace": "shop"},
                 "spec": {"gatewayClassName": "eg", "listeners": [
                    listener(serde_json::json!({"name": "gateway-tls"})),
                    listener(serde_json::json!({"kind": "Secret", "group": "", "namespace": "certs", "name": "shared-tls"}))]}},
                {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "ListenerSet", "metadata": {"name": "team", "namespace": "shop"},
                 "spec": {"parentRef": {"name": "public"}, "listeners": [listener(serde_json::json!({"name": "set-tls"}))]}}
            ]})
            .to_string(),
        )
        .unwrap();
        let found: Vec<(String, &str)> = lint(&s).into_iter().map(|f| (f.resource.name, f.rule)).collect();
        assert_eq!(found, [("stale".to_owned(), "secret-unused")]);
    }

    #[test]
    fn a_suspended_cronjob_is_reported_and_an_active_one_is_not() {
        let cron = |name: &str, suspend: bool| {
            serde_json::json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "shop"},
                "spec": {"schedule": "0 3 * * *", "suspend": suspend, "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "r", "image": "x"}]}}}}},
                "status": {"lastScheduleTime": "2026-11-20T03:00:00Z"}})
        };
        let s = Snapshot::from_text(
            &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [cron("report", true), cron("backup", false)]}).to_string(),
        )
        .unwrap();
        let found: Vec<(String, &str, String)> = lint(&s).into_iter().map(|f| (f.resource.name, f.rule, f.message)).collect();
        assert_eq!(
            found,
            [(
                "report".to_owned(),
                "cronjob-suspended",
                "CronJob report is suspended: none of its runs start; last run scheduled 2026-11-20T03:00:00Z".to_owned()
            )]
        );
    }

    #[test]
    fn a_network_policy_whose_selector_matches_no_pod_is_reported_and_one_that_matches_or_selects_all_is_not() {
        let policy = |name: &str, selector: serde_json::Value| {
            serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": "shop"},
                "spec": {"podSelector": selector, "policyTypes": ["Ingress"]}})
        };
        let s = Snapshot::from_text(
            &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api-1", "namespace": "shop", "labels": {"app": "api", "tier": "web"}},
                 "spec": {"containers": [{"name": "api"}]}},
                policy("typo", serde_json::json!({"matchLabels": {"app": "apі"}})),
                policy("api", serde_json::json!({"matchLabels": {"app": "api"}})),
                policy("web-tier", serde_json::json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "edge"]}]})),
                policy("not-db", serde_json::json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]}]})),
                policy("no-gpu", serde_json::json!({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]})),
                policy("default-deny", serde_json::json!({}))
            ]})
            .to_string(),
        )
        .unwrap();
        let found: Vec<(String, &str)> = lint(&s).into_iter().map(|f| (f.resource.name, f.rule)).collect();
        assert_eq!(found, [("no-gpu".to_owned(), "networkpolicy-selects-nothing"), ("typo".to_owned(), "networkpolicy-selects-nothing")]);
    }

    #[test]
    fn a_daemonset_no_node_takes_is_reported_with_the_reason_and_one_that_runs_or_is_not_yet_observed_is_not() {
        let ds = |name: &str, desired: i32, observed: i64| {
            serde_json::json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "ops", "generation": 2},
                "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"nodeSelector": {"disktype": "ssd"}, "containers": [{"name": "agent", "image": "agent:1"}]}}},
                "status": {"observedGeneration": observed, "desiredNumberScheduled": desired, "currentNumberScheduled": desired,
                    "numberMisscheduled": 0, "numberReady": desired}})
        };
        let node = |labels: serde_json::Value, taints: serde_json::Value| serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": labels}, "spec": {"taints": taints}});
        let lint_of = |items: Vec<serde_json::Value>| {
            let s = Snapshot::from_text(&serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()).unwrap();
            lint(&s).into_iter().map(|f| (f.resource.name, f.rule, f.message)).collect::<Vec<_>>()
        };
        let found = lint_of(vec![
            ds("nowhere", 0, 2),
            ds("running", 1, 2),
            ds("not-yet-observed", 0, 1),
            node(serde_json::json!({}), serde_json::json!([])),
        ]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].0.as_str(), found[0].1), ("nowhere", "daemonset-schedules-nowhere"));
        assert!(found[0].2.contains("none of the 1 nodes carries its nodeSelector disktype=ssd"), "{}", found[0].2);
        let tainted = lint_of(vec![
            ds("nowhere", 0, 2),
            node(serde_json::json!({"disktype": "ssd"}), serde_json::json!([{"key": "gpu", "effect": "NoSchedule"}])),
        ]);
        assert!(tainted[0].2.contains("the 1 node(s) its nodeSelector admits are cordoned or have taints"), "{}", tainted[0].2);
        let no_nodes = lint_of(vec![ds("nowhere", 0, 2)]);
        assert!(no_nodes[0].2.contains("its nodeSelector disktype=ssd, affinity or the nodes' taints leave it none"), "{}", no_nodes[0].2);
    }
}
