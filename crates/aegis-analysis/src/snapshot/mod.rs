//! A typed snapshot of a namespace: what the analysis reads, from a live cluster or from a file.
//!
//! A file is what `kubectl get nodes,pods,deployments,replicasets,services,endpoints,events -o yaml|json`
//! prints (a v1 `List`), so anyone can analyze what they captured. Secret *values* never enter a
//! snapshot: only Secret and ConfigMap names and keys are kept.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Endpoints, Event, Node, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod stream;

/// Why a snapshot could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is empty")]
    Empty,
    #[error("snapshot is not valid YAML or JSON: {0}")]
    Invalid(String),
    #[error("snapshot is over the YAML reader's limits ({0}); give it as JSON (`-o json`) or split it")]
    OverLimit(String),
    #[error("{kind} {name:?} is not a valid Kubernetes object: {message}")]
    Object { kind: String, name: String, message: String },
}

/// Names and keys of a ConfigMap or Secret — never its values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysOnly {
    pub namespace: String,
    pub name: String,
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub deployments: Vec<Deployment>,
    pub replica_sets: Vec<ReplicaSet>,
    pub stateful_sets: Vec<StatefulSet>,
    /// A StatefulSet's (and DaemonSet's) revision history: what a rollback returns to.
    pub controller_revisions: Vec<ControllerRevision>,
    pub daemon_sets: Vec<DaemonSet>,
    pub jobs: Vec<Job>,
    pub cron_jobs: Vec<CronJob>,
    pub services: Vec<Service>,
    pub endpoints: Vec<Endpoints>,
    pub events: Vec<Event>,
    pub persistent_volume_claims: Vec<PersistentVolumeClaim>,
    pub pod_disruption_budgets: Vec<PodDisruptionBudget>,
    pub ingresses: Vec<Ingress>,
    /// Cluster-scoped; none in a snapshot that could not read them (then no class is judged missing).
    pub ingress_classes: Vec<IngressClass>,
    pub horizontal_pod_autoscalers: Vec<HorizontalPodAutoscaler>,
    pub network_policies: Vec<NetworkPolicy>,
    /// Cluster-scoped admission webhooks; judged in their backend Service's namespace.
    pub validating_webhooks: Vec<ValidatingWebhookConfiguration>,
    pub mutating_webhooks: Vec<MutatingWebhookConfiguration>,
    /// Gateway API routes (HTTPRoutes, GRPCRoutes, TLSRoutes, TCPRoutes, UDPRoutes), Gateways and
    /// ListenerSets
    /// (`gateway.networking.k8s.io`); none where the API is not installed.
    pub routes: Vec<crate::gateway::Route>,
    pub gateways: Vec<crate::gateway::Gateway>,
    pub listener_sets: Vec<crate::gateway::ListenerSet>,
    /// Every Gateway of the other namespaces that this snapshot's routes and ListenerSets name as
    /// parents (Gateways often live in an infrastructure namespace, their routes beside the apps):
    /// read for their listeners and `allowedListeners`, never judged here — their own namespace's
    /// analysis does that. A snapshot file marks them with [`PARENT_GATEWAY`].
    pub parent_gateways: Vec<crate::gateway::Gateway>,
    /// Cluster-scoped; none in a snapshot that could not read them (then no class is judged missing).
    pub gateway_classes: Vec<crate::gateway::GatewayClass>,
    pub config_maps: Vec<KeysOnly>,
    pub secrets: Vec<KeysOnly>,
    /// Objects of kinds the analysis does not read, counted by kind.
    pub other_kinds: BTreeMap<String, usize>,
    /// When the snapshot was taken: the analysis' "now". A live snapshot knows it; a file written by
    /// `aegis snapshot` carries it as the List's [`CAPTURED_AT`] annotation; a plain kubectl List has
    /// none, and the newest event or condition in it stands in.
    pub captured_at: Option<jiff::Timestamp>,
}

/// The List annotation that records when `aegis snapshot` captured it.
pub const CAPTURED_AT: &str = "aegis.io/captured-at";

/// The annotation that marks a Gateway of another namespace, in a snapshot for its routes' and
/// ListenerSets' sake ([`Snapshot::parent_gateways`]).
pub const PARENT_GATEWAY: &str = "aegis.io/parent-gateway";

impl Snapshot {
    /// Read a kubectl `List` (or any stream of objects, YAML or JSON). JSON and a single YAML document
    /// are read object by object ([`stream`]); a YAML stream of several documents is read whole first.
    pub fn from_text(text: &str) -> Result<Snapshot, SnapshotError> {
        let trimmed = text.trim_start();
        if trimmed.is_empty() {
            return Err(SnapshotError::Empty);
        }
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            return stream::read(serde_json::de::StrRead::new(text));
        }
        if let Some(snapshot) = stream::read_yaml(text, yaml_options(text.len()))? {
            return Ok(snapshot);
        }
        let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(text, yaml_options(text.len())).map_err(stream::yaml_error)?;
        let mut snapshot = Snapshot::default();
        for doc in docs {
            if let Some(at) = captured_at(&doc)? {
                snapshot.captured_at = Some(at);
            }
            let mut objects = Vec::new();
            flatten(doc, &mut objects);
            for obj in objects {
                snapshot.add(obj)?;
            }
        }
        Ok(snapshot)
    }

    /// Read a JSON snapshot from `reader` object by object: neither the whole text nor every object
    /// as a JSON value is ever in memory, only the typed objects ([`stream`]). Buffer the reader.
    pub fn from_json_reader<R: std::io::Read>(reader: R) -> Result<Snapshot, SnapshotError> {
        stream::read(serde_json::de::IoRead::new(reader))
    }

    /// Build from individual objects (as a live cluster returns them).
    pub fn from_objects(objects: Vec<Value>) -> Result<Snapshot, SnapshotError> {
        let mut s = Snapshot::default();
        for obj in objects {
            s.add(obj)?;
        }
        Ok(s)
    }

    /// Add one object, typed by its kind (a kind the analysis does not read is counted).
    fn add(&mut self, obj: Value) -> Result<(), SnapshotError> {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("").to_owned();
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_owned();
        let err = |e: serde_json::Error| SnapshotError::Object { kind: kind.clone(), name: name.clone(), message: e.to_string() };
        match kind.as_str() {
            "Node" => self.nodes.push(serde_json::from_value(obj).map_err(err)?),
            "Pod" => self.pods.push(serde_json::from_value(obj).map_err(err)?),
            "Deployment" => self.deployments.push(serde_json::from_value(obj).map_err(err)?),
            "ReplicaSet" => self.replica_sets.push(serde_json::from_value(obj).map_err(err)?),
            "StatefulSet" => self.stateful_sets.push(serde_json::from_value(obj).map_err(err)?),
            "DaemonSet" => self.daemon_sets.push(serde_json::from_value(obj).map_err(err)?),
            "ControllerRevision" => self.controller_revisions.push(serde_json::from_value(obj).map_err(err)?),
            "Job" => self.jobs.push(serde_json::from_value(obj).map_err(err)?),
            "CronJob" => self.cron_jobs.push(serde_json::from_value(obj).map_err(err)?),
            "Service" => self.services.push(serde_json::from_value(obj).map_err(err)?),
            "Endpoints" => self.endpoints.push(serde_json::from_value(obj).map_err(err)?),
            "Event" => self.events.push(serde_json::from_value(obj).map_err(err)?),
            "PersistentVolumeClaim" => self.persistent_volume_claims.push(serde_json::from_value(obj).map_err(err)?),
            "PodDisruptionBudget" => self.pod_disruption_budgets.push(serde_json::from_value(obj).map_err(err)?),
            "Ingress" => self.ingresses.push(serde_json::from_value(obj).map_err(err)?),
            "IngressClass" => self.ingress_classes.push(serde_json::from_value(obj).map_err(err)?),
            "HorizontalPodAutoscaler" => self.horizontal_pod_autoscalers.push(serde_json::from_value(obj).map_err(err)?),
            "NetworkPolicy" => self.network_policies.push(serde_json::from_value(obj).map_err(err)?),
            "ValidatingWebhookConfiguration" => self.validating_webhooks.push(serde_json::from_value(obj).map_err(err)?),
            "MutatingWebhookConfiguration" => self.mutating_webhooks.push(serde_json::from_value(obj).map_err(err)?),
            // Istio, among others, has a `Gateway` of its own: only the Gateway API's are read.
            "HTTPRoute" | "GRPCRoute" | "TLSRoute" | "TCPRoute" | "UDPRoute" | "Gateway" | "GatewayClass" | "ListenerSet"
                if !is_gateway_api(&obj) =>
            {
                *self.other_kinds.entry(kind.clone()).or_default() += 1
            }
            "HTTPRoute" | "GRPCRoute" | "TLSRoute" | "TCPRoute" | "UDPRoute" => self.routes.push(serde_json::from_value(obj).map_err(err)?),
            "Gateway" if obj.pointer(&format!("/metadata/annotations/{}", PARENT_GATEWAY.replace('/', "~1"))).is_some() => {
                let mut gateway: crate::gateway::Gateway = serde_json::from_value(obj).map_err(err)?;
                if let Some(a) = gateway.metadata.annotations.as_mut() {
                    a.remove(PARENT_GATEWAY);
                }
                if gateway.metadata.annotations.as_ref().is_some_and(BTreeMap::is_empty) {
                    gateway.metadata.annotations = None;
                }
                self.parent_gateways.push(gateway)
            }
            "Gateway" => self.gateways.push(serde_json::from_value(obj).map_err(err)?),
            "ListenerSet" => self.listener_sets.push(serde_json::from_value(obj).map_err(err)?),
            "GatewayClass" => self.gateway_classes.push(serde_json::from_value(obj).map_err(err)?),
            "ConfigMap" | "Secret" => {
                let namespace = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_owned();
                let mut keys: Vec<String> = ["data", "stringData", "binaryData"]
                    .iter()
                    .filter_map(|f| obj.get(*f).and_then(Value::as_object))
                    .flat_map(|m| m.keys().cloned())
                    .collect();
                keys.sort();
                keys.dedup();
                let entry = KeysOnly { namespace, name, keys };
                if kind == "Secret" { self.secrets.push(entry) } else { self.config_maps.push(entry) }
            }
            "" => return Err(SnapshotError::Object { kind: "?".into(), name, message: "no kind".into() }),
            other => *self.other_kinds.entry(other.to_owned()).or_default() += 1,
        }

        Ok(())
    }
}

/// The capture time a document's [`CAPTURED_AT`] annotation records, if any.
fn captured_at(doc: &Value) -> Result<Option<jiff::Timestamp>, SnapshotError> {
    let Some(at) = doc.pointer(&format!("/metadata/annotations/{}", CAPTURED_AT.replace('/', "~1"))).and_then(Value::as_str) else {
        return Ok(None);
    };
    at.parse().map(Some).map_err(|e| SnapshotError::Invalid(format!("{CAPTURED_AT}: {at:?} is not an RFC 3339 time: {e}")))
}

fn is_gateway_api(obj: &Value) -> bool {
    obj.get("apiVersion").and_then(Value::as_str).is_some_and(|v| v.strip_prefix(crate::gateway::GROUP).is_some_and(|r| r.starts_with('/')))
}

impl Snapshot {
    /// The namespaces other than `own` whose Gateways this snapshot's routes and ListenerSets name as
    /// parents: where a namespace's snapshot reads [`Snapshot::parent_gateways`] from.
    pub fn parent_gateway_namespaces(&self, own: &str) -> BTreeSet<String> {
        let from_routes = self.routes.iter().flat_map(|r| {
            let route_ns = r.metadata.namespace.as_deref().unwrap_or(own);
            r.spec.parent_refs.iter().filter(|p| p.is_gateway()).map(move |p| p.namespace_or(route_ns).to_owned())
        });
        let from_sets = self.listener_sets.iter().filter(|l| l.spec.parent_ref.is_gateway()).map(|l| {
            let ns = l.metadata.namespace.as_deref().unwrap_or(own);
            l.spec.parent_ref.namespace_or(ns).to_owned()
        });
        from_routes.chain(from_sets).filter(|ns| ns != own).collect()
    }

    /// Whether Secret `namespace/name` exists: `None` when the snapshot holds none of that namespace's
    /// Secrets (a live snapshot without `--include-secrets`), which says nothing about them.
    pub(crate) fn secret_exists(&self, namespace: &str, name: &str) -> Option<bool> {
        let held: Vec<&KeysOnly> = self.secrets.iter().filter(|s| s.namespace == namespace).collect();
        (!held.is_empty()).then(|| held.iter().any(|s| s.name == name))
    }

    /// The Gateways of `namespace` the snapshot holds, its own or as parents.
    pub(crate) fn gateways_in<'a, 'n>(&'a self, namespace: &'n str) -> impl Iterator<Item = &'a crate::gateway::Gateway> + use<'a, 'n> {
        self.gateways.iter().chain(&self.parent_gateways).filter(move |g| g.metadata.namespace.as_deref() == Some(namespace))
    }

    /// The snapshot as a kubectl-style `v1 List`, readable by [`Snapshot::from_text`] and by kubectl.
    /// ConfigMaps and Secrets carry their keys with empty values, annotated `aegis.io/values-stripped`.
    pub fn to_list(&self) -> Value {
        fn push<T: Serialize>(items: &mut Vec<Value>, objs: &[T]) {
            items.extend(objs.iter().filter_map(|o| serde_json::to_value(o).ok()));
        }
        let mut items = Vec::new();
        push(&mut items, &self.nodes);
        push(&mut items, &self.pods);
        push(&mut items, &self.deployments);
        push(&mut items, &self.replica_sets);
        push(&mut items, &self.stateful_sets);
        push(&mut items, &self.controller_revisions);
        push(&mut items, &self.daemon_sets);
        push(&mut items, &self.jobs);
        push(&mut items, &self.cron_jobs);
        push(&mut items, &self.services);
        push(&mut items, &self.endpoints);
        push(&mut items, &self.events);
        push(&mut items, &self.persistent_volume_claims);
        push(&mut items, &self.pod_disruption_budgets);
        push(&mut items, &self.ingresses);
        push(&mut items, &self.ingress_classes);
        push(&mut items, &self.horizontal_pod_autoscalers);
        push(&mut items, &self.network_policies);
        push(&mut items, &self.validating_webhooks);
        push(&mut items, &self.mutating_webhooks);
        push(&mut items, &self.routes);
        push(&mut items, &self.gateways);
        for g in &self.parent_gateways {
            let mut g = g.clone();
            g.metadata.annotations.get_or_insert_default().insert(PARENT_GATEWAY.to_owned(), "true".to_owned());
            push(&mut items, &[g]);
        }
        push(&mut items, &self.listener_sets);
        push(&mut items, &self.gateway_classes);
        for (kind, list) in [("ConfigMap", &self.config_maps), ("Secret", &self.secrets)] {
            for k in list {
                let data: serde_json::Map<String, Value> = k.keys.iter().map(|key| (key.clone(), Value::String(String::new()))).collect();
                items.push(serde_json::json!({
                    "apiVersion": "v1",
                    "kind": kind,
                    "metadata": {"name": k.name, "namespace": k.namespace, "annotations": {"aegis.io/values-stripped": "true"}},
                    "data": data
                }));
            }
        }
        let mut list = serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items});
        if let Some(at) = self.captured_at {
            list["metadata"] = serde_json::json!({"annotations": {CAPTURED_AT: at.to_string()}});
        }
        list
    }
}

/// The YAML reader's budget for a snapshot of `len` bytes. serde-saphyr's defaults (250,000 nodes, a
/// million events) suit configuration files; a kubectl List of a thousand pods is past them. The
/// budget grows with the input — whose size the caller limits — so a snapshot of any size the CLI reads
/// fits, while the guards against YAML bombs (aliases, nesting depth) stay as they are.
fn yaml_options(len: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(len);
    budget.max_events = budget.max_events.max(len.saturating_mul(2));
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(len);
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    // Booleans as kubectl writes them (YAML 1.2: true/false). A YAML 1.1 reading would turn the strings
    // `y` and `n`, which PyYAML and other 1.1 tools write unquoted, into booleans a string field refuses.
    options.strict_booleans = true;
    options
}

fn flatten(doc: Value, out: &mut Vec<Value>) {
    match doc {
        Value::Null => {}
        Value::Array(items) => items.into_iter().for_each(|i| flatten(i, out)),
        Value::Object(mut m) if m.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List")) => {
            if let Some(Value::Array(items)) = m.remove("items") {
                items.into_iter().for_each(|i| flatten(i, out));
            }
        }
        other => out.push(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_never_enter_a_snapshot() {
        let s = Snapshot::from_text(
            r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"shop"},"data":{"password":"aHVudGVyMg=="}}]}"#,
        )
        .unwrap();
        assert_eq!(s.secrets, vec![KeysOnly { namespace: "shop".into(), name: "db".into(), keys: vec!["password".into()] }]);
    }

    #[test]
    fn a_snapshot_written_as_a_list_reads_back_the_same() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/incidents/crashloop-missing-env.yaml");
        let a = Snapshot::from_text(&std::fs::read_to_string(path).unwrap()).unwrap();
        let b = Snapshot::from_text(&serde_json::to_string(&a.to_list()).unwrap()).unwrap();
        assert_eq!(
            (a.pods.len(), a.replica_sets.len(), a.events.len(), a.nodes.len()),
            (b.pods.len(), b.replica_sets.len(), b.events.len(), b.nodes.len())
        );
        assert_eq!(serde_json::to_value(&a.pods).unwrap(), serde_json::to_value(&b.pods).unwrap());
    }

    /// What YAML 1.1 tools write: PyYAML (kubectl output passed through a script) leaves the strings `y`
    /// and `n` unquoted, since its resolver reads only yes/no/on/off/true/false as booleans. They are
    /// strings in string fields; kubectl writes booleans as `true`/`false` only.
    #[test]
    fn plain_scalars_a_yaml_1_1_tool_leaves_unquoted_load_as_the_strings_they_are() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: p\n    namespace: n\n    labels:\n      canary: y\n      legacy: n\n  spec:\n    containers:\n    - name: c\n      image: x:1\n      env:\n      - name: VERBOSE\n        value: n\n      tty: true\n";
        let s = Snapshot::from_text(text).unwrap_or_else(|e| panic!("{e}"));
        let pod = &s.pods[0];
        assert_eq!(pod.metadata.labels.as_ref().unwrap().get("canary").map(String::as_str), Some("y"));
        let c = &pod.spec.as_ref().unwrap().containers[0];
        assert_eq!(c.env.as_ref().unwrap()[0].value.as_deref(), Some("n"));
        assert_eq!(c.tty, Some(true), "true stays a boolean");
    }

    /// A kubectl List of 2,000 realistic pods is past the YAML reader's default budget; it loads.
    #[test]
    fn a_yaml_snapshot_of_thousands_of_pods_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/incidents/crashloop-missing-env.yaml");
        let one = Snapshot::from_text(&std::fs::read_to_string(path).unwrap()).unwrap();
        let pod = serde_json::to_value(&one.pods[0]).unwrap();
        let items: Vec<Value> = (0..2000)
            .map(|i| {
                let mut p = pod.clone();
                p["metadata"]["name"] = format!("api-{i}").into();
                p
            })
            .collect();
        let yaml = serde_saphyr::to_string(&serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})).unwrap();
        let s = Snapshot::from_text(&yaml).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.pods.len(), 2000);
    }

    #[test]
    fn garbage_and_empty_input_are_errors() {
        assert_eq!(Snapshot::from_text("  ").unwrap_err(), SnapshotError::Empty);
        assert!(matches!(Snapshot::from_text("{not json"), Err(SnapshotError::Invalid(_))));
        let err =
            Snapshot::from_text(r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"},"spec":{"containers":"nope"}}"#).unwrap_err();
        assert!(err.to_string().contains("Pod \"p\""), "{err}");
    }

    /// One YAML document is streamed item by item (as JSON is); a stream of several documents is
    /// still read, whole; either way a bad object is named and broken YAML is invalid, not empty.
    #[test]
    fn one_yaml_document_and_a_stream_of_several_read_alike_and_a_bad_object_is_named() {
        let svc = |name: &str| format!("{{apiVersion: v1, kind: Service, metadata: {{name: {name}, namespace: shop}}}}");
        let one = format!(
            "apiVersion: v1\nkind: List\nmetadata: {{annotations: {{aegis.io/captured-at: \"2026-11-30T12:00:00Z\"}}}}\nitems:\n- {}\n- {}\n",
            svc("a"),
            svc("b")
        );
        let several = format!("{one}---\n{}\n", svc("c"));
        let names = |s: &Snapshot| s.services.iter().filter_map(|x| x.metadata.name.clone()).collect::<Vec<_>>();
        let streamed = Snapshot::from_text(&one).unwrap();
        assert_eq!(names(&streamed), ["a", "b"]);
        assert_eq!(streamed.captured_at, Some("2026-11-30T12:00:00Z".parse().unwrap()));
        let whole = Snapshot::from_text(&several).unwrap();
        assert_eq!(names(&whole), ["a", "b", "c"]);
        assert_eq!(whole.captured_at, streamed.captured_at);

        let bad = "kind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: nope}}\n";
        let err = Snapshot::from_text(bad).unwrap_err();
        assert!(matches!(&err, SnapshotError::Object { kind, name, .. } if kind == "Pod" && name == "p"), "{err:?}");
        assert!(matches!(Snapshot::from_text("kind: List\nitems: [\n"), Err(SnapshotError::Invalid(_))));
        assert!(matches!(Snapshot::from_text("kind: Pod\nitems: []\n"), Err(SnapshotError::Invalid(m)) if m.contains("not a List")));
    }

    /// A YAML bomb (aliases of aliases) is refused as over the reader's limits, in one document or
    /// in several.
    #[test]
    fn a_yaml_bomb_is_over_the_readers_limits() {
        let mut bomb = String::from("kind: List\nmetadata:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = format!("*a{}", i - 1);
            bomb.push_str(&format!("  a{i}: &a{i} [{}]\n", [prev.as_str(); 10].join(", ")));
        }
        bomb.push_str("items: []\n");
        for text in [bomb.clone(), format!("{bomb}---\nkind: List\nitems: []\n")] {
            let err = Snapshot::from_text(&text).unwrap_err();
            assert!(matches!(err, SnapshotError::OverLimit(_)), "{err:?}");
        }
    }
}
