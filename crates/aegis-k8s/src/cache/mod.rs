//! Watch-fed caches of everything a snapshot reads, for the operator: one watch per kind (per watched
//! namespace, or cluster-wide) keeps a store current, so a detection pass or an analysis
//! builds its snapshot from memory instead of re-listing twenty kinds from the API server, and the
//! same watch events say which namespaces changed.
//!
//! What is kept is what the analysis reads, and no more, and as compact JSON ([`store`]): every object
//! loses its `managedFields`, and a ConfigMap keeps its keys but not its values (the analysis asks
//! whether a key exists, never what it holds). Secrets are never watched. A label selector narrows the workloads and their pods, as
//! [`crate::snapshot`] does. Cluster-scoped kinds (Nodes, IngressClasses, admission webhook
//! configurations) are watched once.

mod store;

use std::fmt::Debug;

use aegis_analysis::Snapshot;
use futures::{Stream, StreamExt};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Event, Node, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use store::{CompactStore, DecodeError};

use crate::GatewayKind;

/// Whether a reflector store has had its first complete list (an unlisted store reads as "none",
/// which is not evidence of none). Does not wait.
pub fn has_listed<K>(store: &kube::runtime::reflector::Store<K>) -> bool
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    futures::FutureExt::now_or_never(store.wait_until_ready()).is_some_and(|r| r.is_ok())
}

/// A namespaced object changed (or was seen at a watch's start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    pub kind: &'static str,
    pub namespace: String,
}

/// The stores of one watch target: every namespace, or one.
struct Stores {
    /// `None`: cluster-wide.
    namespace: Option<String>,
    pods: CompactStore<Pod>,
    deployments: CompactStore<Deployment>,
    replica_sets: CompactStore<ReplicaSet>,
    stateful_sets: CompactStore<StatefulSet>,
    controller_revisions: CompactStore<ControllerRevision>,
    daemon_sets: CompactStore<DaemonSet>,
    jobs: CompactStore<Job>,
    cron_jobs: CompactStore<CronJob>,
    services: CompactStore<Service>,
    endpoints: CompactStore<Endpoints>,
    events: CompactStore<Event>,
    persistent_volume_claims: CompactStore<PersistentVolumeClaim>,
    pod_disruption_budgets: CompactStore<PodDisruptionBudget>,
    ingresses: CompactStore<Ingress>,
    horizontal_pod_autoscalers: CompactStore<HorizontalPodAutoscaler>,
    network_policies: CompactStore<NetworkPolicy>,
    config_maps: CompactStore<ConfigMap>,
    /// The Gateway API's kinds that are served and readable ([`crate::readable_gateway_kinds`]): a
    /// watch of another would never list, and the caches would never be ready.
    gateway_api: Vec<(GatewayKind, CompactStore<DynamicObject>)>,
}

/// The caches; cheap to share behind an `Arc`.
pub struct Caches {
    sets: Vec<Stores>,
    nodes: CompactStore<Node>,
    ingress_classes: CompactStore<IngressClass>,
    validating_webhooks: CompactStore<ValidatingWebhookConfiguration>,
    mutating_webhooks: CompactStore<MutatingWebhookConfiguration>,
    /// Watched where the Gateway API serves Gateways (its GatewayClasses come in the same bundle).
    gateway_classes: Option<CompactStore<DynamicObject>>,
    /// Set once every store had its first complete list: before that a snapshot would be missing
    /// objects, and "not in the snapshot" reads as "healthy".
    filled: std::sync::atomic::AtomicBool,
}

type Changes = futures::stream::BoxStream<'static, Touched>;

/// How long [`Caches::ready`] waits for a cluster-scoped kind the operator may not be allowed to read.
const OPTIONAL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Drop what no analysis reads.
fn lean<K: Resource>(o: &mut K) {
    o.meta_mut().managed_fields = None;
}

fn lean_config_map(c: &mut ConfigMap) {
    lean(c);
    for v in c.data.iter_mut().flat_map(|d| d.values_mut()) {
        v.clear();
    }
    for v in c.binary_data.iter_mut().flat_map(|d| d.values_mut()) {
        v.0.clear();
    }
}

/// Events are most of what a busy cluster's caches hold (four or more for every pod started, kept an
/// hour by the API server): keep what the analysis reads — what it is about, why, what it says, when —
/// and who reported it (AEGIS leaves its own out), not the rest of each one's bookkeeping.
fn lean_event(e: &mut Event) {
    lean(e);
    let meta = &mut e.metadata;
    (meta.uid, meta.resource_version, meta.creation_timestamp, meta.labels, meta.annotations) = (None, None, None, None, None);
    let about = &mut e.involved_object;
    (about.api_version, about.resource_version, about.uid, about.field_path) = (None, None, None, None);
    (e.source, e.reporting_instance, e.first_timestamp, e.count, e.series, e.related, e.action) =
        (None, None, None, None, None, None, None);
}

/// One kind's store and its stream of changes.
fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    kind: &'static str,
    strip: impl FnMut(&mut K) + Send + 'static,
) -> (CompactStore<K>, Changes)
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let store = CompactStore::new(kind);
    let writer = store.clone();
    let changes = watcher(api, config)
        .default_backoff()
        .modify(strip)
        .flat_map(move |r| {
            let touched: Vec<Touched> = match r {
                Ok(event) => writer.apply(&event).into_iter().map(|namespace| Touched { kind, namespace }).collect(),
                Err(e) => {
                    tracing::warn!(kind, error = %e, "watch error; the watcher retries");
                    Vec::new()
                }
            };
            futures::stream::iter(touched)
        })
        .boxed();
    (store, changes)
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

impl Caches {
    /// Start watching `namespaces` (empty: every namespace), narrowing workloads and pods to
    /// `label_selector`. The caches fill as the returned stream is polled: poll it for as long as the
    /// caches are used (it also says what changed).
    ///
    /// `gateway_api`: the Gateway API's kinds that are served and readable
    /// ([`crate::readable_gateway_kinds`]), watched too.
    pub fn start(
        client: &Client,
        namespaces: &[String],
        label_selector: Option<&str>,
        gateway_api: &[GatewayKind],
    ) -> (Caches, impl Stream<Item = Touched> + use<>) {
        let all = watcher::Config::default();
        let narrowed = match label_selector {
            Some(sel) => watcher::Config::default().labels(sel),
            None => watcher::Config::default(),
        };
        let targets: Vec<Option<&str>> =
            if namespaces.is_empty() { vec![None] } else { namespaces.iter().map(|n| Some(n.as_str())).collect() };
        let mut changes: Vec<Changes> = Vec::new();
        let mut sets = Vec::new();
        for ns in targets {
            macro_rules! kind {
                ($k:ty, $name:literal, $config:expr) => {
                    kind!($k, $name, $config, lean)
                };
                ($k:ty, $name:literal, $config:expr, $strip:expr) => {{
                    let (store, stream) = watch::<$k>(api(client, ns), $config.clone(), $name, $strip);
                    changes.push(stream);
                    store
                }};
            }
            sets.push(Stores {
                namespace: ns.map(str::to_owned),
                pods: kind!(Pod, "Pod", narrowed),
                deployments: kind!(Deployment, "Deployment", narrowed),
                replica_sets: kind!(ReplicaSet, "ReplicaSet", narrowed),
                stateful_sets: kind!(StatefulSet, "StatefulSet", narrowed),
                controller_revisions: kind!(ControllerRevision, "ControllerRevision", narrowed),
                daemon_sets: kind!(DaemonSet, "DaemonSet", narrowed),
                jobs: kind!(Job, "Job", narrowed),
                cron_jobs: kind!(CronJob, "CronJob", narrowed),
                services: kind!(Service, "Service", all),
                endpoints: kind!(Endpoints, "Endpoints", all),
                events: kind!(Event, "Event", all, lean_event),
                persistent_volume_claims: kind!(PersistentVolumeClaim, "PersistentVolumeClaim", all),
                pod_disruption_budgets: kind!(PodDisruptionBudget, "PodDisruptionBudget", all),
                ingresses: kind!(Ingress, "Ingress", all),
                horizontal_pod_autoscalers: kind!(HorizontalPodAutoscaler, "HorizontalPodAutoscaler", all),
                network_policies: kind!(NetworkPolicy, "NetworkPolicy", all),
                config_maps: kind!(ConfigMap, "ConfigMap", all, lean_config_map),
                gateway_api: gateway_api
                    .iter()
                    .map(|&kind| {
                        let strip = move |o: &mut DynamicObject| crate::lean_gateway_object(kind.name(), o);
                        let (store, stream) = watch::<DynamicObject>(kind.api(client, ns), all.clone(), kind.name(), strip);
                        changes.push(stream);
                        (kind, store)
                    })
                    .collect(),
            });
        }
        let (nodes, node_changes) = watch::<Node>(Api::all(client.clone()), all.clone(), "Node", lean);
        let (ingress_classes, class_changes) = watch::<IngressClass>(Api::all(client.clone()), all, "IngressClass", lean);
        let (validating_webhooks, validating_changes) = watch::<ValidatingWebhookConfiguration>(
            Api::all(client.clone()),
            watcher::Config::default(),
            "ValidatingWebhookConfiguration",
            lean,
        );
        let (mutating_webhooks, mutating_changes) = watch::<MutatingWebhookConfiguration>(
            Api::all(client.clone()),
            watcher::Config::default(),
            "MutatingWebhookConfiguration",
            lean,
        );
        changes.extend([node_changes, class_changes, validating_changes, mutating_changes]);
        let gateway_classes = gateway_api.contains(&GatewayKind::Gateway).then(|| {
            let api = Api::all_with(client.clone(), &crate::gateway_class_resource());
            let (store, stream) = watch::<DynamicObject>(api, watcher::Config::default(), "GatewayClass", |o: &mut DynamicObject| {
                crate::lean_gateway_object("GatewayClass", o)
            });
            changes.push(stream);
            store
        });
        let caches = Caches { sets, nodes, ingress_classes, validating_webhooks, mutating_webhooks, gateway_classes, filled: false.into() };
        (caches, futures::stream::select_all(changes))
    }

    /// Wait until every store has had its first complete list.
    pub async fn ready(&self) {
        macro_rules! wait {
            ($($store:expr),*) => {{ $( let _ = $store.wait_until_ready().await; )* }};
        }
        for s in &self.sets {
            wait!(
                s.pods,
                s.deployments,
                s.replica_sets,
                s.stateful_sets,
                s.controller_revisions,
                s.daemon_sets,
                s.jobs,
                s.cron_jobs,
                s.services,
                s.endpoints,
                s.events,
                s.persistent_volume_claims,
                s.pod_disruption_budgets,
                s.ingresses,
                s.horizontal_pod_autoscalers,
                s.network_policies,
                s.config_maps
            );
            for (_, store) in &s.gateway_api {
                store.wait_until_ready().await;
            }
        }
        // Cluster-scoped kinds are read where RBAC allows, as a listed snapshot reads them: a watch that
        // cannot start within a while leaves its kind empty (what needs it then judges nothing) rather
        // than holding detection back.
        macro_rules! optional {
            ($($store:expr, $kind:literal),*) => {{ $(
                if tokio::time::timeout(OPTIONAL_WAIT, $store.wait_until_ready()).await.is_err() {
                    tracing::warn!(kind = $kind, "no complete list within {}s (RBAC?): judged as empty until it arrives", OPTIONAL_WAIT.as_secs());
                }
            )* }};
        }
        optional!(
            self.nodes,
            "Node",
            self.ingress_classes,
            "IngressClass",
            self.validating_webhooks,
            "ValidatingWebhookConfiguration",
            self.mutating_webhooks,
            "MutatingWebhookConfiguration"
        );
        if let Some(classes) = &self.gateway_classes {
            optional!(classes, "GatewayClass");
        }
        self.filled.store(true, std::sync::atomic::Ordering::Release);
    }

    /// `namespace` as [`crate::snapshot`] would list it, from memory; `None` when it is not watched or
    /// the caches are not filled yet ([`Caches::ready`] has not returned).
    pub fn snapshot(&self, namespace: &str) -> Option<Snapshot> {
        if !self.filled.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let s = self.sets.iter().find(|s| s.namespace.as_deref().is_none_or(|n| n == namespace))?;
        match self.decode(s, namespace).and_then(|snapshot| self.with_parent_gateways(snapshot, namespace)) {
            Ok(snapshot) => Some(snapshot),
            Err(e) => {
                tracing::error!(namespace, error = %e, "the cached snapshot cannot be read; this namespace is not judged from the cache");
                None
            }
        }
    }

    /// The Gateways of the other namespaces that `namespace`'s routes and ListenerSets name as
    /// parents, from the caches that watch those namespaces (none from a namespace not watched), as
    /// [`crate::snapshot`] lists them.
    fn with_parent_gateways(&self, mut snapshot: Snapshot, namespace: &str) -> Result<Snapshot, DecodeError> {
        for other in snapshot.parent_gateway_namespaces(namespace) {
            if let Some(s) = self.sets.iter().find(|s| s.namespace.as_deref().is_none_or(|n| n == other)) {
                snapshot.parent_gateways.extend(gateway_api(&s.gateway_api, &other, |k| k == GatewayKind::Gateway)?);
            }
        }
        Ok(snapshot)
    }

    fn decode(&self, s: &Stores, namespace: &str) -> Result<Snapshot, DecodeError> {
        let mut events = s.events.namespace(namespace)?;
        crate::without_own_events(&mut events);
        let config_maps = s.config_maps.namespace(namespace)?.into_iter().map(crate::keys_only).collect();
        Ok(Snapshot {
            nodes: self.nodes.namespace("")?,
            pods: s.pods.namespace(namespace)?,
            deployments: s.deployments.namespace(namespace)?,
            replica_sets: s.replica_sets.namespace(namespace)?,
            stateful_sets: s.stateful_sets.namespace(namespace)?,
            controller_revisions: s.controller_revisions.namespace(namespace)?,
            daemon_sets: s.daemon_sets.namespace(namespace)?,
            jobs: s.jobs.namespace(namespace)?,
            cron_jobs: s.cron_jobs.namespace(namespace)?,
            services: s.services.namespace(namespace)?,
            endpoints: s.endpoints.namespace(namespace)?,
            events,
            persistent_volume_claims: s.persistent_volume_claims.namespace(namespace)?,
            pod_disruption_budgets: s.pod_disruption_budgets.namespace(namespace)?,
            ingresses: s.ingresses.namespace(namespace)?,
            ingress_classes: self.ingress_classes.namespace("")?,
            horizontal_pod_autoscalers: s.horizontal_pod_autoscalers.namespace(namespace)?,
            network_policies: s.network_policies.namespace(namespace)?,
            validating_webhooks: self.validating_webhooks.namespace("")?,
            mutating_webhooks: self.mutating_webhooks.namespace("")?,
            routes: gateway_api(&s.gateway_api, namespace, GatewayKind::is_route)?,
            gateways: gateway_api(&s.gateway_api, namespace, |k| k == GatewayKind::Gateway)?,
            listener_sets: gateway_api(&s.gateway_api, namespace, |k| k == GatewayKind::ListenerSet)?,
            parent_gateways: Vec::new(),
            gateway_classes: match &self.gateway_classes {
                Some(classes) => classes.namespace_as("")?,
                None => Vec::new(),
            },
            config_maps,
            secrets: Vec::new(),
            other_kinds: Default::default(),
            captured_at: Some(jiff::Timestamp::now()),
        })
    }
}

/// Every watched Gateway API kind `which` picks, decoded, in `namespace`.
fn gateway_api<T: DeserializeOwned>(
    stores: &[(GatewayKind, CompactStore<DynamicObject>)],
    namespace: &str,
    which: impl Fn(GatewayKind) -> bool,
) -> Result<Vec<T>, DecodeError> {
    let mut out = Vec::new();
    for (_, store) in stores.iter().filter(|(k, _)| which(*k)) {
        out.extend(store.namespace_as(namespace)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_config_map_keeps_its_keys_and_drops_its_values() {
        let mut c: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "app", "managedFields": [{"manager": "kubectl"}]},
            "data": {"DATABASE_URL": "postgres://secret-ish"}, "binaryData": {"cert": "AAEC"}
        }))
        .unwrap();
        lean_config_map(&mut c);
        assert!(c.metadata.managed_fields.is_none());
        assert_eq!(c.data.unwrap()["DATABASE_URL"], "");
        assert!(c.binary_data.unwrap()["cert"].0.is_empty());
    }

    #[test]
    fn a_cached_event_keeps_what_the_analysis_reads_in_about_half_its_bytes() {
        let raw = serde_json::json!({
            "metadata": {"name": "web-7d9f.18b2", "namespace": "shop", "uid": "5f0c2a3e-1111-2222-3333-444455556666",
                         "resourceVersion": "912345", "creationTimestamp": "2026-11-30T10:00:00Z"},
            "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-7d9f", "uid": "0b4e4a1c-aaaa-bbbb-cccc-ddddeeeeffff",
                               "apiVersion": "v1", "resourceVersion": "912300", "fieldPath": "spec.containers{web}"},
            "reason": "BackOff", "message": "Back-off restarting failed container web in pod web-7d9f_shop", "type": "Warning",
            "source": {"component": "kubelet", "host": "node-1"}, "firstTimestamp": "2026-11-30T09:58:00Z",
            "lastTimestamp": "2026-11-30T10:00:00Z", "count": 7, "reportingComponent": "kubelet", "reportingInstance": "node-1"
        });
        let mut e: Event = serde_json::from_value(raw.clone()).unwrap();
        lean_event(&mut e);
        let kept = serde_json::to_value(&e).unwrap();
        assert_eq!(kept["involvedObject"], serde_json::json!({"kind": "Pod", "namespace": "shop", "name": "web-7d9f"}));
        for field in ["reason", "message", "lastTimestamp", "reportingComponent", "type"] {
            assert_eq!(kept[field], raw[field], "{field}");
        }
        assert_eq!(kept["metadata"], serde_json::json!({"name": "web-7d9f.18b2", "namespace": "shop"}));
        let (before, after) = (raw.to_string().len(), kept.to_string().len());
        assert!(after * 100 < before * 55, "{after} of {before} bytes kept");
    }
}
