//! The API-server edge: reading a namespace into a [`Snapshot`], and applying a fix's [`Patch`].
//!
//! [`apply_patch`] is the only way AEGIS changes a workload: the shadow and production call the same
//! function with the same typed patch, so what was verified is what is applied.

pub mod apply;
pub mod cache;
pub mod client;
pub mod health;
pub mod isolation;
pub mod shadow;

pub use apply::{Applied, apply_fix};

use aegis_analysis::Snapshot;
use aegis_analysis::gateway::{Gateway, GatewayClass, Route, RouteKind};
use aegis_analysis::snapshot::KeysOnly;
use aegis_model::{Patch, PatchType};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Event, Node, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DynamicObject, ListParams, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Resource};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("listing {kind} in {scope}: {source}")]
    List { kind: &'static str, scope: String, source: kube::Error },
    #[error("patching {target}: {source}")]
    Patch { target: String, source: kube::Error },
    #[error("{0}")]
    Invalid(String),
    #[error("{target} kept changing under the patch ({attempts} conflicts)")]
    Contended { target: String, attempts: u32 },
    /// The workload cannot be copied into an isolated shadow (host namespaces, hostPath, privileged).
    #[error("{0}")]
    NotShadowable(String),
    #[error("{what}: {source}")]
    Request { what: String, source: kube::Error },
}

/// The reporting controller of the Events AEGIS publishes; the analysis never reads them as evidence.
pub const EVENT_REPORTER: &str = "aegis-operator";

/// Which objects to read.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `None`: all namespaces (`-A`).
    pub namespace: Option<String>,
    /// A label selector for pods and workloads (`-l`).
    pub label_selector: Option<String>,
}

impl Scope {
    fn describe(&self) -> String {
        self.namespace.clone().map(|n| format!("namespace {n}")).unwrap_or_else(|| "all namespaces".into())
    }
}

async fn list<K>(client: &Client, scope: &Scope, selector: bool, kind: &'static str) -> Result<Vec<K>, K8sError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = match &scope.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut lp = ListParams::default();
    if selector && let Some(s) = &scope.label_selector {
        lp = lp.labels(s);
    }
    let mut items = api.list(&lp).await.map(|l| l.items).map_err(|source| K8sError::List { kind, scope: scope.describe(), source })?;
    without_managed_fields(&mut items);
    Ok(items)
}

/// Drop server-side apply's bookkeeping, as `kubectl get -o yaml` does: no analyzer reads it, and it
/// is a good part of every object's size (in snapshots users read, and in the operator's memory).
fn without_managed_fields<K: Resource>(items: &mut [K]) {
    for item in items {
        item.meta_mut().managed_fields = None;
    }
}

/// A cluster-scoped kind, where RBAC allows: a refusal leaves it out (what needs it then judges nothing).
async fn cluster_list<K>(client: &Client) -> Vec<K>
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    try_cluster_list(client, "").await.unwrap_or_default()
}

/// A cluster-scoped kind, or why it cannot be read: a kind the API server does not serve (404) is
/// empty, any other failure an error naming `kind`.
async fn try_cluster_list<K>(client: &Client, kind: &'static str) -> Result<Vec<K>, K8sError>
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let mut items = match Api::<K>::all(client.clone()).list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(e)) if e.code == 404 => Vec::new(),
        Err(source) => return Err(K8sError::List { kind, scope: "the cluster".into(), source }),
    };
    without_managed_fields(&mut items);
    Ok(items)
}

/// The Gateway API kinds AEGIS reads (CRDs: read as dynamic objects, typed by the analysis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GatewayKind {
    Route(RouteKind),
    Gateway,
    ListenerSet,
}

impl GatewayKind {
    pub const ALL: [GatewayKind; 7] = [
        GatewayKind::Route(RouteKind::Http),
        GatewayKind::Route(RouteKind::Grpc),
        GatewayKind::Route(RouteKind::Tls),
        GatewayKind::Route(RouteKind::Tcp),
        GatewayKind::Route(RouteKind::Udp),
        GatewayKind::Gateway,
        GatewayKind::ListenerSet,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GatewayKind::Route(r) => r.as_str(),
            GatewayKind::Gateway => "Gateway",
            GatewayKind::ListenerSet => "ListenerSet",
        }
    }

    pub fn is_route(self) -> bool {
        matches!(self, GatewayKind::Route(_))
    }

    pub fn from_name(kind: &str) -> Option<GatewayKind> {
        GatewayKind::ALL.into_iter().find(|k| k.name() == kind)
    }

    pub fn resource(self) -> ApiResource {
        let plural = match self {
            GatewayKind::Route(RouteKind::Http) => "httproutes",
            GatewayKind::Route(RouteKind::Grpc) => "grpcroutes",
            GatewayKind::Route(RouteKind::Tls) => "tlsroutes",
            GatewayKind::Route(RouteKind::Tcp) => "tcproutes",
            GatewayKind::Route(RouteKind::Udp) => "udproutes",
            GatewayKind::Gateway => "gateways",
            GatewayKind::ListenerSet => "listenersets",
        };
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GATEWAY_GROUP, "v1", self.name()), plural)
    }

    /// This kind's API in `namespace` (`None`: every namespace).
    pub fn api(self, client: &Client, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.resource()),
            None => Api::all_with(client.clone(), &self.resource()),
        }
    }
}

/// The Gateway API kinds served at `v1` and listable in every target (`namespaces`; empty:
/// cluster-wide): only those may the operator's caches wait for. Kinds come and go with the API's
/// version (GRPCRoute reached v1 in Gateway API 1.1, TLSRoute in 1.5; TCPRoute, UDPRoute and
/// ListenerSet are served at v1 by 1.6's CRDs), so each is asked on its own: a cluster without
/// TLSRoutes still has its HTTPRoutes judged.
pub async fn readable_gateway_kinds(client: &Client, namespaces: &[String]) -> Vec<GatewayKind> {
    let targets: Vec<Option<&str>> = if namespaces.is_empty() { vec![None] } else { namespaces.iter().map(|n| Some(n.as_str())).collect() };
    let mut readable = Vec::new();
    for kind in GatewayKind::ALL {
        let mut all = true;
        for ns in &targets {
            all &= kind.api(client, *ns).list_metadata(&ListParams::default().limit(1)).await.is_ok();
        }
        if all {
            readable.push(kind);
        }
    }
    readable
}

/// Gateway API objects of `kind` in scope, typed as the analysis reads them. The API is a CRD: where it
/// is not installed (404) or RBAC refuses it, there are none to judge. An object that cannot be read is
/// an error, never one route fewer.
async fn gateway_list<T: serde::de::DeserializeOwned>(client: &Client, scope: &Scope, kind: GatewayKind) -> Result<Vec<T>, K8sError> {
    dynamic_list(kind.api(client, scope.namespace.as_deref()), kind.name(), scope.describe()).await
}

/// Every object `api` lists, as `kind` of the Gateway API typed by the analysis (see [`gateway_list`]).
async fn dynamic_list<T: serde::de::DeserializeOwned>(
    api: Api<DynamicObject>,
    kind: &'static str,
    scope: String,
) -> Result<Vec<T>, K8sError> {
    let items = match api.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 403 => return Ok(Vec::new()),
        Err(source) => return Err(K8sError::List { kind, scope, source }),
    };
    items
        .into_iter()
        .map(|mut o| {
            lean_gateway_object(kind, &mut o);
            let name = o.metadata.name.clone().unwrap_or_default();
            serde_json::to_value(o)
                .and_then(serde_json::from_value)
                .map_err(|e| K8sError::Invalid(format!("{kind} {name} cannot be read: {e}")))
        })
        .collect()
}

/// A Gateway API object as the analysis reads it: without `managedFields`, and with its kind named
/// (the items of a list do not carry it, and a route's kind is part of its type).
pub(crate) fn lean_gateway_object(kind: &str, o: &mut DynamicObject) {
    o.metadata.managed_fields = None;
    o.types = Some(kube::core::TypeMeta { api_version: format!("{GATEWAY_GROUP}/v1"), kind: kind.to_owned() });
}

/// The API resource of GatewayClasses (cluster-scoped; not a [`GatewayKind`], which are namespaced).
pub fn gateway_class_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GATEWAY_GROUP, "v1", "GatewayClass"), "gatewayclasses")
}

/// The cluster's GatewayClasses, where the API serves them and RBAC allows (none otherwise: then no
/// Gateway's class is judged missing). One that cannot be read is an error, never one class fewer.
async fn gateway_classes(client: &Client) -> Result<Vec<GatewayClass>, K8sError> {
    dynamic_list(Api::all_with(client.clone(), &gateway_class_resource()), "GatewayClass", "the cluster".into()).await
}

/// Every route kind's objects in scope.
async fn gateway_routes(client: &Client, scope: &Scope) -> Result<Vec<Route>, K8sError> {
    let lists = futures::future::try_join_all(RouteKind::ALL.map(|k| gateway_list::<Route>(client, scope, GatewayKind::Route(k)))).await?;
    Ok(lists.into_iter().flatten().collect())
}

/// Read a namespace (or all) into a snapshot: every list at once. ConfigMap values are dropped as they
/// arrive (only names and keys are kept); Secrets are not read here ([`secret_keys`] adds them). Nodes and IngressClasses are read
/// where RBAC allows; a refusal leaves them out.
pub async fn snapshot(client: &Client, scope: &Scope) -> Result<Snapshot, K8sError> {
    // Workloads and their history (a StatefulSet's or DaemonSet's revisions carry the pod template's
    // labels, so the selector narrows them as it does the pods), then what surrounds them.
    let workloads = async {
        tokio::try_join!(
            list::<Pod>(client, scope, true, "Pod"),
            list::<Deployment>(client, scope, true, "Deployment"),
            list::<ReplicaSet>(client, scope, true, "ReplicaSet"),
            list::<StatefulSet>(client, scope, true, "StatefulSet"),
            list::<ControllerRevision>(client, scope, true, "ControllerRevision"),
            list::<DaemonSet>(client, scope, true, "DaemonSet"),
            list::<Job>(client, scope, true, "Job"),
            list::<CronJob>(client, scope, true, "CronJob"),
        )
    };
    let around = async {
        tokio::try_join!(
            list::<Service>(client, scope, false, "Service"),
            list::<Endpoints>(client, scope, false, "Endpoints"),
            list::<Event>(client, scope, false, "Event"),
            list::<PersistentVolumeClaim>(client, scope, false, "PersistentVolumeClaim"),
            list::<PodDisruptionBudget>(client, scope, false, "PodDisruptionBudget"),
            list::<Ingress>(client, scope, false, "Ingress"),
            list::<HorizontalPodAutoscaler>(client, scope, false, "HorizontalPodAutoscaler"),
            list::<NetworkPolicy>(client, scope, false, "NetworkPolicy"),
            list::<ConfigMap>(client, scope, false, "ConfigMap"),
            gateway_routes(client, scope),
            gateway_list(client, scope, GatewayKind::Gateway),
            gateway_list(client, scope, GatewayKind::ListenerSet),
        )
    };
    let cluster = async {
        tokio::join!(
            cluster_list::<Node>(client),
            cluster_list::<IngressClass>(client),
            cluster_list::<ValidatingWebhookConfiguration>(client),
            cluster_list::<MutatingWebhookConfiguration>(client),
            gateway_classes(client)
        )
    };
    let (workloads, around, (nodes, ingress_classes, validating_webhooks, mutating_webhooks, gateway_classes)) =
        tokio::join!(workloads, around, cluster);
    let (pods, deployments, replica_sets, stateful_sets, controller_revisions, daemon_sets, jobs, cron_jobs) = workloads?;
    let (
        services,
        endpoints,
        mut events,
        persistent_volume_claims,
        pod_disruption_budgets,
        ingresses,
        horizontal_pod_autoscalers,
        network_policies,
        config_maps,
        routes,
        gateways,
        listener_sets,
    ) = around?;
    without_own_events(&mut events);
    let config_maps = config_maps.into_iter().map(keys_only).collect();
    let mut snapshot = Snapshot {
        nodes,
        pods,
        deployments,
        replica_sets,
        stateful_sets,
        controller_revisions,
        daemon_sets,
        jobs,
        cron_jobs,
        services,
        endpoints,
        events,
        persistent_volume_claims,
        pod_disruption_budgets,
        ingresses,
        ingress_classes,
        horizontal_pod_autoscalers,
        network_policies,
        validating_webhooks,
        mutating_webhooks,
        routes,
        gateways,
        listener_sets,
        parent_gateways: Vec::new(),
        gateway_classes: gateway_classes?,
        config_maps,
        // Secrets are listed only when asked ([`secret_keys`]): the operator never reads them (its
        // ClusterRole has no `list` on them), and an SRE's snapshot holds them only by choice.
        secrets: Vec::new(),
        other_kinds: Default::default(),
        captured_at: Some(jiff::Timestamp::now()),
    };
    if let Some(own) = &scope.namespace {
        snapshot.parent_gateways = parent_gateways(client, &snapshot.parent_gateway_namespaces(own)).await?;
    }
    Ok(snapshot)
}

/// Every Gateway of these namespaces (those a namespace's routes and ListenerSets name as parents),
/// at once. A namespace AEGIS may not read gives none: its Gateways are then judged by their
/// controller's status only.
async fn parent_gateways(client: &Client, namespaces: &std::collections::BTreeSet<String>) -> Result<Vec<Gateway>, K8sError> {
    let lists = futures::future::try_join_all(namespaces.iter().map(|ns| {
        let scope = Scope { namespace: Some(ns.clone()), label_selector: None };
        async move { gateway_list::<Gateway>(client, &scope, GatewayKind::Gateway).await }
    }))
    .await?;
    Ok(lists.into_iter().flatten().collect())
}

/// The Secrets in scope, as names and keys: what `aegis snapshot --include-secrets` adds, for the
/// analyzers that judge Secrets (an Ingress's or a Gateway listener's TLS Secret that does not exist,
/// Secrets nothing uses). Read a page of 100 at a time and stripped on arrival, so no more than a
/// page of values is ever held (Helm keeps whole releases in Secrets). A refusal is an error: the
/// caller asked for Secrets, and a snapshot silently without them would judge nothing.
pub async fn secret_keys(client: &Client, scope: &Scope) -> Result<Vec<KeysOnly>, K8sError> {
    let api: Api<Secret> = match &scope.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut out = Vec::new();
    let mut lp = ListParams::default().limit(100);
    loop {
        let page = api.list(&lp).await.map_err(|source| K8sError::List { kind: "Secret", scope: scope.describe(), source })?;
        out.extend(page.items.into_iter().map(|s| keys_of(s.metadata, s.data.unwrap_or_default().into_keys())));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = lp.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// AEGIS's own Events (the operator's transitions) are not evidence about the workload.
pub(crate) fn without_own_events(events: &mut Vec<Event>) {
    events.retain(|e| e.reporting_component.as_deref() != Some(EVENT_REPORTER));
}

/// A ConfigMap's name and keys, never its values.
pub(crate) fn keys_only(c: ConfigMap) -> KeysOnly {
    keys_of(c.metadata, c.data.unwrap_or_default().into_keys().chain(c.binary_data.unwrap_or_default().into_keys()))
}

/// An object's name and these keys, sorted: what a snapshot keeps of a ConfigMap or a Secret.
fn keys_of(meta: kube::api::ObjectMeta, keys: impl Iterator<Item = String>) -> KeysOnly {
    let mut keys: Vec<String> = keys.collect();
    keys.sort();
    KeysOnly { namespace: meta.namespace.unwrap_or_default(), name: meta.name.unwrap_or_default(), keys }
}

/// The API resource of a kind AEGIS reads or patches by name (workloads, Services, Pods, ConfigMaps).
pub fn api_resource(kind: &str) -> Result<ApiResource, K8sError> {
    let (group, version) = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => ("apps", "v1"),
        "Job" | "CronJob" => ("batch", "v1"),
        "Service" | "Pod" | "ConfigMap" => ("", "v1"),
        other => return Err(K8sError::Invalid(format!("AEGIS does not patch {other} objects"))),
    };
    Ok(ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind)))
}

/// The API resource of any kind an incident can be about, to read it by name (has it changed since
/// detection?): what AEGIS patches, and the objects judged but never patched.
pub fn readable_resource(kind: &str) -> Result<ApiResource, K8sError> {
    if let Some(gateway_api) = GatewayKind::from_name(kind) {
        return Ok(gateway_api.resource());
    }
    let (group, version) = match kind {
        "PodDisruptionBudget" => ("policy", "v1"),
        "Ingress" | "NetworkPolicy" => ("networking.k8s.io", "v1"),
        "HorizontalPodAutoscaler" => ("autoscaling", "v2"),
        other => return api_resource(other).map_err(|_| K8sError::Invalid(format!("AEGIS does not read {other} objects by name"))),
    };
    Ok(ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind)))
}

/// Read access to `target`'s kind in its namespace (see [`readable_resource`]).
pub fn read_api(client: &Client, target: &aegis_model::ResourceRef) -> Result<Api<DynamicObject>, K8sError> {
    Ok(Api::namespaced_with(client.clone(), &target.namespace, &readable_resource(&target.kind)?))
}

/// The Gateway API's group.
pub const GATEWAY_GROUP: &str = aegis_analysis::gateway::GROUP;

/// The kinds of workload AEGIS copies into shadows, watches and verifies fixes on.
pub const WORKLOAD_KINDS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];

/// Read workload `w` (one of [`WORKLOAD_KINDS`]) as JSON, with its pod template.
pub async fn get_workload(
    client: &Client,
    w: &aegis_model::ResourceRef,
) -> Result<(Value, k8s_openapi::api::core::v1::PodTemplateSpec), K8sError> {
    if !WORKLOAD_KINDS.contains(&w.kind.as_str()) {
        return Err(K8sError::Invalid(format!("AEGIS verifies Deployments, StatefulSets and DaemonSets, not {}", w.kind)));
    }
    let obj = dynamic_api(client, w)?.get(&w.name).await.map_err(|source| K8sError::Request { what: format!("reading {w}"), source })?;
    let value = serde_json::to_value(&obj).map_err(|e| K8sError::Invalid(format!("{w}: {e}")))?;
    let template = value
        .pointer("/spec/template")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| K8sError::Invalid(format!("{w}: its pod template: {e}")))?
        .unwrap_or_default();
    Ok((value, template))
}

/// A dynamic API for `target`'s kind in its namespace: the one way AEGIS addresses an object it only
/// knows by a [`aegis_model::ResourceRef`].
pub fn dynamic_api(client: &Client, target: &aegis_model::ResourceRef) -> Result<Api<DynamicObject>, K8sError> {
    Ok(Api::namespaced_with(client.clone(), &target.namespace, &api_resource(&target.kind)?))
}

/// Apply a fix's patch (or its inverse). `dry_run` asks the API server to validate and admit the
/// change without persisting it (server-side dry run).
pub async fn apply_patch(client: &Client, patch: &Patch, dry_run: bool, field_manager: &str) -> Result<Value, K8sError> {
    let api = dynamic_api(client, &patch.target)?;
    let mut pp = PatchParams { field_manager: Some(field_manager.to_owned()), ..Default::default() };
    if dry_run {
        pp = pp.dry_run();
    }
    let body = match patch.patch_type {
        PatchType::StrategicMerge => kube::api::Patch::Strategic(patch.body.clone()),
        PatchType::Json => kube::api::Patch::Json::<Value>(
            serde_json::from_value::<json_patch::Patch>(patch.body.clone()).map_err(|e| K8sError::Invalid(format!("JSON patch: {e}")))?,
        ),
    };
    let obj =
        api.patch(&patch.target.name, &pp, &body).await.map_err(|source| K8sError::Patch { target: patch.target.to_string(), source })?;
    serde_json::to_value(obj).map_err(|e| K8sError::Invalid(e.to_string()))
}

/// Where a Service answers inside the cluster without DNS: `ClusterIP:port` of its first port (an IPv6
/// address in brackets), reachable from any node and pod through kube-proxy's rules. `None` for a
/// headless Service (or one not assigned an address yet) and one without ports.
pub fn service_address(spec: &k8s_openapi::api::core::v1::ServiceSpec) -> Option<String> {
    let ip = spec.cluster_ip.as_deref().filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())?;
    let port = spec.ports.as_ref()?.first()?.port;
    Some(if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") })
}

/// A label selector as the API's `labelSelector` query: `matchLabels` as `k=v` and `matchExpressions`
/// as `k in (a,b)`, `k notin (a,b)`, `k`, `!k`. `None` for an empty selector, which selects everything
/// and must never be used to pick pods.
pub fn selector_query(s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> Option<String> {
    let mut parts: Vec<String> = s.match_labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
    for e in s.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            // An operator the API server would have refused: select nothing rather than guess.
            _ => return None,
        });
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn match_expressions_become_selector_syntax_and_an_empty_selector_selects_nothing() {
        let s: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "db"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "NotIn", "values": ["x"]},
                {"key": "role", "operator": "Exists"}
            ]
        }))
        .unwrap();
        assert_eq!(selector_query(&s).as_deref(), Some("app=db,tier in (a,b),!canary,zone notin (x),role"));
        assert_eq!(selector_query(&Default::default()), None);
        let only_expr: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
            serde_json::from_value(json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]})).unwrap();
        assert_eq!(selector_query(&only_expr).as_deref(), Some("app in (db)"));
    }
}
