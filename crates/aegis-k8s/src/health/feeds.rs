//! What the health watch reads, fed by watches. They start when a health window opens and stop with
//! it, so each look reads memory: the API server sees one list per kind at the start, then watch
//! events, instead of four or five lists every half second for minutes.
//!
//! Every watch is narrowed to the watched workload: its own name, its selector's ReplicaSets,
//! ControllerRevisions and Pods, and the EndpointSlices of the Services that must route to it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;

use super::Workload;
use crate::K8sError;
use aegis_model::ResourceRef;

/// The watched workload's own store, by kind.
enum WorkloadStore {
    Deployment(Store<Deployment>),
    StatefulSet(Store<StatefulSet>),
    DaemonSet(Store<DaemonSet>),
}

/// The last watch error, and when: a look judges nothing healthy across one (its store may be stale).
#[derive(Default)]
struct Failure(Mutex<Option<(Instant, String)>>);

impl Failure {
    fn record(&self, message: String) {
        if let Ok(mut f) = self.0.lock() {
            *f = Some((Instant::now(), message));
        }
    }

    fn since(&self, at: Instant) -> Option<String> {
        self.0.lock().ok()?.as_ref().filter(|(when, _)| *when >= at).map(|(_, m)| m.clone())
    }
}

/// The watches of one health window; dropping it stops them.
pub(super) struct Feeds {
    workload: WorkloadStore,
    replica_sets: Option<Store<ReplicaSet>>,
    revisions: Option<Store<ControllerRevision>>,
    pods: Store<Pod>,
    slices: Option<Store<EndpointSlice>>,
    failure: Arc<Failure>,
    started: Instant,
    _tasks: JoinSet<()>,
}

impl Feeds {
    /// Start the watches of `w` (whose pods `selector` selects) and of `services`' EndpointSlices.
    pub(super) fn start(client: &Client, w: &ResourceRef, selector: &str, services: &[String]) -> Feeds {
        let mut s = Spawner { client, namespace: &w.namespace, tasks: JoinSet::new(), failure: Arc::new(Failure::default()) };
        let named = || watcher::Config::default().fields(&format!("metadata.name={}", w.name));
        let selected = || watcher::Config::default().labels(selector);
        let workload = match w.kind.as_str() {
            "StatefulSet" => WorkloadStore::StatefulSet(s.spawn("StatefulSet", named())),
            "DaemonSet" => WorkloadStore::DaemonSet(s.spawn("DaemonSet", named())),
            _ => WorkloadStore::Deployment(s.spawn("Deployment", named())),
        };
        let replica_sets = (w.kind == "Deployment").then(|| s.spawn("ReplicaSet", selected()));
        let revisions = (w.kind == "DaemonSet").then(|| s.spawn("ControllerRevision", selected()));
        let pods = s.spawn("Pod", selected());
        let slices = (!services.is_empty()).then(|| {
            let names = format!("kubernetes.io/service-name in ({})", services.join(","));
            s.spawn("EndpointSlice", watcher::Config::default().labels(&names))
        });
        Feeds { workload, replica_sets, revisions, pods, slices, failure: s.failure, started: Instant::now(), _tasks: s.tasks }
    }

    /// Wait until every watch has listed, for at most `limit`. `Ok(false)`: not within the limit. A
    /// watch that fails before its first list is an error, as a failed list is.
    pub(super) async fn listed(&self, limit: Duration) -> Result<bool, K8sError> {
        loop {
            if self.all_listed() {
                return Ok(true);
            }
            if let Some(why) = self.failure.since(self.started) {
                return Err(K8sError::Invalid(why));
            }
            if self.started.elapsed() >= limit {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn all_listed(&self) -> bool {
        use crate::cache::has_listed as listed;
        let workload = match &self.workload {
            WorkloadStore::Deployment(s) => listed(s),
            WorkloadStore::StatefulSet(s) => listed(s),
            WorkloadStore::DaemonSet(s) => listed(s),
        };
        workload
            && self.replica_sets.as_ref().is_none_or(listed)
            && self.revisions.as_ref().is_none_or(listed)
            && listed(&self.pods)
            && self.slices.as_ref().is_none_or(listed)
    }

    /// A watch error since `at`, if any: what the stores show may be stale.
    pub(super) fn failed_since(&self, at: Instant) -> Option<String> {
        self.failure.since(at)
    }

    /// The workload as last seen; `None` once it is deleted.
    pub(super) fn workload(&self) -> Option<Workload> {
        match &self.workload {
            WorkloadStore::Deployment(s) => s.state().first().map(|d| Workload::Deployment(Box::new((**d).clone()))),
            WorkloadStore::StatefulSet(s) => s.state().first().map(|d| Workload::StatefulSet(Box::new((**d).clone()))),
            WorkloadStore::DaemonSet(s) => s.state().first().map(|d| Workload::DaemonSet(Box::new((**d).clone()))),
        }
    }

    pub(super) fn replica_sets(&self) -> Vec<Arc<ReplicaSet>> {
        self.replica_sets.as_ref().map(Store::state).unwrap_or_default()
    }

    pub(super) fn revisions(&self) -> Vec<Arc<ControllerRevision>> {
        self.revisions.as_ref().map(Store::state).unwrap_or_default()
    }

    pub(super) fn pods(&self) -> Vec<Arc<Pod>> {
        self.pods.state()
    }

    /// Ready endpoints behind `service` (a `ready` left unset counts as ready, as the API documents).
    pub(super) fn ready_endpoints(&self, service: &str) -> usize {
        let slices = self.slices.as_ref().map(Store::state).unwrap_or_default();
        slices
            .iter()
            .filter(|s| s.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name")).is_some_and(|n| n == service))
            .flat_map(|s| s.endpoints.iter())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
            .count()
    }
}

/// Starts the window's reflectors on one task set, recording their errors.
struct Spawner<'a> {
    client: &'a Client,
    namespace: &'a str,
    tasks: JoinSet<()>,
    failure: Arc<Failure>,
}

impl Spawner<'_> {
    fn spawn<K>(&mut self, kind: &'static str, config: watcher::Config) -> Store<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
    {
        let (reader, writer) = reflector::store();
        let api = Api::<K>::namespaced(self.client.clone(), self.namespace);
        let stream = watcher(api, config).default_backoff().reflect(writer);
        let failure = self.failure.clone();
        self.tasks.spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Err(e) = event {
                    failure.record(format!("watching {kind}: {e}"));
                }
            }
        });
        reader
    }
}
