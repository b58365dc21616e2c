//! Shadow environments: an isolated copy of a workload in a namespace of its own, where a fix is proven
//! before production sees it.
//!
//! `aegis-shadow-<id>` holds copies of the workload (server-set metadata removed, at most two replicas),
//! of the ConfigMaps and Secrets it references and of the Services that select it. Every copied selector
//! and pod template gains `aegis.io/shadow: <id>`, so nothing in the shadow selects or is selected from
//! production. A NetworkPolicy allows traffic only within the shadow, to DNS and to and from the AEGIS
//! namespace (scanners, smoke checks); a ResourceQuota bounds it; production's LimitRanges are copied
//! (its containers get production's default limits and bounds); an optional RuntimeClass
//! (e.g. gVisor) sandboxes its pods. Secret values are copied, never logged. Shadows carry an expiry and
//! [`collect_expired`] deletes the ones a crash left behind.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aegis_model::{Fix, Patch, PatchType, ResourceRef};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, LimitRange, Namespace, Pod, PodTemplateSpec, Secret, Service, ServiceAccount};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};

use crate::K8sError;
use crate::health::HealthTarget;

mod admission;

pub const SHADOW_LABEL: &str = "aegis.io/shadow";
/// The field manager that creates shadow namespaces: recorded by the API server in managedFields, it
/// names AEGIS as the namespace's creator.
const SHADOW_MANAGER: &str = "aegis-shadow";
const NAMESPACE_PREFIX: &str = "aegis-shadow-";
const SOURCE_ANNOTATION: &str = "aegis.io/shadow-source";
const INCIDENT_ANNOTATION: &str = "aegis.io/shadow-incident";
const EXPIRES_ANNOTATION: &str = "aegis.io/shadow-expires";

/// What to copy and how to isolate it.
#[derive(Debug, Clone)]
pub struct ShadowSpec {
    /// A Deployment or StatefulSet in production.
    pub source: ResourceRef,
    pub incident: Option<String>,
    pub ttl: Duration,
    /// The namespace AEGIS runs in: allowed to reach the shadow (scanners, smoke checks).
    pub aegis_namespace: String,
    /// e.g. `gvisor`, for an exploit sandbox.
    pub runtime_class: Option<String>,
    /// The fix to be proven: what it references (a rollback's template, an envFrom) is copied too, so
    /// the fixed workload finds in the shadow what it needs.
    pub fix: Option<Fix>,
}

/// A shadow that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadow {
    pub id: String,
    pub namespace: String,
    /// The copy of the source workload inside the shadow.
    pub workload: ResourceRef,
    pub source: ResourceRef,
    /// The Services copied into the shadow: those selecting the workload, and those the fix patches.
    pub services: Vec<String>,
    /// The Secrets copied into the shadow (what the fixed template references): their values now live
    /// in the shadow too, so its isolation matters more (the policy's `isolation.block`).
    pub secrets: Vec<String>,
    /// The production Services whose copies are in the shadow, as `namespace/name`: what a shadow pod
    /// must not be able to reach.
    pub production_services: Vec<String>,
}

impl Shadow {
    /// What to watch after the fix: the copied workload, routed by every copied Service.
    pub fn health_target(&self) -> HealthTarget {
        HealthTarget {
            workload: self.workload.clone(),
            services: self.services.clone(),
            unschedulable_grace: crate::health::SHADOW_UNSCHEDULABLE_GRACE,
        }
    }
}

fn err(what: &str, e: kube::Error) -> K8sError {
    K8sError::Patch { target: what.to_owned(), source: e }
}

/// Remove what the API server sets, so an object can be created elsewhere.
fn strip(v: &mut Value) {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "ownerReferences",
            "selfLink",
            "deletionTimestamp",
        ] {
            m.remove(k);
        }
        if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
            a.retain(|k, _| !k.starts_with("deployment.kubernetes.io/") && k != "kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
}

fn add_shadow_labels(template: &mut Value, id: &str) {
    if let Some(t) = template.as_object_mut() {
        let labels =
            t.entry("metadata").or_insert_with(|| json!({})).as_object_mut().map(|m| m.entry("labels").or_insert_with(|| json!({})));
        if let Some(Value::Object(l)) = labels {
            l.insert(SHADOW_LABEL.into(), id.into());
        }
    }
}

/// Names of ConfigMaps and Secrets anywhere in a JSON document (a patch body): `configMapKeyRef`,
/// `configMapRef`, `configMap` volumes, `secretKeyRef`, `secretRef`, `secret` volumes, `imagePullSecrets`.
fn references_in(v: &Value, cms: &mut BTreeSet<String>, secrets: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let name = child.get("name").and_then(Value::as_str).map(str::to_owned);
                match k.as_str() {
                    "configMapKeyRef" | "configMapRef" | "configMap" => cms.extend(name),
                    "secretKeyRef" | "secretRef" => secrets.extend(name),
                    "secret" => secrets.extend(child.get("secretName").and_then(Value::as_str).map(str::to_owned).or(name)),
                    "imagePullSecrets" => {
                        secrets.extend(child.as_array().into_iter().flatten().filter_map(|s| s.get("name")?.as_str().map(str::to_owned)))
                    }
                    _ => {}
                }
                references_in(child, cms, secrets);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| references_in(i, cms, secrets)),
        _ => {}
    }
}

/// The image pull credentials production's pods get from their ServiceAccount: the API server adds the
/// account's `imagePullSecrets` to a pod that names none, so a template with its own gets none of the
/// account's. `None` when the pods get none from it.
fn account_pull_secrets(template: &PodTemplateSpec, account: Option<&ServiceAccount>) -> Option<Vec<String>> {
    let own = template.spec.as_ref().and_then(|s| s.image_pull_secrets.as_ref()).is_some_and(|p| !p.is_empty());
    let names: Vec<String> = account?.image_pull_secrets.iter().flatten().map(|r| r.name.clone()).filter(|n| !n.is_empty()).collect();
    (!own && !names.is_empty()).then_some(names)
}

/// The request production's LimitRanges give a container that sets none for `resource`: their
/// `defaultRequest`, else their `default` limit, as the API server fills it in.
fn range_default<'a>(ranges: &'a [LimitRange], resource: &str) -> Option<&'a k8s_openapi::apimachinery::pkg::api::resource::Quantity> {
    ranges
        .iter()
        .flat_map(|r| r.spec.iter().flat_map(|s| s.limits.iter()))
        .filter(|i| i.type_ == "Container")
        .find_map(|i| i.default_request.as_ref().and_then(|m| m.get(resource)).or_else(|| i.default.as_ref()?.get(resource)))
}

/// The shadow's `requests.cpu` and `requests.memory` quota: room for three pods (two replicas and a
/// surge pod) at the source's requests, and never less than 4 CPUs and 16Gi. A large workload can be
/// shadowed — its pods then meet the real scheduler, as in production — and a runaway one is bounded.
/// A container without a request of its own gets the one production's LimitRanges default
/// ([`range_default`]).
fn quota(template: &PodTemplateSpec, production_limits: &[LimitRange]) -> (String, String) {
    let per_pod = |resource: &str| -> f64 {
        template
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .filter_map(|c| {
                c.resources.as_ref().and_then(|r| r.requests.as_ref()?.get(resource)).or_else(|| range_default(production_limits, resource))
            })
            .filter_map(|q| aegis_analysis::render::quantity_bytes(&q.0))
            .sum()
    };
    let cpu_millis = (3.0 * per_pod("cpu") * 1000.0).ceil().max(4000.0) as u64;
    let memory = (3.0 * per_pod("memory")).max(16.0 * 1024f64.powi(3));
    (format!("{cpu_millis}m"), aegis_analysis::render::mib_quantity(memory))
}

async fn create_value<K>(api: &Api<K>, mut v: Value, what: &str) -> Result<(), K8sError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    strip(&mut v);
    let obj: K = serde_json::from_value(v).map_err(|e| K8sError::Invalid(format!("{what}: {e}")))?;
    api.create(&PostParams::default(), &obj).await.map(|_| ()).map_err(|e| err(what, e))
}

/// The namespace of shadow `id`. Also accepts the namespace itself, so a user may name a shadow
/// either way (`aegis shadow status 1a2b3c4d` or `aegis-shadow-1a2b3c4d`).
pub fn shadow_namespace(id: &str) -> String {
    const PREFIX: &str = "aegis-shadow-";
    if id.starts_with(PREFIX) { id.to_owned() } else { format!("{PREFIX}{id}") }
}

/// The shadow's namespace object `name`: the shadow's markers, and the labels of production's
/// namespace its admission rules read ([`admission::labels_to_copy`]).
fn shadow_namespace_object(
    name: &str,
    production: &Namespace,
    admission_keys: &BTreeSet<String>,
    id: &str,
    spec: &ShadowSpec,
    expires: jiff::Timestamp,
) -> Namespace {
    let mut labels = admission::labels_to_copy(production, admission_keys);
    labels.insert(SHADOW_LABEL.into(), id.into());
    labels.insert("app.kubernetes.io/managed-by".into(), "aegis".into());
    let annotations = BTreeMap::from([
        (SOURCE_ANNOTATION.to_owned(), spec.source.to_string()),
        (INCIDENT_ANNOTATION.to_owned(), spec.incident.clone().unwrap_or_default()),
        (EXPIRES_ANNOTATION.to_owned(), expires.to_string()),
    ]);
    Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Create the shadow: namespace, isolation, copies. On any error the half-made shadow is deleted.
pub async fn create_shadow(client: &Client, spec: &ShadowSpec, now: jiff::Timestamp) -> Result<Shadow, K8sError> {
    // Eight hex digits from the clock and the process: unique enough, and a collision fails the create (409).
    let id = format!("{:08x}", ((now.as_nanosecond() as u64) ^ ((std::process::id() as u64) << 16)) as u32);
    let namespace = shadow_namespace(&id);
    let expires = now.checked_add(jiff::SignedDuration::try_from(spec.ttl).unwrap_or(jiff::SignedDuration::from_secs(3600))).unwrap_or(now);
    // Production's namespace and the cluster's admission rules are read first: the shadow is held to
    // the rules production is held to.
    let production = Api::<Namespace>::all(client.clone()).get(&spec.source.namespace).await.map_err(|source| K8sError::Request {
        what: format!("reading namespace {} (its admission labels)", spec.source.namespace),
        source,
    })?;
    let admission_keys = admission::selector_keys(client).await?;
    let ns_obj = shadow_namespace_object(&namespace, &production, &admission_keys, &id, spec, expires);
    let pp = PostParams { field_manager: Some(SHADOW_MANAGER.into()), ..Default::default() };
    Api::<Namespace>::all(client.clone()).create(&pp, &ns_obj).await.map_err(|e| err(&namespace, e))?;
    let shadow = Shadow {
        id: id.clone(),
        namespace: namespace.clone(),
        workload: ResourceRef { kind: spec.source.kind.clone(), namespace: namespace.clone(), name: spec.source.name.clone() },
        source: spec.source.clone(),
        services: Vec::new(),
        secrets: Vec::new(),
        production_services: Vec::new(),
    };
    match populate(client, spec, &shadow).await {
        Ok(Populated { services, secrets }) => {
            let production_services = services.iter().map(|s| format!("{}/{s}", spec.source.namespace)).collect();
            Ok(Shadow { services, secrets, production_services, ..shadow })
        }
        Err(e) => {
            let _ = delete_shadow(client, &shadow).await;
            Err(e)
        }
    }
}

/// What filling a shadow copied.
struct Populated {
    services: Vec<String>,
    secrets: Vec<String>,
}

/// Fill the shadow; returns the names of the Services and Secrets copied.
async fn populate(client: &Client, spec: &ShadowSpec, shadow: &Shadow) -> Result<Populated, K8sError> {
    let (src_ns, ns, id) = (&spec.source.namespace, &shadow.namespace, &shadow.id);
    // Pods cannot be created before the namespace's default ServiceAccount exists.
    for _ in 0..100 {
        if Api::<ServiceAccount>::namespaced(client.clone(), ns).get_opt("default").await.ok().flatten().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The workload (read first: the quota is sized from it).
    let (mut workload, template) = crate::get_workload(client, &spec.source).await?;
    if let Some(why) = not_shadowable(&template) {
        return Err(K8sError::NotShadowable(why));
    }
    // Isolation first, so no copied pod ever runs without it; production's LimitRanges with it, so no
    // copied pod is admitted with other limits than production's.
    let production_limits =
        crate::list::<LimitRange>(client, &crate::Scope { namespace: Some(src_ns.clone()), label_selector: None }, false, "LimitRange")
            .await?;
    let isolation = isolation_objects(ns, &spec.aegis_namespace, &template, &production_limits);
    for obj in isolation {
        let kind = obj["kind"].as_str().unwrap_or_default().to_owned();
        let ar = match kind.as_str() {
            "NetworkPolicy" => {
                kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk("networking.k8s.io", "v1", "NetworkPolicy"))
            }
            other => kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk("", "v1", other)),
        };
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        let dynobj: kube::api::DynamicObject = serde_json::from_value(obj).map_err(|e| K8sError::Invalid(e.to_string()))?;
        api.create(&PostParams::default(), &dynobj).await.map_err(|e| err(&kind, e))?;
    }

    workload["metadata"]["namespace"] = ns.clone().into();
    if spec.source.kind == "DaemonSet" {
        let selector = serde_json::from_value(workload["spec"]["selector"].clone()).ok();
        let nodes = daemon_nodes(client, &spec.source, selector.as_ref()).await?;
        if let Some(t) = workload.pointer_mut("/spec/template") {
            on_nodes(t, &nodes);
        }
    } else {
        let replicas = workload["spec"]["replicas"].as_i64().unwrap_or(1).clamp(1, 2);
        workload["spec"]["replicas"] = replicas.into();
    }
    // Also for a selector of matchExpressions only: matchLabels is created for the shadow label.
    if let Some(selector) = workload.pointer_mut("/spec/selector").and_then(Value::as_object_mut)
        && let Some(labels) = selector.entry("matchLabels").or_insert_with(|| json!({})).as_object_mut()
    {
        labels.insert(SHADOW_LABEL.into(), id.clone().into());
    }
    if let Some(t) = workload.pointer_mut("/spec/template") {
        add_shadow_labels(t, id);
        if let Some(rc) = &spec.runtime_class {
            t["spec"]["runtimeClassName"] = rc.clone().into();
        }
    }

    // What it references, then the Services that select it, then the workload itself.
    let (mut cms, mut secrets) = aegis_analysis::workload::template_references(&template);
    if let Some(patch) = spec.fix.as_ref().and_then(|f| f.patch.as_ref()) {
        references_in(&patch.body, &mut cms, &mut secrets);
    }
    // The pull credentials the pods get from their account (a private registry's): copied like the
    // Secrets the template names. A named account's copy keeps its imagePullSecrets, so the API server
    // adds them in the shadow as it does in production; the shadow's own default account has none, so
    // for the default account they go on the copy's template, which gives its pods the same.
    let account_name = template.spec.as_ref().and_then(|s| s.service_account_name.clone()).filter(|n| !n.is_empty());
    let account = Api::<ServiceAccount>::namespaced(client.clone(), src_ns)
        .get_opt(account_name.as_deref().unwrap_or("default"))
        .await
        .map_err(|source| K8sError::Request { what: format!("reading the pods' ServiceAccount in {src_ns}"), source })?;
    if let Some(pull) = account_pull_secrets(&template, account.as_ref()) {
        secrets.extend(pull.iter().cloned());
        if account_name.as_deref().is_none_or(|n| n == "default")
            && let Some(t) = workload.pointer_mut("/spec/template/spec")
        {
            t["imagePullSecrets"] = pull.iter().map(|name| json!({"name": name})).collect();
        }
    }
    for name in cms {
        if let Some(cm) = Api::<ConfigMap>::namespaced(client.clone(), src_ns).get_opt(&name).await.map_err(|e| err(&name, e))? {
            let mut v = serde_json::to_value(cm).map_err(|e| K8sError::Invalid(e.to_string()))?;
            v["metadata"]["namespace"] = ns.clone().into();
            create_value(&Api::<ConfigMap>::namespaced(client.clone(), ns), v, &format!("ConfigMap/{name}")).await?;
        }
    }
    let mut copied_secrets = Vec::new();
    for name in secrets {
        if let Some(s) = Api::<Secret>::namespaced(client.clone(), src_ns).get_opt(&name).await.map_err(|e| err(&name, e))? {
            let mut v = serde_json::to_value(s).map_err(|e| K8sError::Invalid(e.to_string()))?;
            v["metadata"]["namespace"] = ns.clone().into();
            create_value(&Api::<Secret>::namespaced(client.clone(), ns), v, &format!("Secret/{name}")).await?;
            copied_secrets.push(name);
        }
    }
    // The pods' own ServiceAccount (else they cannot start), without its token Secrets and without its
    // RoleBindings: the copy runs under the same name but holds no rights in the API server — a shadow
    // must not act on the cluster with production's.
    if let Some(name) = account_name.filter(|n| n != "default")
        && let Some(sa) = account
    {
        let mut v = serde_json::to_value(sa).map_err(|e| K8sError::Invalid(e.to_string()))?;
        v["metadata"]["namespace"] = ns.clone().into();
        if let Some(o) = v.as_object_mut() {
            o.remove("secrets");
        }
        create_value(&Api::<ServiceAccount>::namespaced(client.clone(), ns), v, &format!("ServiceAccount/{name}")).await?;
    }
    // Services that select the workload, and a Service the fix patches (say, a selector typo: it selects
    // nothing yet, and the fix must be proven to make it route to the workload).
    let pod_labels: BTreeMap<String, String> = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    let fix_targets: BTreeSet<&str> = spec
        .fix
        .iter()
        .flat_map(|f| f.patch.iter())
        .filter(|p| p.target.kind == "Service" && p.target.namespace == *src_ns)
        .map(|p| p.target.name.as_str())
        .collect();
    let mut services = Vec::new();
    for svc in Api::<Service>::namespaced(client.clone(), src_ns).list(&ListParams::default()).await.map_err(|e| err("Services", e))?.items
    {
        let selector = svc.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let selects = !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v));
        if !selects && !fix_targets.contains(name.as_str()) {
            continue;
        }
        let mut v = serde_json::to_value(&svc).map_err(|e| K8sError::Invalid(e.to_string()))?;
        shadow_service(&mut v, ns, id);
        create_value(&Api::<Service>::namespaced(client.clone(), ns), v, &format!("Service/{name}")).await?;
        services.push(name);
    }
    match spec.source.kind.as_str() {
        "Deployment" => create_value(&Api::<Deployment>::namespaced(client.clone(), ns), workload, &shadow.workload.to_string()).await?,
        "DaemonSet" => create_value(&Api::<DaemonSet>::namespaced(client.clone(), ns), workload, &shadow.workload.to_string()).await?,
        _ => create_value(&Api::<StatefulSet>::namespaced(client.clone(), ns), workload, &shadow.workload.to_string()).await?,
    }
    Ok(Populated { services, secrets: copied_secrets })
}

/// At most two of the nodes production's DaemonSet pods run on, by name. A DaemonSet's shadow runs
/// there only — the DaemonSet's counterpart of a Deployment's replicas clamped to two: the same pods
/// on the same kind of node, without a copy on every node of the cluster.
async fn daemon_nodes(
    client: &Client,
    source: &ResourceRef,
    selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
) -> Result<Vec<String>, K8sError> {
    // Its own selector (an empty one selects nothing here: no node to narrow to).
    let Some(selector) = selector.and_then(crate::selector_query) else { return Ok(Vec::new()) };
    let pods = Api::<Pod>::namespaced(client.clone(), &source.namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| err(&format!("pods of {source}"), e))?;
    let owned = |p: &&Pod| p.metadata.owner_references.iter().flatten().any(|o| o.kind == "DaemonSet" && o.name == source.name);
    let nodes: BTreeSet<String> = pods.items.iter().filter(owned).filter_map(|p| p.spec.as_ref()?.node_name.clone()).collect();
    Ok(nodes.into_iter().take(2).collect())
}

/// Restrict a pod template to `nodes` (none: left as it is), within every node affinity term it has.
fn on_nodes(template: &mut Value, nodes: &[String]) {
    if nodes.is_empty() {
        return;
    }
    let field = json!({"key": "metadata.name", "operator": "In", "values": nodes});
    let required = &mut template["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    let terms = required["nodeSelectorTerms"].as_array().cloned().filter(|t| !t.is_empty()).unwrap_or_else(|| vec![json!({})]);
    let terms: Vec<Value> = terms
        .into_iter()
        .map(|mut term| {
            let fields = term["matchFields"].as_array().cloned().unwrap_or_default();
            term["matchFields"] = Value::Array(fields.into_iter().chain([field.clone()]).collect());
            term
        })
        .collect();
    required["nodeSelectorTerms"] = Value::Array(terms);
}

/// What isolates a shadow: a NetworkPolicy (traffic only within the shadow, to DNS and to and from
/// AEGIS's namespace) and a ResourceQuota sized from the workload. With them, production's
/// LimitRanges, copied: they give production's containers the limits and requests their template
/// lacks and refuse those past their bounds, so the shadow's pods must get the same. The shadow's own
/// LimitRange then gives requests — never limits — for the resources production's ranges leave
/// undefaulted (the quota needs a request of every container); none when they leave none, so no two
/// ranges default one resource (the API server applies them in no set order).
fn isolation_objects(ns: &str, aegis_namespace: &str, template: &PodTemplateSpec, production_limits: &[LimitRange]) -> Vec<Value> {
    let (quota_cpu, quota_memory) = quota(template, production_limits);
    let mut objects = vec![
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "aegis-shadow-isolation", "namespace": ns},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}, {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": aegis_namespace}}}]}],
            "egress": [
                {"to": [{"podSelector": {}}, {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": aegis_namespace}}}]},
                {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                 "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
            ]}}),
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "aegis-shadow-quota", "namespace": ns},
            "spec": {"hard": {"pods": "10", "services": "10", "requests.cpu": quota_cpu, "requests.memory": quota_memory}}}),
    ];
    for range in production_limits {
        let mut copy = serde_json::to_value(range).unwrap_or_default();
        copy["metadata"] = json!({"name": range.metadata.name, "namespace": ns});
        copy["apiVersion"] = "v1".into();
        copy["kind"] = "LimitRange".into();
        objects.push(copy);
    }
    let requests: serde_json::Map<String, Value> = [("cpu", "50m"), ("memory", "64Mi")]
        .into_iter()
        .filter(|(resource, _)| range_default(production_limits, resource).is_none())
        .map(|(resource, amount)| (resource.to_owned(), amount.into()))
        .collect();
    if !requests.is_empty() {
        objects.push(json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "aegis-shadow-limits", "namespace": ns},
            // Requests only (the quota counts requests, so a container without them needs one); never
            // a default *limit*: a container that runs unbounded in production must not OOM only here.
            "spec": {"limits": [{"type": "Container", "defaultRequest": requests}]}}));
    }
    objects
}

/// A Service as its shadow copy: in the shadow's namespace, selecting the shadow's pods, and reachable
/// only inside the cluster — the one change isolation needs. A NodePort or LoadBalancer Service becomes
/// ClusterIP, and the fields only those types may carry go with it (the API server refuses a ClusterIP
/// Service with `externalTrafficPolicy`); a headless Service stays headless (a StatefulSet's pods are
/// found through it); assigned IPs and ports are left for the API server to assign anew.
fn shadow_service(v: &mut Value, namespace: &str, id: &str) {
    v["metadata"]["namespace"] = namespace.into();
    let Some(s) = v.get_mut("spec").and_then(Value::as_object_mut) else { return };
    let headless = s.get("clusterIP").and_then(Value::as_str) == Some("None");
    for k in [
        "clusterIP",
        "clusterIPs",
        "healthCheckNodePort",
        "externalTrafficPolicy",
        "externalIPs",
        "loadBalancerIP",
        "loadBalancerSourceRanges",
        "loadBalancerClass",
        "allocateLoadBalancerNodePorts",
        "externalName",
    ] {
        s.remove(k);
    }
    if headless {
        s.insert("clusterIP".into(), "None".into());
    }
    if let Some(Value::Object(sel)) = s.get_mut("selector") {
        sel.insert(SHADOW_LABEL.into(), id.into());
    }
    s.insert("type".into(), "ClusterIP".into());
    if let Some(Value::Array(ports)) = s.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.remove("nodePort");
        }
    }
}

/// Why a workload cannot be proven in a shadow, if it cannot. A shadow shares the node with
/// production: a pod on the host's network, PID or IPC namespace, with a hostPath volume or a privileged
/// container is outside any NetworkPolicy and can reach the node and production directly, so its copy
/// would not be isolated — and a copy without those settings would be another workload. Such a
/// workload is refused, with the reason, rather than verified as something it is not.
pub fn not_shadowable(template: &PodTemplateSpec) -> Option<String> {
    let spec = template.spec.as_ref()?;
    let mut why = Vec::new();
    for (set, what) in [(spec.host_network, "hostNetwork"), (spec.host_pid, "hostPID"), (spec.host_ipc, "hostIPC")] {
        if set == Some(true) {
            why.push(what.to_owned());
        }
    }
    for v in spec.volumes.iter().flatten().filter(|v| v.host_path.is_some()) {
        why.push(format!("hostPath volume {}", v.name));
    }
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        if c.security_context.as_ref().and_then(|s| s.privileged) == Some(true) {
            why.push(format!("privileged container {}", c.name));
        }
    }
    (!why.is_empty())
        .then(|| format!("not verifiable in an isolated shadow: {} (its copy would share the node with production)", why.join(", ")))
}

/// The same fix, aimed at the shadow's copy. The patch body is the one production would get; a rollback
/// that replaces the whole template keeps the shadow label in it.
pub fn retarget(fix: &Fix, shadow: &Shadow) -> Fix {
    let mut f = fix.clone();
    for p in [f.patch.as_mut(), f.inverse.as_mut()].into_iter().flatten() {
        retarget_patch(p, shadow);
    }
    f
}

fn retarget_patch(p: &mut Patch, shadow: &Shadow) {
    if p.target == shadow.source {
        p.target = shadow.workload.clone();
    } else {
        p.target.namespace = shadow.namespace.clone();
    }
    if p.patch_type == PatchType::Json
        && let Some(ops) = p.body.as_array_mut()
    {
        for op in ops {
            if op["path"] == "/spec/template"
                && let Some(v) = op.get_mut("value")
            {
                add_shadow_labels(v, &shadow.id);
            }
        }
    }
    if p.target.kind == "Service"
        && let Some(Value::Object(sel)) = p.body.pointer_mut("/spec/selector")
    {
        sel.insert(SHADOW_LABEL.into(), shadow.id.clone().into());
    }
}

/// Delete a shadow (its namespace and everything in it).
pub async fn delete_shadow(client: &Client, shadow: &Shadow) -> Result<(), K8sError> {
    match Api::<Namespace>::all(client.clone()).delete(&shadow.namespace, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(err(&shadow.namespace, e)),
    }
}

/// Whether `ns` is a shadow AEGIS made: every marker it writes must be there — the name
/// `aegis-shadow-<id>`, the label `aegis.io/shadow: <id>`, `app.kubernetes.io/managed-by: aegis`, the
/// source and expiry annotations, and AEGIS as the creating field manager. The label alone is not
/// enough: a production namespace that carries it (a copy-paste, a hostile label) must never be
/// deleted. `Err` says which marker is missing.
pub fn shadow_markers(ns: &Namespace) -> Result<(), String> {
    let name = ns.metadata.name.as_deref().unwrap_or_default();
    let labels = ns.metadata.labels.clone().unwrap_or_default();
    let annotations = ns.metadata.annotations.clone().unwrap_or_default();
    let id = name.strip_prefix(NAMESPACE_PREFIX).ok_or_else(|| format!("{name} is not named {NAMESPACE_PREFIX}<id>"))?;
    if labels.get(SHADOW_LABEL).map(String::as_str) != Some(id) {
        return Err(format!("{name} has no {SHADOW_LABEL}={id} label"));
    }
    if labels.get("app.kubernetes.io/managed-by").map(String::as_str) != Some("aegis") {
        return Err(format!("{name} is not labelled app.kubernetes.io/managed-by=aegis"));
    }
    for a in [SOURCE_ANNOTATION, EXPIRES_ANNOTATION] {
        if !annotations.contains_key(a) {
            return Err(format!("{name} has no {a} annotation"));
        }
    }
    let created_by_aegis = ns
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .any(|m| m.manager.as_deref() == Some(SHADOW_MANAGER) && m.operation.as_deref() == Some("Update"));
    if !created_by_aegis {
        return Err(format!("{name} was not created by AEGIS (no {SHADOW_MANAGER} field manager)"));
    }
    Ok(())
}

/// The shadows AEGIS made: namespaces with the shadow label and every other marker. A namespace with
/// the label alone is left out (and named in the log), so no caller — the collector, `aegis shadow
/// list`, the operator's clean-up of interrupted verifications — ever acts on it.
async fn shadows(client: &Client) -> Result<Vec<Namespace>, K8sError> {
    let list = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default().labels(SHADOW_LABEL))
        .await
        .map_err(|e| err("shadow namespaces", e))?;
    Ok(list
        .items
        .into_iter()
        .filter(|ns| match shadow_markers(ns) {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!(namespace = ?ns.metadata.name, %why, "labelled as a shadow but not one AEGIS made; left alone");
                false
            }
        })
        .collect())
}

/// Delete every shadow whose expiry has passed; returns the namespaces deleted.
pub async fn collect_expired(client: &Client, now: jiff::Timestamp) -> Result<Vec<String>, K8sError> {
    let api = Api::<Namespace>::all(client.clone());
    let mut deleted = Vec::new();
    for ns in shadows(client).await? {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let expires =
            ns.metadata.annotations.as_ref().and_then(|a| a.get(EXPIRES_ANNOTATION)).and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let terminating = ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
        // A shadow (every marker present) whose expiry cannot be read is treated as expired: better
        // deleted than leaked.
        if !terminating && expires.is_none_or(|e| e <= now) {
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => deleted.push(name),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(err(&name, e)),
            }
        }
    }
    Ok(deleted)
}

/// A shadow as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowInfo {
    pub id: String,
    pub namespace: String,
    pub source: String,
    pub incident: String,
    pub expires: String,
    pub phase: String,
}

/// Every shadow namespace in the cluster.
pub async fn list_shadows(client: &Client) -> Result<Vec<ShadowInfo>, K8sError> {
    Ok(shadows(client)
        .await?
        .into_iter()
        .map(|ns| {
            let a = ns.metadata.annotations.clone().unwrap_or_default();
            let get = |k: &str| a.get(k).cloned().unwrap_or_default();
            ShadowInfo {
                id: ns.metadata.labels.as_ref().and_then(|l| l.get(SHADOW_LABEL)).cloned().unwrap_or_default(),
                namespace: ns.metadata.name.clone().unwrap_or_default(),
                source: get(SOURCE_ANNOTATION),
                incident: get(INCIDENT_ANNOTATION),
                expires: get(EXPIRES_ANNOTATION),
                phase: ns.status.and_then(|s| s.phase).unwrap_or_default(),
            }
        })
        .collect())
}

/// Delete a shadow by its namespace; refuses namespaces that are not shadows.
pub async fn delete_shadow_namespace(client: &Client, namespace: &str) -> Result<(), K8sError> {
    let api = Api::<Namespace>::all(client.clone());
    let ns = api
        .get_opt(namespace)
        .await
        .map_err(|e| err(namespace, e))?
        .ok_or_else(|| K8sError::Invalid(format!("no namespace {namespace}")))?;
    if let Err(why) = shadow_markers(&ns) {
        return Err(K8sError::Invalid(format!("{namespace} is not an AEGIS shadow ({why}); not deleting it")));
    }
    match api.delete(namespace, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(err(namespace, e)),
    }
}

/// How far one workload in a shadow has come up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadReadiness {
    pub kind: &'static str,
    pub name: String,
    pub ready: i32,
    pub desired: i32,
}

/// The readiness of the Deployments, StatefulSets and DaemonSets in a shadow (listed concurrently).
pub async fn workload_readiness(client: &Client, namespace: &str) -> Result<Vec<WorkloadReadiness>, K8sError> {
    let scope = crate::Scope { namespace: Some(namespace.to_owned()), label_selector: None };
    let (deployments, stateful_sets, daemon_sets) = tokio::try_join!(
        crate::list::<Deployment>(client, &scope, false, "Deployment"),
        crate::list::<StatefulSet>(client, &scope, false, "StatefulSet"),
        crate::list::<DaemonSet>(client, &scope, false, "DaemonSet"),
    )?;
    let row = |kind, name: Option<String>, desired: Option<i32>, ready: Option<i32>| WorkloadReadiness {
        kind,
        name: name.unwrap_or_default(),
        ready: ready.unwrap_or(0),
        desired: desired.unwrap_or(1),
    };
    let deployments = deployments
        .into_iter()
        .map(|d| row("Deployment", d.metadata.name, d.spec.and_then(|s| s.replicas), d.status.and_then(|s| s.ready_replicas)));
    let stateful_sets = stateful_sets
        .into_iter()
        .map(|s| row("StatefulSet", s.metadata.name, s.spec.and_then(|s| s.replicas), s.status.and_then(|s| s.ready_replicas)));
    let daemon_sets = daemon_sets.into_iter().map(|d| {
        let st = d.status.unwrap_or_default();
        row("DaemonSet", d.metadata.name, Some(st.desired_number_scheduled), Some(st.number_ready))
    });
    Ok(deployments.chain(stateful_sets).chain(daemon_sets).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemonset_shadow_is_held_to_the_named_nodes_within_every_affinity_term_it_has() {
        let mut bare = json!({"spec": {"containers": []}});
        on_nodes(&mut bare, &["n1".to_owned(), "n2".to_owned()]);
        assert_eq!(
            bare.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms").unwrap(),
            &json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1", "n2"]}]}])
        );
        let mut zoned = json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}}});
        on_nodes(&mut zoned, &["n1".to_owned()]);
        let terms = zoned.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms").unwrap();
        assert_eq!(terms.as_array().unwrap().len(), 2, "terms are ORed: each keeps its own expressions");
        for term in terms.as_array().unwrap() {
            assert_eq!(term["matchExpressions"].as_array().unwrap().len(), 1);
            assert_eq!(term["matchFields"], json!([{"key": "metadata.name", "operator": "In", "values": ["n1"]}]));
        }
        let mut untouched = json!({"spec": {"containers": []}});
        on_nodes(&mut untouched, &[]);
        assert_eq!(untouched, json!({"spec": {"containers": []}}), "no production pods: nowhere to narrow to");
    }

    fn template(cpu: &str, memory: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": cpu, "memory": memory}}},
            {"name": "b", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
        ]}}))
        .unwrap()
    }

    fn namespace(value: serde_json::Value) -> Namespace {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_shadow_namespace_is_held_to_productions_admission_labels_and_takes_no_other() {
        let production = namespace(json!({"metadata": {"name": "shop", "labels": {
            "kubernetes.io/metadata.name": "shop",
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/enforce-version": "v1.35",
            "pod-security.kubernetes.io/warn": "restricted",
            "team": "payments",
            "istio-injection": "enabled"
        }}}));
        let spec = ShadowSpec {
            source: ResourceRef { kind: "Deployment".into(), namespace: "shop".into(), name: "api".into() },
            incident: Some("shop/api-crashloop".into()),
            ttl: Duration::from_secs(600),
            aegis_namespace: "aegis-system".into(),
            runtime_class: None,
            fix: None,
        };
        let expires: jiff::Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let shadow =
            shadow_namespace_object("aegis-shadow-1a2b3c4d", &production, &BTreeSet::from(["team".to_owned()]), "1a2b3c4d", &spec, expires);
        let labels = shadow.metadata.labels.unwrap();
        let expected: BTreeMap<String, String> = [
            ("pod-security.kubernetes.io/enforce", "baseline"),
            ("pod-security.kubernetes.io/enforce-version", "v1.35"),
            ("pod-security.kubernetes.io/warn", "restricted"),
            ("team", "payments"),
            (SHADOW_LABEL, "1a2b3c4d"),
            ("app.kubernetes.io/managed-by", "aegis"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(labels, expected);
        let annotations = shadow.metadata.annotations.unwrap();
        assert_eq!(annotations[EXPIRES_ANNOTATION], "2026-12-01T12:00:00Z");
        assert_eq!(annotations[INCIDENT_ANNOTATION], "shop/api-crashloop");
    }

    #[test]
    fn only_a_namespace_with_every_shadow_marker_is_a_shadow() {
        let full = json!({"metadata": {
            "name": "aegis-shadow-1a2b3c4d",
            "labels": {SHADOW_LABEL: "1a2b3c4d", "app.kubernetes.io/managed-by": "aegis"},
            "annotations": {SOURCE_ANNOTATION: "Deployment/api -n shop", EXPIRES_ANNOTATION: "2026-11-30T02:00:00Z"},
            "managedFields": [{"manager": SHADOW_MANAGER, "operation": "Update", "apiVersion": "v1"}]
        }});
        assert_eq!(shadow_markers(&namespace(full.clone())), Ok(()));
        let production = json!({"metadata": {"name": "payments", "labels": {SHADOW_LABEL: "x"}}});
        assert!(shadow_markers(&namespace(production)).is_err(), "a production namespace carrying the label");
        for (path, what) in [
            ("/metadata/labels/app.kubernetes.io~1managed-by", "managed-by"),
            ("/metadata/annotations/aegis.io~1shadow-expires", "expiry"),
            ("/metadata/managedFields", "creator"),
        ] {
            let mut v = full.clone();
            let (parent, key) = path.rsplit_once('/').unwrap();
            v.pointer_mut(parent).unwrap().as_object_mut().unwrap().remove(&key.replace("~1", "/"));
            assert!(shadow_markers(&namespace(v)).is_err(), "without its {what}");
        }
        let mut wrong_id = full.clone();
        wrong_id["metadata"]["labels"][SHADOW_LABEL] = "ffffffff".into();
        assert!(shadow_markers(&namespace(wrong_id)).is_err());
    }

    #[test]
    fn a_node_port_or_load_balancer_service_is_copied_as_cluster_ip_without_its_external_fields() {
        let mut v = json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": {
            "type": "LoadBalancer", "clusterIP": "10.0.0.7", "clusterIPs": ["10.0.0.7"], "externalTrafficPolicy": "Local",
            "healthCheckNodePort": 31000, "loadBalancerSourceRanges": ["10.0.0.0/8"], "allocateLoadBalancerNodePorts": true,
            "externalIPs": ["1.2.3.4"], "selector": {"app": "web"}, "ports": [{"port": 80, "nodePort": 30080}]}});
        shadow_service(&mut v, "aegis-shadow-1", "1");
        assert_eq!(v["spec"], json!({"type": "ClusterIP", "selector": {"app": "web", SHADOW_LABEL: "1"}, "ports": [{"port": 80}]}), "{v}");
        assert_eq!(v["metadata"]["namespace"], "aegis-shadow-1");
        let mut headless =
            json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}});
        shadow_service(&mut headless, "aegis-shadow-1", "1");
        assert_eq!(headless["spec"]["clusterIP"], "None", "a headless Service stays headless");
    }

    #[test]
    fn the_shadow_gives_requests_but_never_invents_limits() {
        let objects = isolation_objects("aegis-shadow-1", "aegis-system", &PodTemplateSpec::default(), &[]);
        let limit_range = objects.iter().find(|o| o["kind"] == "LimitRange").unwrap();
        let limits = &limit_range["spec"]["limits"][0];
        assert!(limits.get("defaultRequest").is_some());
        assert!(limits.get("default").is_none() && limits.get("max").is_none(), "{limits}");
    }

    /// A LimitRange gives production's containers the limits and requests their template lacks, and
    /// refuses those past its maximum: the shadow's pods must get the same, or a container that is
    /// OOM-killed under production's default limit runs unbounded in the shadow and its fix is judged
    /// on a different workload. The shadow's own default requests (which its quota needs) then cover
    /// only what production's ranges leave undefaulted, so no two ranges default the same resource.
    #[test]
    fn productions_limit_ranges_are_copied_and_the_shadows_own_defaults_only_fill_what_they_leave() {
        let production: LimitRange = serde_json::from_value(json!({
            "metadata": {"name": "defaults", "namespace": "shop", "uid": "u-1", "resourceVersion": "7"},
            "spec": {"limits": [
                {"type": "Container", "default": {"memory": "128Mi"}, "defaultRequest": {"memory": "32Mi"}, "max": {"memory": "1Gi"}},
                {"type": "Pod", "max": {"cpu": "4"}}
            ]}
        }))
        .unwrap();
        let objects = isolation_objects("aegis-shadow-1", "aegis-system", &PodTemplateSpec::default(), &[production]);
        let ranges: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "LimitRange").collect();
        assert_eq!(ranges.len(), 2, "{ranges:?}");
        let copy = ranges.iter().find(|r| r["metadata"]["name"] == "defaults").expect("production's range copied");
        assert_eq!(copy["metadata"], json!({"name": "defaults", "namespace": "aegis-shadow-1"}));
        assert_eq!(copy["spec"]["limits"][0]["default"], json!({"memory": "128Mi"}));
        assert_eq!(copy["spec"]["limits"][1], json!({"type": "Pod", "max": {"cpu": "4"}}));
        let own = ranges.iter().find(|r| r["metadata"]["name"] == "aegis-shadow-limits").unwrap();
        assert_eq!(own["spec"]["limits"][0]["defaultRequest"], json!({"cpu": "50m"}), "memory is production's to default");

        let both: LimitRange = serde_json::from_value(json!({"metadata": {"name": "all"},
            "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"}}]}}))
        .unwrap();
        let objects = isolation_objects("aegis-shadow-1", "aegis-system", &PodTemplateSpec::default(), &[both]);
        let names: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "LimitRange").map(|r| &r["metadata"]["name"]).collect();
        assert_eq!(names, [&json!("all")], "nothing left for the shadow's own range to default");
    }

    /// A private registry's credentials often sit on the pods' ServiceAccount (the default one, most
    /// often), which the API server copies into each pod: without them the shadow's pods could not pull
    /// what production's run.
    #[test]
    fn pull_credentials_come_from_the_account_unless_the_template_names_its_own() {
        let account: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": "default"}, "imagePullSecrets": [{"name": "registry-creds"}]})).unwrap();
        let bare: PodTemplateSpec = serde_json::from_value(json!({"spec": {"containers": [{"name": "api"}]}})).unwrap();
        assert_eq!(account_pull_secrets(&bare, Some(&account)), Some(vec!["registry-creds".to_owned()]));
        let own: PodTemplateSpec =
            serde_json::from_value(json!({"spec": {"containers": [{"name": "api"}], "imagePullSecrets": [{"name": "mine"}]}})).unwrap();
        assert_eq!(account_pull_secrets(&own, Some(&account)), None, "the API server adds none to a pod that names its own");
        let plain: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "default"}})).unwrap();
        assert_eq!(account_pull_secrets(&bare, Some(&plain)), None);
        assert_eq!(account_pull_secrets(&bare, None), None);
    }

    #[test]
    fn host_level_workloads_are_refused_with_the_reason() {
        let t = |spec: serde_json::Value| -> PodTemplateSpec { serde_json::from_value(json!({"spec": spec})).unwrap() };
        assert_eq!(not_shadowable(&t(json!({"containers": [{"name": "api"}]}))), None);
        let host =
            not_shadowable(&t(json!({"hostNetwork": true, "containers": [{"name": "api", "securityContext": {"privileged": true}}],
            "volumes": [{"name": "docker", "hostPath": {"path": "/var/run"}}]})))
            .expect("refused");
        for what in ["hostNetwork", "privileged container api", "hostPath volume docker"] {
            assert!(host.contains(what), "{host}");
        }
    }

    #[test]
    fn the_quota_of_a_small_workload_is_the_floor() {
        assert_eq!(quota(&template("100m", "128Mi"), &[]), ("4000m".to_owned(), "16Gi".to_owned()));
        assert_eq!(quota(&PodTemplateSpec::default(), &[]), ("4000m".to_owned(), "16Gi".to_owned()));
    }

    #[test]
    fn the_quota_of_a_large_workload_makes_room_for_three_of_its_pods() {
        // Two containers of 2 CPUs and 32Gi: 4 CPUs and 64Gi per pod.
        assert_eq!(quota(&template("2", "32Gi"), &[]), ("12000m".to_owned(), "192Gi".to_owned()));
    }

    /// Containers without requests get production's LimitRange defaults in the shadow too: the quota
    /// must have room for three pods at those, or the shadow's rollout stalls on its own quota.
    #[test]
    fn the_quota_counts_the_requests_productions_limit_ranges_give() {
        let bare: PodTemplateSpec = serde_json::from_value(json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}})).unwrap();
        let range: LimitRange = serde_json::from_value(json!({"metadata": {"name": "defaults"}, "spec": {"limits": [
            {"type": "Container", "defaultRequest": {"cpu": "1"}, "default": {"cpu": "2", "memory": "8Gi"}}]}}))
        .unwrap();
        // Per pod: 2 × 1 CPU (defaultRequest) and 2 × 8Gi (the default limit stands for the request).
        assert_eq!(quota(&bare, &[range]), ("6000m".to_owned(), "48Gi".to_owned()));
    }
}
