//! A Gateway that serves nothing, or listeners of it that cannot serve, as its controller reports
//! them in the Gateway's status — and the same for a ListenerSet, whose status has the Gateway's
//! shape.
//!
//! - **GatewayNotReady**: the controller refused the Gateway (`Accepted: False`: invalid parameters,
//!   an address it cannot use, listeners none of which is valid) or cannot program it
//!   (`Programmed: False`: no address assigned, no resources). Every route on it reaches nothing.
//! - **GatewayListenerInvalid**: the Gateway runs, but listeners of it report `Accepted: False`,
//!   `Programmed: False`, `ResolvedRefs: False` (a certificate Secret missing or not permitted,
//!   route kinds it cannot serve) or `Conflicted: True` (two listeners on one port with the same
//!   hostname, or protocols that cannot share it): the routes that attach there reach nothing, or
//!   are served without their certificate. A ListenerSet refused or not programmed as a whole is
//!   this category too: its listeners are what is lost, the Gateway itself still serves.
//!
//! A condition counts once it has held for [`GRACE_SECONDS`]: controllers pass through `False`
//! (`Pending`) while they converge. A Gateway no controller has reported on (the API server's
//! default `Unknown`/`Pending`) is left to its routes' own `RouteNotAttached`: that is where the
//! silence hurts.

use aegis_model::{Category, Incident, ResourceRef, Severity};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::{GRACE_SECONDS, Gateway, Listener, ListenerOwner, OwnerKind, age, settled};
use crate::objects::{ObjectFinding, object_incident};
use crate::signals::Index;

/// The problems of a Gateway or ListenerSet, as one incident: those of the whole object first, else
/// its listeners'.
pub(crate) fn gateway_problems(index: &Index<'_>, owner: ListenerOwner<'_>) -> Option<Incident> {
    let status = owner.status;
    let kind = owner.kind;
    let ns = owner.metadata.namespace.clone().unwrap_or_default();
    let name = owner.metadata.name.clone().unwrap_or_default();
    let failing = |conditions: &[Condition], types: &[(&str, &str)]| -> Vec<Condition> {
        conditions.iter().filter(|c| types.iter().any(|(t, bad)| c.type_ == *t && c.status == *bad) && settled(index, c)).cloned().collect()
    };

    let whole = status.map(|s| failing(&s.conditions, &[("Accepted", "False"), ("Programmed", "False")])).unwrap_or_default();
    let mut listeners: Vec<(&str, Vec<Condition>, i32)> = status
        .iter()
        .flat_map(|s| s.listeners.iter())
        .map(|l| {
            let bad = failing(
                &l.conditions,
                &[("Accepted", "False"), ("Programmed", "False"), ("ResolvedRefs", "False"), ("Conflicted", "True")],
            );
            (l.name.as_str(), bad, l.attached_routes)
        })
        .filter(|(_, bad, _)| !bad.is_empty())
        .collect();
    let reported_listeners = !listeners.is_empty();
    let missing = missing_certificates(index, owner);
    for (listener, _) in &missing {
        if !listeners.iter().any(|(l, _, _)| l == listener) {
            let attached = status.iter().flat_map(|s| s.listeners.iter()).find(|l| l.name == *listener).map_or(0, |l| l.attached_routes);
            listeners.push((listener, Vec::new(), attached));
        }
    }
    listeners.sort_by(|a, b| a.0.cmp(b.0));
    if whole.is_empty() && listeners.is_empty() {
        return None;
    }

    let spec_of = |listener: &str| owner.listeners.iter().find(|l| l.name == listener);
    let mut evidence: Vec<String> =
        whole.iter().map(|c| format!("{kind} {name}: {} {} {}: {}", c.type_, c.status, c.reason, c.message)).collect();
    for (listener, bad, _) in &listeners {
        let about = spec_of(listener).map(describe).unwrap_or_else(|| format!("listener {listener} (not in spec)"));
        evidence.extend(bad.iter().map(|c| format!("{kind} {name}: {about}: {} {} {}: {}", c.type_, c.status, c.reason, c.message)));
        for (_, secret) in missing.iter().filter(|(l, _)| l == listener) {
            let secret_ns = secret.split('/').next().unwrap_or_default();
            evidence.push(format!("{kind} {name}: {about}: tls.certificateRefs {secret}: no such Secret in {secret_ns}"));
            let resolved = status
                .iter()
                .flat_map(|s| s.listeners.iter())
                .find(|l| l.name == *listener)
                .and_then(|l| super::condition(&l.conditions, "ResolvedRefs"))
                .is_some_and(|c| c.status == "True");
            if resolved {
                evidence.push(format!(
                    "{kind} {name}: {about}: its controller still reports ResolvedRefs True: it serves the certificate it loaded until it \
                     next reconciles or restarts"
                ));
            }
        }
    }
    // The routes that pay for it: on the whole object, or on a listener that cannot serve.
    let bad_listener = |section: Option<&str>| section.is_none_or(|s| listeners.iter().any(|(l, _, _)| *l == s));
    let hurt = super::routes_on(index, kind, &ns, &name, |section| !whole.is_empty() || bad_listener(section));
    if !hurt.is_empty() {
        evidence.push(format!("{kind} {name}: routes attached to what cannot serve: {}", hurt.join(", ")));
    }

    let reasons: Vec<&str> = dedup(
        whole
            .iter()
            .chain(listeners.iter().flat_map(|(_, bad, _)| bad.iter()))
            .map(|c| c.reason.as_str())
            .chain((!missing.is_empty()).then_some(MISSING_CERTIFICATE))
            .collect(),
    );
    let bad_names: Vec<&str> = listeners.iter().map(|(l, _, _)| *l).collect();
    let mut guidance: Vec<String> = Vec::new();
    for g in reasons.iter().filter_map(|reason| advice(reason, owner, &ns, &bad_names)) {
        if !guidance.contains(&g) {
            guidance.push(g);
        }
    }
    guidance.push(format!(
        "`kubectl describe {} {name} -n {ns}` shows every condition its controller reports; the controller's logs say more.",
        kind.as_str().to_lowercase()
    ));

    let reported = whole.iter().map(|c| format!("{} {} ({})", c.type_, c.status, c.reason)).collect::<Vec<_>>().join(" and ");
    let (category, severity, root_cause) = match (whole.is_empty(), kind) {
        (false, OwnerKind::Gateway) => (
            Category::GatewayNotReady,
            Severity::High,
            format!("Gateway {name} is not serving: its controller reports {reported} — every route on it reaches nothing."),
        ),
        // A ListenerSet refused as a whole: its listeners are lost, the Gateway still serves.
        (false, OwnerKind::ListenerSet) => (
            Category::GatewayListenerInvalid,
            if hurt.is_empty() { Severity::Medium } else { Severity::High },
            format!(
                "{kind} {name} adds no listener to its Gateway: its controller reports {reported} — every route on it reaches nothing."
            ),
        ),
        (true, _) if !reported_listeners => {
            let attached: i32 = listeners.iter().map(|(_, _, n)| *n).sum();
            let secrets: Vec<&str> = dedup(missing.iter().map(|(_, s)| s.as_str()).collect());
            (
                Category::GatewayListenerInvalid,
                if hurt.is_empty() && attached == 0 { Severity::Medium } else { Severity::High },
                format!(
                    "{kind} {name}'s listener{} {} serve{} certificate Secret{} {} that do{} not exist: TLS clients of {} are refused a \
                     certificate (or get the controller's default one) and drop the connection.",
                    if bad_names.len() == 1 { "" } else { "s" },
                    bad_names.join(", "),
                    if bad_names.len() == 1 { "s" } else { "" },
                    if secrets.len() == 1 { "" } else { "s" },
                    secrets.join(", "),
                    if secrets.len() == 1 { "es" } else { "" },
                    hosts(owner, &bad_names),
                ),
            )
        }
        (true, _) => {
            let attached: i32 = listeners.iter().map(|(_, _, n)| *n).sum();
            (
                Category::GatewayListenerInvalid,
                if hurt.is_empty() && attached == 0 { Severity::Medium } else { Severity::High },
                format!(
                    "{kind} {name} runs, but its listener{} {} cannot serve ({}): what attaches there reaches nothing or is served without \
                     its certificate.",
                    if bad_names.len() == 1 { "" } else { "s" },
                    bad_names.join(", "),
                    reasons.join(", ")
                ),
            )
        }
    };
    let finding = ObjectFinding {
        resource: ResourceRef { kind: kind.to_string(), namespace: ns.clone(), name: name.clone() },
        category,
        severity,
        root_cause,
        evidence,
        guidance: guidance.join(" "),
        confidence: 0.85,
    };
    Some(object_incident(index, finding))
}

/// A Gateway whose GatewayClass does not exist (judged only where the snapshot holds GatewayClasses:
/// one that could not read them says nothing) or was refused by its controller (`Accepted: False`
/// for [`GRACE_SECONDS`]): nothing programs the Gateway, so every route on it reaches nothing. A class
/// no controller has spoken for yet is left to the routes' own `RouteNotAttached`.
pub(crate) fn class_problem(index: &Index<'_>, gateway: &Gateway) -> Option<Incident> {
    let classes = &index.snapshot.gateway_classes;
    if classes.is_empty() {
        return None;
    }
    let ns = gateway.metadata.namespace.clone().unwrap_or_default();
    let name = gateway.metadata.name.clone().unwrap_or_default();
    let class = gateway.spec.gateway_class_name.as_str();
    let known = classes.iter().filter_map(|c| c.metadata.name.as_deref()).collect::<Vec<_>>().join(", ");
    let (root_cause, mut evidence, guidance) = match classes.iter().find(|c| c.metadata.name.as_deref() == Some(class)) {
        None => (
            format!(
                "Gateway {name} asks for GatewayClass {class}, which does not exist: no controller programs it, so every route on it reaches nothing."
            ),
            vec![format!("Gateway {name}: gatewayClassName {class}; GatewayClasses in the cluster: {known}")],
            format!(
                "Set spec.gatewayClassName of Gateway {name} to a class the cluster has ({known}; `kubectl get gatewayclass`: ACCEPTED True), or install the implementation that provides {class}."
            ),
        ),
        Some(c) => {
            let refused = c
                .status
                .iter()
                .flat_map(|s| s.conditions.iter())
                .find(|c| c.type_ == "Accepted" && c.status == "False" && settled(index, c))?;
            (
                format!(
                    "Gateway {name}'s GatewayClass {class} is refused by its controller ({}): nothing programs the Gateway, so every route on it reaches nothing.",
                    refused.reason
                ),
                vec![format!(
                    "GatewayClass {class} (controller {}): Accepted False {}: {}",
                    c.spec.controller_name, refused.reason, refused.message
                )],
                format!(
                    "Fix GatewayClass {class} as its controller asks (`kubectl describe gatewayclass {class}`: a parametersRef that does not resolve, a Gateway API version the controller does not support), or point Gateway {name} at a class that is accepted ({known})."
                ),
            )
        }
    };
    let hurt = super::routes_on(index, OwnerKind::Gateway, &ns, &name, |_| true);
    if !hurt.is_empty() {
        evidence.push(format!("Gateway {name}: routes attached to it: {}", hurt.join(", ")));
    }
    let finding = ObjectFinding {
        resource: ResourceRef { kind: OwnerKind::Gateway.to_string(), namespace: ns, name },
        category: Category::GatewayNotReady,
        severity: Severity::High,
        root_cause,
        evidence,
        guidance,
        confidence: 0.85,
    };
    Some(object_incident(index, finding))
}

/// The reason the Gateway API gives a listener whose certificate Secret does not exist: what a
/// controller would report, so the advice is the same whether it did or the snapshot shows it.
const MISSING_CERTIFICATE: &str = "InvalidCertificateRef";

/// Certificate Secrets the owner's listeners name that the snapshot shows do not exist, as
/// (listener, "namespace/name"). Judged only in namespaces whose Secrets the snapshot holds (a file
/// with them: the operator and a live snapshot never read Secrets, and absent from a snapshot
/// without any says nothing), and only once the owner has existed for the grace (a cert-manager
/// Certificate writes its Secret a little after the Gateway that asks for it).
fn missing_certificates<'a>(index: &Index<'_>, owner: ListenerOwner<'a>) -> Vec<(&'a str, String)> {
    if age(index, owner.metadata).is_some_and(|a| a < GRACE_SECONDS) {
        return Vec::new();
    }
    owner
        .certificate_secrets()
        .filter(|(_, ns, name)| index.snapshot.secret_exists(ns, name) == Some(false))
        .map(|(l, ns, name)| (l.name.as_str(), format!("{ns}/{name}")))
        .collect()
}

/// The hostnames of these listeners, or "every host" when one has none.
fn hosts(owner: ListenerOwner<'_>, listeners: &[&str]) -> String {
    let of: Vec<Option<&str>> =
        owner.listeners.iter().filter(|l| listeners.contains(&l.name.as_str())).map(|l| l.hostname.as_deref()).collect();
    match of.iter().all(Option::is_some) {
        true => of.into_iter().flatten().collect::<Vec<_>>().join(", "),
        false => "every host".to_owned(),
    }
}

fn dedup(mut v: Vec<&str>) -> Vec<&str> {
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|r| seen.insert(*r));
    v
}

/// "listener https (HTTPS port 443, host shop.example.com)".
fn describe(l: &Listener) -> String {
    let host = l.hostname.as_deref().map(|h| format!(", host {h}")).unwrap_or_default();
    format!("listener {} ({} port {}{host})", l.name, l.protocol, l.port)
}

/// What to change, for one reason the Gateway API defines (others get the generic pointer).
fn advice(reason: &str, owner: ListenerOwner<'_>, ns: &str, listeners: &[&str]) -> Option<String> {
    let name = owner.metadata.name.as_deref().unwrap_or_default();
    let kind = owner.kind;
    let certificates: Vec<String> = owner
        .listeners
        .iter()
        .filter(|l| listeners.contains(&l.name.as_str()))
        .flat_map(|l| l.tls.iter().flat_map(|t| t.certificate_refs.iter()))
        .map(|c| format!("{}/{}", c.namespace.as_deref().unwrap_or(ns), c.name))
        .collect();
    Some(match reason {
        "InvalidCertificateRef" => format!(
            "Create the TLS Secret{} the listener names ({}) — `kubectl create secret tls NAME --cert=… --key=… -n {ns}` — or point its \
             tls.certificateRefs at one that exists and holds tls.crt and tls.key.",
            if certificates.len() == 1 { "" } else { "s" },
            if certificates.is_empty() { "see tls.certificateRefs".to_owned() } else { certificates.join(", ") }
        ),
        "RefNotPermitted" => format!(
            "A reference to another namespace needs a ReferenceGrant in that namespace that allows Gateways from {ns} to refer to it."
        ),
        "InvalidRouteKinds" => {
            "The listener's allowedRoutes.kinds names route kinds its controller does not serve: name only supported kinds.".to_owned()
        }
        "HostnameConflict" => format!(
            "Listeners of {kind} {name} on one port share a hostname: give each its own hostname (or port), or merge them into one."
        ),
        "ProtocolConflict" => format!("Listeners of {kind} {name} on one port ask for protocols that cannot share it: move one to another port."),
        "PortUnavailable" => "The listener's port is in use or not allowed by the implementation: choose another port.".to_owned(),
        "UnsupportedProtocol" => {
            "The controller does not implement the listener's protocol (its GatewayClass says which controller): use a protocol it supports."
                .to_owned()
        }
        "InvalidParameters" => {
            "The Gateway's infrastructure.parametersRef (or its GatewayClass's parametersRef) names something missing or invalid: fix or remove it."
                .to_owned()
        }
        "UnsupportedAddress" | "AddressNotAssigned" | "AddressNotUsable" => format!(
            "Gateway {name} cannot get the address it needs: remove or correct spec.addresses, or check that the cluster can provide one \
             (a load balancer implementation for a LoadBalancer Service)."
        ),
        "NoResources" => "The implementation lacks the resources to run the Gateway (its data-plane pods or load balancer): see its controller.".to_owned(),
        "ListenersNotValid" => "No listener is valid: the listener conditions in the evidence say why.".to_owned(),
        "NotAllowed" => format!(
            "The parent Gateway does not allow {kind} {name}: set its spec.allowedListeners.namespaces.from to Same (a ListenerSet in the \
             Gateway's namespace), All, or Selector with a selector that matches {ns}; the default is None."
        ),
        "ParentNotAccepted" => {
            format!("The parent Gateway of {kind} {name} is itself not accepted: fix the Gateway first (`kubectl describe gateway`).")
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Snapshot;

    const CAPTURED: &str = "2026-11-30T12:00:00Z";
    const LONG_AGO: &str = "2026-11-30T11:00:00Z";

    fn cond(type_: &str, status: &str, reason: &str, message: &str, since: &str) -> String {
        format!(
            "{{type: {type_}, status: \"{status}\", reason: {reason}, message: \"{message}\", lastTransitionTime: \"{since}\", observedGeneration: 1}}"
        )
    }

    /// Gateway `public` in `shop` with listeners http (80) and https (443, Secret shop-tls), its
    /// status (the Gateway's conditions `gateway`, listener https's `https`; listener http is
    /// healthy), and HTTPRoute `store` on listener `section`.
    fn snapshot(gateway: &[String], https: &[String], section: &str) -> Snapshot {
        snapshot_with(gateway, https, section, &[], LONG_AGO)
    }

    /// The same, with Secrets of these names in `shop` and the Gateway created at `created`.
    fn snapshot_with(gateway: &[String], https: &[String], section: &str, secrets: &[&str], created: &str) -> Snapshot {
        let secrets: String = secrets
            .iter()
            .map(|n| {
                format!(
                    "- {{apiVersion: v1, kind: Secret, metadata: {{name: {n}, namespace: shop}}, data: {{tls.crt: \"\", tls.key: \"\"}}}}\n"
                )
            })
            .collect();
        let mut http = healthy(&["Accepted", "Programmed", "ResolvedRefs"]);
        http.push(cond("Conflicted", "False", "NoConflicts", "ok", LONG_AGO));
        let text = format!(
            r#"apiVersion: v1
kind: List
metadata: {{annotations: {{aegis.io/captured-at: "{CAPTURED}"}}}}
items:
- apiVersion: gateway.networking.k8s.io/v1
  kind: Gateway
  metadata: {{name: public, namespace: shop, creationTimestamp: "{created}"}}
  spec:
    gatewayClassName: eg
    listeners:
    - {{name: http, port: 80, protocol: HTTP}}
    - {{name: https, port: 443, protocol: HTTPS, hostname: shop.example.com, tls: {{mode: Terminate, certificateRefs: [{{name: shop-tls}}]}}}}
  status:
    conditions: [{}]
    listeners:
    - {{name: http, attachedRoutes: 0, supportedKinds: [{{kind: HTTPRoute}}], conditions: [{}]}}
    - {{name: https, attachedRoutes: 1, supportedKinds: [{{kind: HTTPRoute}}], conditions: [{}]}}
- {{apiVersion: gateway.networking.k8s.io/v1, kind: HTTPRoute, metadata: {{name: store, namespace: shop}}, spec: {{parentRefs: [{{name: public, sectionName: {section}}}]}}}}
{secrets}"#,
            gateway.join(", "),
            http.join(", "),
            https.join(", ")
        );
        Snapshot::from_text(&text).unwrap()
    }

    /// Conditions of these types, each True.
    fn healthy(types: &[&str]) -> Vec<String> {
        types.iter().map(|t| cond(t, "True", t, "ok", LONG_AGO)).collect()
    }

    fn healthy_gateway() -> Vec<String> {
        healthy(&["Accepted", "Programmed"])
    }

    fn healthy_https() -> Vec<String> {
        healthy(&["Accepted", "Programmed", "ResolvedRefs"])
    }

    fn found(s: &Snapshot) -> Vec<Incident> {
        let index = Index::new(s);
        s.gateways.iter().filter_map(|g| gateway_problems(&index, g.into())).collect()
    }

    #[test]
    fn a_gateway_accepted_and_programmed_with_valid_listeners_raises_nothing() {
        let s = snapshot(&healthy_gateway(), &healthy_https(), "https");
        assert!(found(&s).is_empty(), "{:?}", found(&s));
    }

    #[test]
    fn a_listener_whose_certificate_secret_is_missing_names_the_secret_and_the_route_on_it() {
        let mut https = healthy_https();
        https[2] = cond("ResolvedRefs", "False", "InvalidCertificateRef", "Secret shop/shop-tls does not exist.", LONG_AGO);
        https[1] = cond("Programmed", "False", "Invalid", "Listener is invalid, see other Conditions for details.", LONG_AGO);
        let found = found(&snapshot(&healthy_gateway(), &https, "https"));
        assert_eq!(found.len(), 1, "{found:?}");
        let i = &found[0];
        assert_eq!((i.category, i.resource.kind.as_str(), i.severity), (Category::GatewayListenerInvalid, "Gateway", Severity::High));
        assert!(i.root_cause.contains("listener https"), "{}", i.root_cause);
        let evidence = i.evidence.join("\n");
        assert!(
            evidence.contains("listener https (HTTPS port 443, host shop.example.com): ResolvedRefs False InvalidCertificateRef"),
            "{evidence}"
        );
        assert!(evidence.contains("HTTPRoute shop/store"), "{evidence}");
        let aegis_model::FixAction::Manual { guidance } = &i.fix.action else { panic!("{:?}", i.fix.action) };
        assert!(guidance.contains("shop/shop-tls"), "{guidance}");
    }

    #[test]
    fn a_listener_in_conflict_is_reported_and_a_route_on_another_listener_is_not_counted_as_hurt() {
        let mut https = healthy_https();
        https.push(cond("Conflicted", "True", "HostnameConflict", "Listener hostname conflicts with listener web.", LONG_AGO));
        let found = found(&snapshot(&healthy_gateway(), &https, "http"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].category, Category::GatewayListenerInvalid);
        assert!(!found[0].evidence.join("\n").contains("HTTPRoute shop/store"), "{:?}", found[0].evidence);
        assert_eq!(found[0].severity, Severity::High, "the listener still counts a route attached");
    }

    #[test]
    fn a_gateway_its_controller_cannot_program_is_not_ready_and_every_route_on_it_is_hurt() {
        let mut gateway = healthy_gateway();
        gateway[1] = cond("Programmed", "False", "AddressNotAssigned", "No addresses have been assigned to the Gateway", LONG_AGO);
        let found = found(&snapshot(&gateway, &healthy_https(), "http"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].category, Category::GatewayNotReady);
        assert!(found[0].root_cause.contains("Programmed False (AddressNotAssigned)"), "{}", found[0].root_cause);
        assert!(found[0].evidence.join("\n").contains("HTTPRoute shop/store"), "{:?}", found[0].evidence);
    }

    #[test]
    fn a_false_condition_younger_than_the_grace_and_a_gateway_no_controller_reported_on_raise_nothing() {
        let mut fresh = healthy_gateway();
        fresh[1] = cond("Programmed", "False", "Pending", "Waiting for an address", "2026-11-30T11:59:30Z");
        assert!(found(&snapshot(&fresh, &healthy_https(), "http")).is_empty());
        let pending: Vec<String> = ["Accepted", "Programmed"]
            .iter()
            .map(|t| cond(t, "Unknown", "Pending", "Waiting for controller", "1970-01-01T00:00:00Z"))
            .collect();
        let s = snapshot(&pending, &healthy_https(), "http");
        assert!(found(&s).is_empty(), "silence is judged on the routes, not the Gateway: {:?}", found(&s));
    }

    #[test]
    fn a_certificate_secret_absent_from_a_snapshot_that_holds_the_namespaces_secrets_is_reported_though_the_controller_says_resolved() {
        let s = snapshot_with(&healthy_gateway(), &healthy_https(), "https", &["db-password"], LONG_AGO);
        let found = found(&s);
        assert_eq!(found.len(), 1, "{found:?}");
        let i = &found[0];
        assert_eq!((i.category, i.severity), (Category::GatewayListenerInvalid, Severity::High));
        assert!(i.root_cause.contains("listener https serves certificate Secret shop/shop-tls that does not exist"), "{}", i.root_cause);
        assert!(i.root_cause.contains("shop.example.com"), "{}", i.root_cause);
        let evidence = i.evidence.join("\n");
        assert!(evidence.contains("tls.certificateRefs shop/shop-tls: no such Secret in shop"), "{evidence}");
        assert!(evidence.contains("still reports ResolvedRefs True"), "{evidence}");
        assert!(evidence.contains("HTTPRoute shop/store"), "{evidence}");
        let aegis_model::FixAction::Manual { guidance } = &i.fix.action else { panic!("{:?}", i.fix.action) };
        assert!(guidance.contains("kubectl create secret tls") && guidance.contains("shop/shop-tls"), "{guidance}");
    }

    #[test]
    fn a_missing_certificate_is_reported_on_a_gateway_no_controller_has_reported_on() {
        let mut s = snapshot_with(&healthy_gateway(), &healthy_https(), "https", &["db-password"], LONG_AGO);
        s.gateways[0].status = None;
        let found = found(&s);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(!found[0].evidence.join("\n").contains("ResolvedRefs"), "no controller spoke: {:?}", found[0].evidence);
        assert_eq!(found[0].severity, Severity::High, "a route attaches to the listener");
    }

    #[test]
    fn a_missing_certificate_the_controller_also_reports_is_one_incident_in_the_controllers_words() {
        let mut https = healthy_https();
        https[2] = cond("ResolvedRefs", "False", "InvalidCertificateRef", "Secret shop/shop-tls does not exist.", LONG_AGO);
        let found = found(&snapshot_with(&healthy_gateway(), &https, "https", &["db-password"], LONG_AGO));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].root_cause.contains("runs, but its listener https cannot serve (InvalidCertificateRef)"),
            "{}",
            found[0].root_cause
        );
        let evidence = found[0].evidence.join("\n");
        assert!(evidence.contains("ResolvedRefs False InvalidCertificateRef") && evidence.contains("no such Secret in shop"), "{evidence}");
    }

    #[test]
    fn a_certificate_is_not_judged_missing_when_it_exists_when_no_secret_is_held_or_while_the_gateway_is_new() {
        let exists = snapshot_with(&healthy_gateway(), &healthy_https(), "https", &["db-password", "shop-tls"], LONG_AGO);
        assert!(found(&exists).is_empty(), "{:?}", found(&exists));
        let none_held = snapshot_with(&healthy_gateway(), &healthy_https(), "https", &[], LONG_AGO);
        assert!(found(&none_held).is_empty(), "a snapshot without Secrets says nothing about them");
        let new = snapshot_with(&healthy_gateway(), &healthy_https(), "https", &["db-password"], "2026-11-30T11:59:30Z");
        assert!(found(&new).is_empty(), "cert-manager writes the Secret shortly after the Gateway: {:?}", found(&new));
    }

    fn class(name: &str, accepted: &str, reason: &str) -> crate::gateway::GatewayClass {
        serde_json::from_value(serde_json::json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": name}, "spec": {"controllerName": "example.com/gateway"},
            "status": {"conditions": [{"type": "Accepted", "status": accepted, "reason": reason, "message": "see the controller",
                "lastTransitionTime": LONG_AGO}]}}))
        .unwrap()
    }

    fn judged(s: &Snapshot) -> Vec<Incident> {
        let index = Index::new(s);
        s.gateways.iter().filter_map(|g| class_problem(&index, g).or_else(|| gateway_problems(&index, g.into()))).collect()
    }

    #[test]
    fn a_gateway_of_a_class_the_cluster_does_not_have_is_not_ready_and_names_the_classes_there() {
        let mut s = snapshot(&healthy_gateway(), &healthy_https(), "https");
        s.gateway_classes = vec![class("envoy", "True", "Accepted")];
        let found = judged(&s);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].category, found[0].severity), (Category::GatewayNotReady, Severity::High));
        assert!(found[0].root_cause.contains("asks for GatewayClass eg, which does not exist"), "{}", found[0].root_cause);
        let evidence = found[0].evidence.join("\n");
        assert!(evidence.contains("GatewayClasses in the cluster: envoy") && evidence.contains("HTTPRoute shop/store"), "{evidence}");
    }

    #[test]
    fn a_gateway_whose_class_its_controller_refused_is_not_ready_with_the_controllers_reason() {
        let mut s = snapshot(&healthy_gateway(), &healthy_https(), "https");
        s.gateway_classes = vec![class("eg", "False", "InvalidParameters")];
        let found = judged(&s);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].category, Category::GatewayNotReady);
        assert!(
            found[0].root_cause.contains("GatewayClass eg is refused by its controller (InvalidParameters)"),
            "{}",
            found[0].root_cause
        );
    }

    #[test]
    fn an_accepted_or_pending_class_and_a_snapshot_without_classes_raise_nothing_for_a_healthy_gateway() {
        for classes in [vec![class("eg", "True", "Accepted")], vec![class("eg", "Unknown", "Pending")], vec![]] {
            let mut s = snapshot(&healthy_gateway(), &healthy_https(), "https");
            s.gateway_classes = classes;
            assert!(judged(&s).is_empty(), "{:?}", judged(&s));
        }
    }
}
