//! DaemonSets whose pods run on nodes they should no longer run on (misscheduled).
//!
//! A daemon pod keeps running when its node gains a `NoSchedule` taint the DaemonSet does not
//! tolerate: the controller leaves it there. (An untolerated `NoExecute` taint evicts it, and a node
//! that loses a nodeSelector label has it deleted, so only the `NoSchedule` case lasts.) The pod works
//! today; once it restarts, is evicted or the node is drained, no new one is placed there, and whatever
//! the daemon does on that node (logs, metrics, networking, storage) stops without a signal.
//!
//! Judged from the pods and their nodes, not only from `status.numberMisscheduled`: the controller
//! (1.35) does not look at a DaemonSet again when a node gains a `NoSchedule` taint, so the count stays
//! 0 until the DaemonSet or one of its pods changes (seen on the harness's real node). The DaemonSet's
//! other counts (pods not scheduled, unavailable) show through its pods and their own categories
//! (Unschedulable, CrashLoopBackOff, FailedCreate…).

use std::collections::BTreeMap;

use aegis_model::{Category, ResourceRef, Severity};
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, PodSpec, Taint, Toleration};

use crate::analyze::tolerates;
use crate::objects::{ObjectFinding, object_incident};
use crate::signals::Index;

/// The taints the DaemonSet controller tolerates on every daemon pod it creates, whatever the
/// template says (its `AddOrUpdateDaemonPodTolerations`): a node with these stays a daemon node.
const ADDED_BY_THE_CONTROLLER: &[&str] = &[
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/network-unavailable",
];

/// A DaemonSet with pods on nodes that keep them but would not admit them again ([`not_admitted`]),
/// each named with its node and taint; or, where the snapshot lacks the nodes, the controller's own
/// count of misscheduled pods (when its status is current).
pub(crate) fn misscheduled(index: &Index<'_>, ds: &DaemonSet) -> Option<aegis_model::Incident> {
    let unreported = DaemonSetStatus::default();
    let status = ds.status.as_ref().unwrap_or(&unreported);
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let name = ds.metadata.name.clone().unwrap_or_default();
    let spec = ds.spec.as_ref().and_then(|s| s.template.spec.as_ref());
    let nodes: BTreeMap<&str, &Node> = index.snapshot.nodes.iter().filter_map(|n| Some((n.metadata.name.as_deref()?, n))).collect();
    let mut why: Vec<(String, String, Refusal)> = Vec::new();
    for pod in index.pods_in(&ns) {
        let owned = pod.metadata.owner_references.iter().flatten().any(|o| o.kind == "DaemonSet" && o.name == name);
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else { continue };
        if !owned || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(reason) = nodes.get(node).and_then(|n| not_admitted(n, spec)) {
            why.push((pod.metadata.name.clone().unwrap_or_default(), node.to_owned(), reason));
        }
    }
    // The controller's count, when its status is current, stands even where the snapshot cannot say
    // why (no nodes in it).
    let counted = if status.observed_generation == ds.metadata.generation { status.number_misscheduled } else { 0 };
    if why.is_empty() && counted <= 0 {
        return None;
    }
    let count = counted.max(why.len() as i32);
    let mut evidence = vec![format!(
        "DaemonSet {name} status: {} pod(s) counted misscheduled, {} scheduled where desired of {} desired, {} ready",
        status.number_misscheduled, status.current_number_scheduled, status.desired_number_scheduled, status.number_ready
    )];
    evidence.extend(why.iter().map(|(pod, node, r)| format!("pod {pod} on node {node}: {}", r.reason)));
    let (root_cause, guidance) = match why.first() {
        Some((_, node, Refusal { reason, undo })) => {
            let on: Vec<&str> = why.iter().map(|(_, n, _)| n.as_str()).collect();
            (
                format!(
                    "DaemonSet {name} still runs on node {node}, which no longer admits it ({reason}): the pod keeps running, but once it restarts, is evicted or the node is drained no new one is placed there, and what {name} does on that node stops."
                ),
                format!(
                    "Decide whether {name} belongs on {nodes}. If it does, tolerate the taint in the DaemonSet's pod template, which rolls its pods; if it does not, delete the misscheduled pod(s) (`kubectl delete pod -n {ns} {pods}`), or `kubectl {undo}` if the taint was added by mistake.",
                    nodes = on.join(", "),
                    pods = why.iter().map(|(p, _, _)| p.as_str()).collect::<Vec<_>>().join(" "),
                ),
            )
        }
        // The snapshot lacks the nodes (a file without them, or no right to read them): the count is
        // the evidence, the nodes are not named.
        None => (
            format!(
                "DaemonSet {name} runs {count} pod(s) on nodes that no longer admit them (a NoSchedule taint it does not tolerate): they stay until they restart or are evicted, and then none takes their place."
            ),
            format!(
                "`kubectl get pods -n {ns} -o wide` for {name}'s pods, then `kubectl describe node` for their nodes' taints: tolerate them in the pod template if {name} belongs there, else delete the misscheduled pods."
            ),
        ),
    };
    Some(object_incident(
        index,
        ObjectFinding {
            resource: ResourceRef { kind: "DaemonSet".into(), namespace: ns, name },
            category: Category::DaemonSetMisscheduled,
            severity: Severity::Low,
            root_cause,
            evidence,
            guidance,
            confidence: if why.is_empty() { 0.6 } else { 0.8 },
        },
    ))
}

/// Why a node does not admit a daemon pod, and the command that takes the taint back.
#[derive(Debug, PartialEq)]
struct Refusal {
    reason: String,
    /// `taint node N key:NoSchedule-`.
    undo: String,
}

/// Why `node` keeps a daemon pod it would not admit again: a `NoSchedule` taint neither the template
/// nor the controller tolerates. None otherwise — also where the pod is on its way out anyway: an
/// untolerated `NoExecute` taint (the taint manager evicts it) or a nodeSelector label the node lost
/// (the controller deletes it), both of which the pod's replacement shows through its own signals.
fn not_admitted(node: &Node, spec: Option<&PodSpec>) -> Option<Refusal> {
    let tolerations: &[Toleration] = spec.and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
    let taints: &[Taint] = node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
    let t = taints.iter().find(|t| {
        t.effect == "NoSchedule" && !ADDED_BY_THE_CONTROLLER.contains(&t.key.as_str()) && !tolerations.iter().any(|tol| tolerates(tol, t))
    })?;
    let value = t.value.as_deref().map(|v| format!("={v}")).unwrap_or_default();
    Some(Refusal {
        reason: format!("taint {}{value}:{} not tolerated", t.key, t.effect),
        undo: format!("taint node {} {}:{}-", node.metadata.name.as_deref().unwrap_or_default(), t.key, t.effect),
    })
}

#[cfg(test)]
mod tests {
    use crate::Snapshot;
    use aegis_model::{Category, Severity};

    fn snapshot(misscheduled: i32, taint_effect: &str, tolerated: bool) -> Snapshot {
        let tolerations = if tolerated { r#"[{"key":"dedicated","operator":"Exists"}]"# } else { "[]" };
        let text = format!(
            r#"{{"apiVersion":"v1","kind":"List","items":[
            {{"apiVersion":"v1","kind":"Node","metadata":{{"name":"n1","labels":{{"kubernetes.io/os":"linux"}}}},
              "spec":{{"taints":[{{"key":"dedicated","value":"db","effect":"{taint_effect}"}},
                                 {{"key":"node.kubernetes.io/unschedulable","effect":"NoSchedule"}}]}}}},
            {{"apiVersion":"v1","kind":"Node","metadata":{{"name":"n2","labels":{{"kubernetes.io/os":"linux"}}}}}},
            {{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{{"name":"agent","namespace":"ops","generation":1,"uid":"u1"}},
              "spec":{{"selector":{{"matchLabels":{{"app":"agent"}}}},"template":{{"metadata":{{"labels":{{"app":"agent"}}}},
                "spec":{{"tolerations":{tolerations},"containers":[{{"name":"agent","image":"agent:1"}}]}}}}}},
              "status":{{"observedGeneration":1,"numberMisscheduled":{misscheduled},"currentNumberScheduled":1,
                "desiredNumberScheduled":1,"numberReady":2,"numberAvailable":2}}}},
            {{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"agent-a","namespace":"ops","labels":{{"app":"agent"}},
              "ownerReferences":[{{"apiVersion":"apps/v1","kind":"DaemonSet","name":"agent","uid":"u1","controller":true}}]}},
              "spec":{{"nodeName":"n1","containers":[{{"name":"agent","image":"agent:1"}}]}},
              "status":{{"phase":"Running","conditions":[{{"type":"Ready","status":"True"}}]}}}},
            {{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"agent-b","namespace":"ops","labels":{{"app":"agent"}},
              "ownerReferences":[{{"apiVersion":"apps/v1","kind":"DaemonSet","name":"agent","uid":"u1","controller":true}}]}},
              "spec":{{"nodeName":"n2","containers":[{{"name":"agent","image":"agent:1"}}]}},
              "status":{{"phase":"Running","conditions":[{{"type":"Ready","status":"True"}}]}}}}
            ]}}"#
        );
        Snapshot::from_text(&text).unwrap()
    }

    #[test]
    fn a_daemon_pod_left_on_a_node_tainted_after_it_started_is_named_with_the_taint() {
        let incidents = crate::analyze(&snapshot(1, "NoSchedule", false));
        let found: Vec<_> = incidents.iter().filter(|i| i.category == Category::DaemonSetMisscheduled).collect();
        assert_eq!(found.len(), 1, "{incidents:#?}");
        let i = found[0];
        assert_eq!((i.resource.kind.as_str(), i.resource.name.as_str(), i.severity), ("DaemonSet", "agent", Severity::Low));
        assert!(
            i.root_cause.contains("node n1") && i.root_cause.contains("taint dedicated=db:NoSchedule not tolerated"),
            "{}",
            i.root_cause
        );
        assert!(i.evidence.iter().any(|e| e.starts_with("pod agent-a on node n1")), "{:?}", i.evidence);
        assert!(!i.evidence.iter().any(|e| e.contains("agent-b")), "the pod on an untainted node is not blamed: {:?}", i.evidence);
        assert!(i.fix.patch.is_none(), "where the daemon belongs is a human's call");
        let aegis_model::FixAction::Manual { guidance } = &i.fix.action else { panic!("{:?}", i.fix.action) };
        assert!(
            guidance.contains("kubectl delete pod -n ops agent-a`") && guidance.contains("`kubectl taint node n1 dedicated:NoSchedule-`"),
            "{guidance}"
        );
    }

    #[test]
    fn a_taint_the_controller_has_not_recounted_yet_is_found_from_the_pods_and_their_nodes() {
        let incidents = crate::analyze(&snapshot(0, "NoSchedule", false));
        let i = incidents.iter().find(|i| i.category == Category::DaemonSetMisscheduled).expect("found from the node's taint");
        assert!(i.evidence[0].contains("0 pod(s) counted misscheduled"), "the controller's own count is shown as it is: {:?}", i.evidence);
    }

    #[test]
    fn a_tolerated_taint_raises_nothing_and_the_controllers_count_alone_still_does() {
        assert!(!crate::analyze(&snapshot(0, "NoSchedule", true)).iter().any(|i| i.category == Category::DaemonSetMisscheduled));
        let counted = crate::analyze(&snapshot(1, "NoSchedule", true));
        let i = counted.iter().find(|i| i.category == Category::DaemonSetMisscheduled).expect("the controller's count stands");
        assert!(!i.evidence.iter().any(|e| e.starts_with("pod ")), "no pod is blamed for a tolerated taint: {:?}", i.evidence);
    }

    /// Only a `NoSchedule` taint leaves a daemon pod in place: under an untolerated `NoExecute` taint
    /// the taint manager evicts it, and on a node that lost a nodeSelector label the controller deletes
    /// it, so such a pod is on its way out and a snapshot that catches it must not open an incident.
    #[test]
    fn a_daemon_pod_that_is_being_removed_anyway_raises_nothing() {
        assert!(!crate::analyze(&snapshot(0, "NoExecute", false)).iter().any(|i| i.category == Category::DaemonSetMisscheduled));
        let node: k8s_openapi::api::core::v1::Node = serde_json::from_value(serde_json::json!({"metadata": {"name": "n"}})).unwrap();
        let labelled: k8s_openapi::api::core::v1::PodSpec =
            serde_json::from_value(serde_json::json!({"containers": [], "nodeSelector": {"role": "edge"}})).unwrap();
        assert_eq!(super::not_admitted(&node, Some(&labelled)), None);
    }

    #[test]
    fn the_taints_the_controller_adds_to_every_daemon_pod_are_never_blamed() {
        let node: k8s_openapi::api::core::v1::Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n"}, "spec": {"taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}}))
        .unwrap();
        assert_eq!(super::not_admitted(&node, None), None);
    }
}
