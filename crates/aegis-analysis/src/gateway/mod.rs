//! The Gateway API (`gateway.networking.k8s.io/v1`): its routes (HTTPRoute, GRPCRoute, TLSRoute,
//! TCPRoute, UDPRoute), the Gateways they attach to and the ListenerSets that add listeners to a
//! Gateway — the fields the analysis reads, typed — and what makes them serve nothing.
//!
//! k8s-openapi has no Gateway API types (they are CRDs), so the few fields judged here are declared
//! here; every field not named is kept as it came (`other`), so a snapshot written back out loses
//! nothing.
//!
//! - [`routes`]: a route no parent accepted (`RouteNotAttached`), a route whose backends do not
//!   resolve (`RouteBackendMissing`).
//! - [`gateways`]: a Gateway its controller refused or cannot program, or whose GatewayClass does not
//!   exist or was refused by its controller (`GatewayNotReady`), and
//!   listeners that cannot serve — a certificate Secret missing, a port or hostname in conflict, a
//!   protocol not supported (`GatewayListenerInvalid`), on a Gateway or on a ListenerSet.
//! - [`listener_sets`]: a ListenerSet its Gateway does not take — refused by the controller, or
//!   pointed at a Gateway that is missing or does not allow ListenerSets (`GatewayListenerInvalid`).
//!
//! Everything here is judged from what the objects and their controllers' status say; no Gateway
//! controller is asked anything.

mod gateways;
mod listener_sets;
mod routes;

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub(crate) use gateways::{class_problem, gateway_problems};
pub(crate) use listener_sets::listener_set_problems;
pub(crate) use routes::route_problems;

/// The Gateway API's API group.
pub const GROUP: &str = "gateway.networking.k8s.io";

/// How long a controller may take to say something before silence, or a `False` it may still
/// correct, counts: controllers report within seconds.
const GRACE_SECONDS: i64 = 120;

/// An object's age at the snapshot's "now", in seconds; `None` when either is unknown.
fn age(index: &crate::signals::Index<'_>, meta: &ObjectMeta) -> Option<i64> {
    meta.creation_timestamp.as_ref().zip(index.observed_at()).map(|(c, now)| now.as_second() - c.0.as_second())
}

/// Whether a condition has held for [`GRACE_SECONDS`] at the snapshot's "now" (so when "now" is
/// unknown: a snapshot without a time judges what it holds).
fn settled(index: &crate::signals::Index<'_>, c: &Condition) -> bool {
    index.observed_at().is_none_or(|now| now.as_second() - c.last_transition_time.0.as_second() >= GRACE_SECONDS)
}

/// The route kinds judged. Their specs share every field the analysis reads (parentRefs, hostnames,
/// rules' backendRefs); what differs is what the Gateway does with a request it cannot route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RouteKind {
    #[serde(rename = "HTTPRoute")]
    Http,
    #[serde(rename = "GRPCRoute")]
    Grpc,
    #[serde(rename = "TLSRoute")]
    Tls,
    #[serde(rename = "TCPRoute")]
    Tcp,
    #[serde(rename = "UDPRoute")]
    Udp,
}

impl RouteKind {
    pub const ALL: [RouteKind; 5] = [RouteKind::Http, RouteKind::Grpc, RouteKind::Tls, RouteKind::Tcp, RouteKind::Udp];

    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
            RouteKind::Tls => "TLSRoute",
            RouteKind::Tcp => "TCPRoute",
            RouteKind::Udp => "UDPRoute",
        }
    }

    pub fn from_kind(kind: &str) -> Option<RouteKind> {
        RouteKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// What clients get for the requests a rule with an unresolved backend matches (the Gateway
    /// API's rule for each protocol).
    fn unresolved_answer(self) -> &'static str {
        match self {
            RouteKind::Http => "the Gateway answers 500 for the requests those rules match",
            RouteKind::Grpc => "the Gateway answers gRPC status UNAVAILABLE for the calls those rules match",
            RouteKind::Tls => "the Gateway rejects the connections those rules match",
            RouteKind::Tcp => "the Gateway rejects the TCP connections those rules would carry",
            RouteKind::Udp => "the Gateway drops the datagrams those rules would carry",
        }
    }

    /// What a route of this kind matches, for a sentence: its hostnames (SNI names for TLS; TCP and
    /// UDP routes have none and take what their listener's port receives).
    fn matched(self, hostnames: &[String]) -> String {
        let hosts = if hostnames.is_empty() { "any host".to_owned() } else { hostnames.join(", ") };
        match self {
            RouteKind::Http => format!("its rules for {hosts}"),
            RouteKind::Grpc => format!("its gRPC services for {hosts}"),
            RouteKind::Tls => format!("its TLS connections for {hosts}"),
            RouteKind::Tcp => "the TCP connections it carries".to_owned(),
            RouteKind::Udp => "the UDP traffic it carries".to_owned(),
        }
    }
}

impl fmt::Display for RouteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Gateway API route: an `HTTPRoute`, `GRPCRoute`, `TLSRoute`, `TCPRoute` or `UDPRoute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    #[serde(default)]
    pub api_version: String,
    pub kind: RouteKind,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: RouteSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RouteStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ParentRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RouteRule>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Where a route asks to attach: a Gateway (the default kind), optionally one listener of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<BackendRef>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A backend: a Service (the default kind) and its port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    #[serde(default)]
    pub parents: Vec<RouteParentStatus>,
}

/// What one parent's controller says about the route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    pub parent_ref: ParentRef,
    #[serde(default)]
    pub controller_name: String,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A Gateway API `GatewayClass` (cluster-scoped): the controller that implements it, and whether
/// that controller accepted it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClass {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: GatewayClassSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<GatewayClassStatus>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClassSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub controller_name: String,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClassStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A Gateway API `Gateway`: its listeners and what its controller says about it and them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: GatewaySpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<GatewayStatus>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway_class_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Listener>,
    /// Which ListenerSets may attach (the API's default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_listeners: Option<AllowedListeners>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A Gateway's `spec.allowedListeners`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowedListeners {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<ListenerNamespaces>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Where ListenerSets may come from: `from` is `Same`, `Selector`, `All` or `None` (the default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerNamespaces {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A Gateway API `ListenerSet`: listeners added to a Gateway (its `parentRef`) that allows it.
/// Its status has the Gateway's shape (conditions, and each listener's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerSet {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ListenerSetSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<GatewayStatus>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerSetSpec {
    #[serde(default)]
    pub parent_ref: ParentRef,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Listener>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The kinds that own listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnerKind {
    Gateway,
    ListenerSet,
}

impl OwnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::Gateway => "Gateway",
            OwnerKind::ListenerSet => "ListenerSet",
        }
    }
}

impl fmt::Display for OwnerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What owns listeners and reports on them: a Gateway or a ListenerSet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListenerOwner<'a> {
    pub kind: OwnerKind,
    pub metadata: &'a ObjectMeta,
    pub listeners: &'a [Listener],
    pub status: Option<&'a GatewayStatus>,
}

impl<'a> From<&'a Gateway> for ListenerOwner<'a> {
    fn from(g: &'a Gateway) -> Self {
        ListenerOwner { kind: OwnerKind::Gateway, metadata: &g.metadata, listeners: &g.spec.listeners, status: g.status.as_ref() }
    }
}

impl<'a> From<&'a ListenerSet> for ListenerOwner<'a> {
    fn from(l: &'a ListenerSet) -> Self {
        ListenerOwner { kind: OwnerKind::ListenerSet, metadata: &l.metadata, listeners: &l.spec.listeners, status: l.status.as_ref() }
    }
}

impl<'a> ListenerOwner<'a> {
    pub fn namespace(&self) -> &'a str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }

    /// The Secrets its listeners serve as certificates, as (listener, namespace, name). A reference
    /// of another kind (an implementation's own resource) is not a Secret and is left out.
    pub fn certificate_secrets(&self) -> impl Iterator<Item = (&'a Listener, &'a str, &'a str)> + 'a {
        let ns = self.namespace();
        self.listeners.iter().flat_map(move |l| {
            l.tls
                .iter()
                .flat_map(|t| t.certificate_refs.iter())
                .filter(|c| c.is_secret())
                .map(move |c| (l, c.namespace.as_deref().unwrap_or(ns), c.name.as_str()))
        })
    }
}

/// The routes of the snapshot attached to `kind` `ns/name` on a listener `on` admits (its
/// `sectionName`, `None` when the route names no listener), described ("HTTPRoute shop/store").
pub(crate) fn routes_on(
    index: &crate::signals::Index<'_>,
    kind: OwnerKind,
    ns: &str,
    name: &str,
    on: impl Fn(Option<&str>) -> bool,
) -> Vec<String> {
    index
        .snapshot
        .routes
        .iter()
        .filter(|r| {
            let route_ns = r.metadata.namespace.as_deref().unwrap_or_default();
            r.spec.parent_refs.iter().any(|p| p.targets(kind.as_str(), route_ns, ns, name) && on(p.section_name.as_deref()))
        })
        .map(Route::describe)
        .collect()
}

/// Every Gateway and ListenerSet of a snapshot, as what owns listeners.
pub(crate) fn listener_owners(s: &crate::Snapshot) -> impl Iterator<Item = ListenerOwner<'_>> {
    s.gateways.iter().map(ListenerOwner::from).chain(s.listener_sets.iter().map(ListenerOwner::from))
}

/// One listener: a port, a protocol, optionally a hostname and the certificates it serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    pub name: String,
    #[serde(default)]
    pub port: i32,
    #[serde(default)]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_refs: Vec<SecretRef>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A certificate reference: a Secret (the default kind) in the Gateway's namespace unless named.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl SecretRef {
    /// The API's defaults: group "" (core) and kind Secret.
    pub fn is_secret(&self) -> bool {
        self.group.as_deref().is_none_or(str::is_empty) && self.kind.as_deref().is_none_or(|k| k == "Secret")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<ListenerStatus>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// What the controller says about one listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    pub name: String,
    #[serde(default)]
    pub attached_routes: i32,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ParentRef {
    pub(crate) fn is_gateway(&self) -> bool {
        self.is_kind("Gateway")
    }

    /// Whether this names an object of the Gateway API's `kind` (Gateway when the kind is unset).
    fn is_kind(&self, kind: &str) -> bool {
        self.group.as_deref().is_none_or(|g| g == GROUP) && self.kind.as_deref().unwrap_or("Gateway") == kind
    }

    /// Whether a status entry's parentRef names this parent (the route's namespace standing in for
    /// an unset one).
    fn same(&self, other: &ParentRef, route_ns: &str) -> bool {
        self.name == other.name
            && self.namespace_or(route_ns) == other.namespace_or(route_ns)
            && self.section_name == other.section_name
            && self.port == other.port
            && self.kind.as_deref().unwrap_or("Gateway") == other.kind.as_deref().unwrap_or("Gateway")
    }

    pub(crate) fn namespace_or<'a>(&'a self, route_ns: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(route_ns)
    }

    /// Whether this parentRef (of a route in `route_ns`) names the `kind` (Gateway, ListenerSet)
    /// `ns/name`.
    fn targets(&self, kind: &str, route_ns: &str, ns: &str, name: &str) -> bool {
        self.is_kind(kind) && self.name == name && self.namespace_or(route_ns) == ns
    }

    fn describe(&self, route_ns: &str) -> String {
        let kind = self.kind.as_deref().unwrap_or("Gateway");
        let section = self.section_name.as_deref().map(|s| format!(" listener {s}")).unwrap_or_default();
        let port = self.port.map(|p| format!(" port {p}")).unwrap_or_default();
        format!("{kind} {}/{}{section}{port}", self.namespace_or(route_ns), self.name)
    }
}

impl Route {
    /// "TCPRoute shop/db", for evidence.
    fn describe(&self) -> String {
        format!(
            "{} {}/{}",
            self.kind,
            self.metadata.namespace.as_deref().unwrap_or_default(),
            self.metadata.name.as_deref().unwrap_or_default()
        )
    }
}

fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}
