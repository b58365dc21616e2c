//! A route that serves nothing: attached to no Gateway, or sending to a backend that does not resolve.
//!
//! - **RouteNotAttached**: no parent accepted the route. A parent's controller says so in the route's
//!   status (`Accepted: False`, with why); a parent no controller reports on for minutes (a Gateway
//!   that does not exist, a GatewayClass nobody implements) is as good as refused: the route's hosts
//!   reach nothing.
//! - **RouteBackendMissing**: a backend Service, or the port the route names, does not exist, or a
//!   parent reports `ResolvedRefs: False` (a backend not found, a cross-namespace reference without a
//!   ReferenceGrant): what the Gateway answers instead depends on the protocol
//!   (`RouteKind::unresolved_answer`).

use aegis_model::{Category, Incident, ResourceRef, Severity};

use super::{BackendRef, GRACE_SECONDS, ParentRef, Route, condition};
use crate::objects::{ObjectFinding, object_incident};
use crate::signals::Index;

/// What one parent says about the route.
enum ParentState {
    Accepted,
    Refused(String),
    /// No controller has reported on this parent.
    Unreported,
}

/// The route's problems: not attached, and backends that do not resolve. One incident each.
pub(crate) fn route_problems(index: &Index<'_>, route: &Route) -> Vec<Incident> {
    let kind = route.kind;
    let ns = route.metadata.namespace.clone().unwrap_or_default();
    let name = route.metadata.name.clone().unwrap_or_default();
    let resource = ResourceRef { kind: kind.as_str().into(), namespace: ns.clone(), name: name.clone() };
    let statuses = route.status.as_ref().map(|s| s.parents.as_slice()).unwrap_or_default();
    let matched = kind.matched(&route.spec.hostnames);
    let mut out = Vec::new();

    let states: Vec<(&ParentRef, ParentState)> = route
        .spec
        .parent_refs
        .iter()
        .map(|p| {
            let reported = statuses.iter().find(|s| p.same(&s.parent_ref, &ns));
            let accepted = reported.and_then(|s| condition(&s.conditions, "Accepted"));
            let state = match (reported, accepted) {
                (Some(_), Some(c)) if c.status == "True" => ParentState::Accepted,
                (Some(s), Some(c)) => {
                    ParentState::Refused(format!("{} reports Accepted {} {}: {}", s.controller_name, c.status, c.reason, c.message))
                }
                (Some(s), None) => ParentState::Refused(format!("{} reports no Accepted condition", s.controller_name)),
                (None, _) => ParentState::Unreported,
            };
            (p, state)
        })
        .collect();
    let any_accepted = states.iter().any(|(_, s)| matches!(s, ParentState::Accepted));
    let any_refused = states.iter().any(|(_, s)| matches!(s, ParentState::Refused(_)));
    let age = super::age(index, &route.metadata);
    let silent_long = age.is_some_and(|a| a >= GRACE_SECONDS);
    if !states.is_empty() && !any_accepted && (any_refused || silent_long) {
        let evidence: Vec<String> = states
            .iter()
            .map(|(p, state)| {
                let parent = p.describe(&ns);
                match state {
                    ParentState::Accepted => format!("{kind} {name}: parent {parent}: accepted"),
                    ParentState::Refused(why) => format!("{kind} {name}: parent {parent}: {why}"),
                    ParentState::Unreported => {
                        let minutes = age.unwrap_or(0) / 60;
                        let missing = gateway_missing(index, p, &ns).map(|m| format!("; {m}")).unwrap_or_default();
                        format!("{kind} {name}: parent {parent}: no controller has reported on it {minutes} min after the route was created{missing}")
                    }
                }
            })
            .collect();
        out.push(object_incident(
            index,
            ObjectFinding {
                resource: resource.clone(),
                category: Category::RouteNotAttached,
                severity: Severity::High,
                root_cause: format!("{kind} {name} is attached to no Gateway: no parent it names accepted it, so {matched} reach nothing."),
                evidence,
                guidance: format!(
                    "Point spec.parentRefs of {kind} {name} at a Gateway that exists and whose listeners allow routes from {ns} \
                     (`kubectl get gateways -A`; a listener's allowedRoutes.namespaces and its hostname must match), and check \
                     that the Gateway's GatewayClass has a running controller (`kubectl get gatewayclass`: ACCEPTED True).{}",
                    if route.spec.parent_refs.iter().any(|p| p.is_kind(super::OwnerKind::ListenerSet.as_str())) {
                        format!(
                            " A ListenerSet takes routes only once its Gateway allows it (`kubectl get listenersets -n {ns}`: ACCEPTED \
                             True; the Gateway's spec.allowedListeners)."
                        )
                    } else {
                        String::new()
                    }
                ),
                confidence: if any_refused { 0.85 } else { 0.7 },
            },
        ));
    }

    let mut broken: Vec<String> =
        route.spec.rules.iter().flat_map(|r| r.backend_refs.iter()).filter_map(|b| backend_missing(index, b, &ns)).collect();
    broken.extend(statuses.iter().filter_map(|s| {
        let c = condition(&s.conditions, "ResolvedRefs").filter(|c| c.status == "False")?;
        Some(format!("{} reports ResolvedRefs False {}: {}", s.controller_name, c.reason, c.message))
    }));
    broken.sort();
    broken.dedup();
    if !broken.is_empty() {
        out.push(object_incident(
            index,
            ObjectFinding {
                resource,
                category: Category::RouteBackendMissing,
                severity: Severity::High,
                root_cause: format!(
                    "{kind} {name} sends to a backend that does not resolve: {}; {}.",
                    broken.join("; "),
                    kind.unresolved_answer()
                ),
                evidence: broken.iter().map(|b| format!("{kind} {name}: {b}")).collect(),
                guidance: format!(
                    "Point the backendRefs of {kind} {name} at a Service and port that exist (`kubectl get svc -n {ns}`); a backend in \
                     another namespace also needs a ReferenceGrant there that allows {kind}s from {ns}."
                ),
                confidence: 0.8,
            },
        ));
    }
    out
}

/// "Gateway X not found", when the snapshot holds Gateways of the parent's namespace (a snapshot
/// without any says nothing about whether it exists).
fn gateway_missing(index: &Index<'_>, p: &ParentRef, route_ns: &str) -> Option<String> {
    let ns = p.namespace.as_deref().unwrap_or(route_ns);
    let held: Vec<&str> = index.snapshot.gateways_in(ns).filter_map(|g| g.metadata.name.as_deref()).collect();
    (p.is_gateway() && !held.is_empty() && !held.contains(&p.name.as_str()))
        .then(|| format!("no Gateway {} in {ns} (Gateways there: {})", p.name, held.join(", ")))
}

/// What is wrong with one backend in the route's own namespace: its Service missing, or without the
/// port named. Other namespaces and other kinds are judged only by the parents' status.
fn backend_missing(index: &Index<'_>, b: &BackendRef, route_ns: &str) -> Option<String> {
    let service_kind = b.group.as_deref().is_none_or(str::is_empty) && b.kind.as_deref().is_none_or(|k| k == "Service");
    if !service_kind || b.namespace.as_deref().is_some_and(|n| n != route_ns) {
        return None;
    }
    let Some(svc) = index.services_in(route_ns).iter().find(|s| s.metadata.name.as_deref() == Some(b.name.as_str())) else {
        return Some(format!("backend Service {} not found in {route_ns}", b.name));
    };
    let port = b.port?;
    let ports: Vec<String> = svc.spec.iter().flat_map(|s| s.ports.iter().flatten()).map(|p| p.port.to_string()).collect();
    (!ports.contains(&port.to_string())).then(|| format!("backend Service {} has no port {port} (ports: {})", b.name, ports.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Snapshot;

    const CAPTURED: &str = "2026-11-30T12:00:00Z";

    /// A List with Service `web` (port 80), Gateway `shop/public`, and `route` (YAML of one item).
    fn snapshot(route: &str) -> Snapshot {
        let text = format!(
            r#"apiVersion: v1
kind: List
metadata: {{annotations: {{aegis.io/captured-at: "{CAPTURED}"}}}}
items:
- {{apiVersion: v1, kind: Service, metadata: {{name: web, namespace: shop}}, spec: {{selector: {{app: web}}, ports: [{{port: 80}}]}}}}
- {{apiVersion: gateway.networking.k8s.io/v1, kind: Gateway, metadata: {{name: public, namespace: shop}}, spec: {{gatewayClassName: eg, listeners: [{{name: http, port: 80, protocol: HTTP}}]}}}}
- {route}
"#
        );
        Snapshot::from_text(&text).unwrap()
    }

    fn route(created: &str, parent: &str, backend: &str, status: &str) -> String {
        format!(
            "{{apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: {{name: store, namespace: shop, creationTimestamp: \"{created}\"}}, \
             spec: {{parentRefs: [{{name: {parent}}}], hostnames: [shop.example.com], rules: [{{matches: [{{path: {{type: PathPrefix, value: /}}}}], backendRefs: [{backend}]}}]}}{status}}}"
        )
    }

    fn parent_status(parent: &str, accepted: &str, resolved: &str) -> String {
        format!(
            ", status: {{parents: [{{parentRef: {{group: gateway.networking.k8s.io, kind: Gateway, name: {parent}}}, controllerName: gateway.envoyproxy.io/gatewayclass-controller, conditions: [\
             {{type: Accepted, status: \"{accepted}\", reason: {}, message: \"{}\", lastTransitionTime: \"{CAPTURED}\", observedGeneration: 1}}, \
             {{type: ResolvedRefs, status: \"{resolved}\", reason: {}, message: \"{}\", lastTransitionTime: \"{CAPTURED}\", observedGeneration: 1}}]}}]}}",
            if accepted == "True" { "Accepted" } else { "NotAllowedByListeners" },
            if accepted == "True" { "Route is accepted" } else { "No listeners included by this parent ref allowed this attachment." },
            if resolved == "True" { "ResolvedRefs" } else { "BackendNotFound" },
            if resolved == "True" {
                "Resolved all the Object references for the Route"
            } else {
                "Failed to process route rule 0 backendRef 0: service shop/gone not found."
            },
        )
    }

    fn found(s: &Snapshot) -> Vec<Incident> {
        let index = Index::new(s);
        s.routes.iter().flat_map(|r| route_problems(&index, r)).collect()
    }

    const BACKEND: &str = "{name: web, port: 80}";

    #[test]
    fn a_route_accepted_by_its_gateway_with_resolved_backends_raises_nothing() {
        let s = snapshot(&route("2026-11-30T11:00:00Z", "public", BACKEND, &parent_status("public", "True", "True")));
        assert!(found(&s).is_empty(), "{:?}", found(&s));
    }

    #[test]
    fn a_route_its_gateway_refused_is_not_attached_with_the_controllers_reason() {
        let s = snapshot(&route("2026-11-30T11:59:00Z", "public", BACKEND, &parent_status("public", "False", "True")));
        let found = found(&s);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].category, Category::RouteNotAttached);
        assert_eq!(found[0].resource.kind, "HTTPRoute");
        assert!(found[0].evidence[0].contains("NotAllowedByListeners"), "{:?}", found[0].evidence);
        assert!(found[0].root_cause.contains("shop.example.com"), "{}", found[0].root_cause);
    }

    #[test]
    fn a_route_no_controller_reported_on_is_not_attached_only_after_the_grace() {
        let young = snapshot(&route("2026-11-30T11:59:00Z", "missing", BACKEND, ""));
        assert!(found(&young).is_empty(), "a minute without a controller's word is not yet silence");
        let old = snapshot(&route("2026-11-30T11:00:00Z", "missing", BACKEND, ""));
        let found = found(&old);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].category, Category::RouteNotAttached);
        assert!(found[0].evidence[0].contains("no Gateway missing in shop (Gateways there: public)"), "{:?}", found[0].evidence);
    }

    #[test]
    fn a_backend_service_or_port_that_does_not_exist_is_reported() {
        let accepted = parent_status("public", "True", "True");
        for (backend, expect) in
            [("{name: gone, port: 80}", "backend Service gone not found"), ("{name: web, port: 8080}", "has no port 8080")]
        {
            let s = snapshot(&route("2026-11-30T11:00:00Z", "public", backend, &accepted));
            let found = found(&s);
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].category, Category::RouteBackendMissing);
            assert!(found[0].evidence[0].contains(expect), "{:?}", found[0].evidence);
        }
    }

    #[test]
    fn a_parent_reporting_unresolved_refs_is_a_missing_backend_even_across_namespaces() {
        let backend = "{name: gone, namespace: other, port: 80}";
        let s = snapshot(&route("2026-11-30T11:00:00Z", "public", backend, &parent_status("public", "True", "False")));
        let found = found(&s);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].category, Category::RouteBackendMissing);
        assert!(found[0].evidence[0].contains("BackendNotFound"), "{:?}", found[0].evidence);
    }

    #[test]
    fn grpc_tls_tcp_and_udp_routes_are_judged_as_http_routes_are_with_their_protocols_answer() {
        for (kind, answer) in [
            ("GRPCRoute", "gRPC status UNAVAILABLE"),
            ("TLSRoute", "rejects the connections"),
            ("TCPRoute", "rejects the TCP connections"),
            ("UDPRoute", "drops the datagrams"),
        ] {
            let as_kind = |text: String| text.replace("kind: HTTPRoute", &format!("kind: {kind}"));
            let accepted = parent_status("public", "True", "True");
            let broken = snapshot(&as_kind(route("2026-11-30T11:00:00Z", "public", "{name: gone, port: 80}", &accepted)));
            assert_eq!(broken.routes[0].kind.as_str(), kind);
            let incidents = found(&broken);
            assert_eq!(incidents.len(), 1, "{incidents:?}");
            assert_eq!((incidents[0].category, incidents[0].resource.kind.as_str()), (Category::RouteBackendMissing, kind));
            assert!(incidents[0].root_cause.contains(answer), "{}", incidents[0].root_cause);
            assert!(incidents[0].evidence[0].starts_with(&format!("{kind} store: ")), "{:?}", incidents[0].evidence);

            let orphan = found(&snapshot(&as_kind(route("2026-11-30T11:00:00Z", "missing", BACKEND, ""))));
            assert_eq!(orphan.len(), 1, "{orphan:?}");
            assert_eq!(orphan[0].category, Category::RouteNotAttached);

            let healthy = found(&snapshot(&as_kind(route("2026-11-30T11:00:00Z", "public", BACKEND, &accepted))));
            assert!(healthy.is_empty(), "a healthy {kind} raises nothing: {healthy:?}");
        }
    }

    #[test]
    fn an_istio_gateway_is_not_read_as_a_gateway_api_gateway_and_a_route_round_trips() {
        let s = Snapshot::from_text("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: shop}\n").unwrap();
        assert!(s.gateways.is_empty());
        assert_eq!(s.other_kinds.get("Gateway"), Some(&1));
        let s = snapshot(&route("2026-11-30T11:00:00Z", "public", BACKEND, &parent_status("public", "True", "True")));
        let again = Snapshot::from_text(&serde_json::to_string(&s.to_list()).unwrap()).unwrap();
        assert_eq!(again.routes, s.routes, "fields not read (matches) survive a write");
        assert!(serde_json::to_string(&again.routes[0]).unwrap().contains("PathPrefix"));
    }

    #[test]
    fn a_listener_set_round_trips_and_a_route_on_it_is_not_judged_against_the_namespaces_gateways() {
        let on_set = route("2026-11-30T11:00:00Z", "extra", BACKEND, "")
            .replace("parentRefs: [{name: extra}]", "parentRefs: [{kind: ListenerSet, name: extra}]");
        let ls = "{apiVersion: gateway.networking.k8s.io/v1, kind: ListenerSet, metadata: {name: extra, namespace: shop}, spec: {parentRef: {name: public}, listeners: [{name: tcp, port: 9000, protocol: TCP}]}}";
        let s = snapshot(&format!("{on_set}\n- {ls}"));
        assert_eq!(s.listener_sets.len(), 1);
        let again = Snapshot::from_text(&serde_json::to_string(&s.to_list()).unwrap()).unwrap();
        assert_eq!(again.listener_sets, s.listener_sets);
        let incidents = found(&s);
        assert_eq!(incidents.len(), 1, "{incidents:?}");
        assert!(
            !incidents[0].evidence.join("\n").contains("no Gateway extra"),
            "a ListenerSet is not a missing Gateway: {:?}",
            incidents[0].evidence
        );
        let aegis_model::FixAction::Manual { guidance } = &incidents[0].fix.action else { panic!("{:?}", incidents[0].fix.action) };
        assert!(guidance.contains("kubectl get listenersets -n shop"), "{guidance}");
    }
}
