//! A ListenerSet whose listeners never reach its Gateway.
//!
//! A ListenerSet adds listeners to the Gateway its `parentRef` names, but only if that Gateway allows
//! it: `spec.allowedListeners.namespaces.from` is `None` unless set (`Same`, `All` or `Selector`
//! open it). The controller says so in the ListenerSet's status (`Accepted: False`, `NotAllowed`):
//! that, and listeners it cannot serve, are judged as a Gateway's are ([`super::gateway_problems`]).
//! Where no controller has reported for [`GRACE_SECONDS`], the spec alone still tells two cases: the
//! Gateway does not exist (the snapshot holds its namespace's Gateways, and not it), or it does not
//! allow ListenerSets from this namespace. A controller that accepted the ListenerSet is believed
//! over the spec (it sees namespace labels a `Selector` matches; this analysis does not).
//!
//! Both are `GatewayListenerInvalid`: the Gateway still serves its own listeners; the ListenerSet's
//! are lost, and every route attached to them reaches nothing. The fix is a human's: the Gateway is
//! shared, usually owned by the platform team, and opening it is their decision.

use aegis_model::{Category, Incident, ResourceRef, Severity};

use super::{GRACE_SECONDS, Gateway, ListenerSet, OwnerKind, condition, gateway_problems};
use crate::objects::{ObjectFinding, object_incident};
use crate::signals::Index;

/// Why the parent Gateway, as the snapshot holds it, cannot take the ListenerSet.
enum Refusal<'a> {
    /// No Gateway of that name in its namespace (which holds these).
    Missing { held: Vec<&'a str> },
    /// The Gateway exists and its `allowedListeners` does not admit the ListenerSet's namespace.
    NotAllowed { gateway: &'a Gateway, from: &'a str },
}

pub(crate) fn listener_set_problems(index: &Index<'_>, ls: &ListenerSet) -> Option<Incident> {
    if let Some(reported) = gateway_problems(index, ls.into()) {
        return Some(reported);
    }
    let accepted = ls.status.as_ref().and_then(|s| condition(&s.conditions, "Accepted")).is_some_and(|c| c.status == "True");
    let age = super::age(index, &ls.metadata);
    let parent = &ls.spec.parent_ref;
    if accepted || age.is_none_or(|a| a < GRACE_SECONDS) || !parent.is_gateway() {
        return None;
    }
    let ns = ls.metadata.namespace.as_deref().unwrap_or_default();
    let name = ls.metadata.name.as_deref().unwrap_or_default();
    let gw_ns = parent.namespace_or(ns);
    let refusal = refusal(index, ns, gw_ns, &parent.name)?;

    let hurt = super::routes_on(index, OwnerKind::ListenerSet, ns, name, |_| true);
    let minutes = age.unwrap_or(0) / 60;
    let mut evidence = vec![format!(
        "ListenerSet {name}: parentRef Gateway {gw_ns}/{}; no controller has accepted it {minutes} min after it was created",
        parent.name
    )];
    let listeners: Vec<String> = ls.spec.listeners.iter().map(|l| format!("{} ({} port {})", l.name, l.protocol, l.port)).collect();
    if !listeners.is_empty() {
        evidence.push(format!("ListenerSet {name}: listeners {}", listeners.join(", ")));
    }
    let (why, guidance) = match &refusal {
        Refusal::Missing { held } => {
            evidence.push(format!("no Gateway {} in {gw_ns} (Gateways there: {})", parent.name, held.join(", ")));
            (
                format!("its parent Gateway {gw_ns}/{} does not exist", parent.name),
                format!(
                    "Point spec.parentRef of ListenerSet {name} at a Gateway that exists (`kubectl get gateways -n {gw_ns}`) and allows \
                     ListenerSets from {ns}."
                ),
            )
        }
        Refusal::NotAllowed { gateway, from } => {
            let gw_name = gateway.metadata.name.as_deref().unwrap_or_default();
            evidence.push(format!("Gateway {gw_ns}/{gw_name}: spec.allowedListeners.namespaces.from: {from}"));
            let open = if ns == gw_ns {
                r#"{"spec":{"allowedListeners":{"namespaces":{"from":"Same"}}}}"#.to_owned()
            } else {
                format!(
                    r#"{{"spec":{{"allowedListeners":{{"namespaces":{{"from":"Selector","selector":{{"matchLabels":{{"kubernetes.io/metadata.name":"{ns}"}}}}}}}}}}}}"#
                )
            };
            (
                format!("its parent Gateway {gw_ns}/{gw_name} does not allow ListenerSets from {ns} (allowedListeners from: {from})"),
                format!(
                    "If Gateway {gw_name} is meant to take listeners from {ns}, its owner opens it: `kubectl patch gateway {gw_name} -n \
                     {gw_ns} --type merge -p '{open}'`; otherwise point ListenerSet {name} at a Gateway that allows it."
                ),
            )
        }
    };
    if !hurt.is_empty() {
        evidence.push(format!("ListenerSet {name}: routes attached to its listeners: {}", hurt.join(", ")));
    }
    Some(object_incident(
        index,
        ObjectFinding {
            resource: ResourceRef { kind: OwnerKind::ListenerSet.to_string(), namespace: ns.into(), name: name.into() },
            category: Category::GatewayListenerInvalid,
            severity: if hurt.is_empty() { Severity::Medium } else { Severity::High },
            root_cause: format!(
                "ListenerSet {name} adds no listener to a Gateway: {why}, so every route on its listeners reaches nothing."
            ),
            evidence,
            guidance,
            confidence: 0.8,
        },
    ))
}

/// Why Gateway `gw_ns/gw_name` does not take a ListenerSet of `ns`, if the snapshot shows it. A
/// snapshot without Gateways in `gw_ns` says nothing, nor does a `Selector` (namespace labels are not
/// in it).
fn refusal<'a>(index: &Index<'a>, ns: &str, gw_ns: &str, gw_name: &str) -> Option<Refusal<'a>> {
    let held: Vec<&Gateway> = index.snapshot.gateways_in(gw_ns).collect();
    if held.is_empty() {
        return None;
    }
    let Some(gateway) = held.iter().find(|g| g.metadata.name.as_deref() == Some(gw_name)) else {
        return Some(Refusal::Missing { held: held.iter().filter_map(|g| g.metadata.name.as_deref()).collect() });
    };
    let from =
        gateway.spec.allowed_listeners.as_ref().and_then(|a| a.namespaces.as_ref()).and_then(|n| n.from.as_deref()).unwrap_or("None");
    let allowed = match from {
        "All" | "Selector" => true,
        "Same" => ns == gw_ns,
        _ => false,
    };
    (!allowed).then_some(Refusal::NotAllowed { gateway, from })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Snapshot;

    const CAPTURED: &str = "2026-11-30T12:00:00Z";
    const LONG_AGO: &str = "2026-11-30T11:00:00Z";

    /// Gateway `infra/public` (with `allowed`, YAML of its allowedListeners, or none), ListenerSet
    /// `team/extra` on it created at `created` with `status`, and a TCPRoute on the ListenerSet.
    fn snapshot(allowed: &str, ls_ns: &str, created: &str, status: &str) -> Snapshot {
        let text = format!(
            r#"apiVersion: v1
kind: List
metadata: {{annotations: {{aegis.io/captured-at: "{CAPTURED}"}}}}
items:
- apiVersion: gateway.networking.k8s.io/v1
  kind: Gateway
  metadata: {{name: public, namespace: infra, creationTimestamp: "{LONG_AGO}"}}
  spec: {{gatewayClassName: eg, listeners: [{{name: http, port: 80, protocol: HTTP}}]{allowed}}}
- apiVersion: gateway.networking.k8s.io/v1
  kind: ListenerSet
  metadata: {{name: extra, namespace: {ls_ns}, creationTimestamp: "{created}"}}
  spec:
    parentRef: {{name: public, namespace: infra}}
    listeners: [{{name: db, port: 5432, protocol: TCP}}]
  {status}
- apiVersion: gateway.networking.k8s.io/v1
  kind: TCPRoute
  metadata: {{name: postgres, namespace: {ls_ns}}}
  spec: {{parentRefs: [{{kind: ListenerSet, name: extra, sectionName: db}}], rules: [{{backendRefs: [{{name: postgres, port: 5432}}]}}]}}
"#
        );
        Snapshot::from_text(&text).unwrap()
    }

    fn found(s: &Snapshot) -> Vec<Incident> {
        let index = Index::new(s);
        s.listener_sets.iter().filter_map(|l| listener_set_problems(&index, l)).collect()
    }

    const PENDING: &str = r#"status: {conditions: [{type: Accepted, status: Unknown, reason: Pending, message: Waiting for controller, lastTransitionTime: "1970-01-01T00:00:00Z"}]}"#;

    #[test]
    fn a_listener_set_on_a_gateway_that_allows_none_names_the_patch_that_opens_it_and_the_route_it_strands() {
        let found = found(&snapshot("", "team", LONG_AGO, PENDING));
        assert_eq!(found.len(), 1, "{found:?}");
        let i = &found[0];
        assert_eq!((i.category, i.resource.kind.as_str(), i.severity), (Category::GatewayListenerInvalid, "ListenerSet", Severity::High));
        assert!(i.root_cause.contains("does not allow ListenerSets from team (allowedListeners from: None)"), "{}", i.root_cause);
        assert!(i.evidence.join("\n").contains("TCPRoute team/postgres"), "{:?}", i.evidence);
        let aegis_model::FixAction::Manual { guidance } = &i.fix.action else { panic!("{:?}", i.fix.action) };
        assert!(guidance.contains(r#""kubernetes.io/metadata.name":"team""#), "{guidance}");
    }

    #[test]
    fn same_admits_only_the_gateways_own_namespace() {
        let same = ", allowedListeners: {namespaces: {from: Same}}";
        assert!(found(&snapshot(same, "infra", LONG_AGO, PENDING)).is_empty());
        let other = found(&snapshot(same, "team", LONG_AGO, PENDING));
        assert_eq!(other.len(), 1, "{other:?}");
        assert!(other[0].root_cause.contains("from: Same"), "{}", other[0].root_cause);
    }

    #[test]
    fn all_selector_an_accepting_controller_and_a_young_listener_set_raise_nothing() {
        assert!(found(&snapshot(", allowedListeners: {namespaces: {from: All}}", "team", LONG_AGO, PENDING)).is_empty());
        assert!(found(&snapshot(", allowedListeners: {namespaces: {from: Selector, selector: {}}}", "team", LONG_AGO, PENDING)).is_empty());
        let accepted = format!(
            r#"status: {{conditions: [{{type: Accepted, status: "True", reason: Accepted, message: ok, lastTransitionTime: "{LONG_AGO}"}}]}}"#
        );
        assert!(found(&snapshot("", "team", LONG_AGO, &accepted)).is_empty(), "the controller is believed over the spec");
        assert!(found(&snapshot("", "team", "2026-11-30T11:59:00Z", PENDING)).is_empty(), "within the grace");
    }

    #[test]
    fn a_listener_set_on_a_gateway_that_does_not_exist_names_the_gateways_there() {
        let mut s = snapshot(", allowedListeners: {namespaces: {from: All}}", "team", LONG_AGO, PENDING);
        s.listener_sets[0].spec.parent_ref.name = "gone".into();
        let incidents = found(&s);
        assert_eq!(incidents.len(), 1, "{incidents:?}");
        assert!(incidents[0].root_cause.contains("its parent Gateway infra/gone does not exist"), "{}", incidents[0].root_cause);
        assert!(
            incidents[0].evidence.join("\n").contains("no Gateway gone in infra (Gateways there: public)"),
            "{:?}",
            incidents[0].evidence
        );
        s.gateways.clear();
        assert!(found(&s).is_empty(), "a snapshot without the namespace's Gateways says nothing about them");
    }

    #[test]
    fn a_controllers_not_allowed_is_reported_with_its_reason() {
        let refused = format!(
            r#"status: {{conditions: [{{type: Accepted, status: "False", reason: NotAllowed, message: "ListenerSet not allowed by Gateway", lastTransitionTime: "{LONG_AGO}"}}]}}"#
        );
        let found = found(&snapshot(", allowedListeners: {namespaces: {from: All}}", "team", LONG_AGO, &refused));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].category, Category::GatewayListenerInvalid);
        assert!(found[0].root_cause.contains("Accepted False (NotAllowed)"), "{}", found[0].root_cause);
        assert!(found[0].evidence.join("\n").contains("TCPRoute team/postgres"), "{:?}", found[0].evidence);
    }

    #[test]
    fn a_gateway_of_another_namespace_held_as_a_parent_is_read_for_its_listener_sets_never_judged_and_round_trips() {
        let mut s = snapshot("", "team", LONG_AGO, PENDING);
        // As the snapshot of namespace `team` holds it: its parent's, not one of its own.
        let mut gateway = s.gateways.remove(0);
        gateway.status = Some(
            serde_json::from_value(serde_json::json!({"conditions": [{"type": "Programmed", "status": "False",
                "reason": "AddressNotAssigned", "message": "No addresses", "lastTransitionTime": LONG_AGO}]}))
            .unwrap(),
        );
        s.parent_gateways.push(gateway);
        assert_eq!(s.parent_gateway_namespaces("team").into_iter().collect::<Vec<_>>(), ["infra"]);
        let found = found(&s);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].root_cause.contains("does not allow ListenerSets from team"), "{}", found[0].root_cause);
        let all = crate::analyze(&s);
        assert!(!all.iter().any(|i| i.resource.kind == "Gateway"), "a parent is judged in its own namespace: {all:?}");

        let again = Snapshot::from_text(&serde_json::to_string(&s.to_list()).unwrap()).unwrap();
        assert!(again.gateways.is_empty());
        assert_eq!(again.parent_gateways, s.parent_gateways, "a parent stays a parent in a snapshot file");
    }
}
