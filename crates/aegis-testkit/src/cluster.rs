//! Connecting tests to the local control plane (scripts/harness/cluster.sh) and giving each test a
//! namespace of its own, deleted afterwards.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A client for the harness cluster, from `$AEGIS_KUBECONFIG` (written by `cluster.sh up`). Panics —
/// loudly, never skips — when the harness is not running.
pub async fn client() -> Client {
    let path = crate::harness_env("AEGIS_KUBECONFIG");
    let kubeconfig = Kubeconfig::read_from(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("kubeconfig {path}: {e}"));
    Client::try_from(config).unwrap_or_else(|e| panic!("client for {path}: {e}"))
}

/// A namespace that exists for one test. Deleted on drop (even when the test panics), so tests do not
/// see each other's objects and the cluster does not fill up.
pub struct TestNamespace {
    client: Client,
    name: String,
}

impl TestNamespace {
    /// Create `aegis-test-<prefix>-<random>` and wait until it is Active.
    pub async fn create(prefix: &str) -> TestNamespace {
        let client = client().await;
        let suffix = format!("{:08x}", rand_u32());
        let name = format!("aegis-test-{}-{suffix}", prefix.to_lowercase().replace('_', "-"));
        let api: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("aegis.io/test".to_owned(), "true".to_owned())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&PostParams::default(), &ns).await.unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        TestNamespace { client, name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// An API for namespaced objects of this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Drop cannot await; delete from a thread with its own small runtime, and wait for the request
        // (not for the namespace's finalisation, which the cluster finishes by itself). The thread makes
        // its own client: a kube Client's worker task lives on the runtime that created it, which is
        // blocked here, so reusing it would stall until the timeout.
        let name = self.name.clone();
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let api: Api<Namespace> = Api::all(client().await);
                let _ = tokio::time::timeout(Duration::from_secs(20), api.delete(&name, &DeleteParams::background())).await;
            });
        });
        let _ = done.join();
    }
}

/// Poll `check` until it returns `Some`, or panic after `limit` with `what` and the last observation.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = std::time::Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if start.elapsed() >= limit => panic!("{what}: not reached within {}s; last seen: {last}", limit.as_secs()),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish() as u32
}

/// The label of the harness's real node (scripts/harness/node.sh: containerd, runc, kubelet).
pub const REAL_NODE_LABEL: (&str, &str) = ("aegis.io/node", "real");
/// The taint that keeps every other pod off the real node.
pub const REAL_NODE_TAINT: &str = "aegis.io/real-node";

/// The pod-spec fields that place a pod on the harness's real node: a nodeSelector for its label and a
/// toleration of its taint. Part of the workload's spec, so a shadow copy lands there too.
pub fn on_real_node() -> serde_json::Value {
    serde_json::json!({
        "nodeSelector": {REAL_NODE_LABEL.0: REAL_NODE_LABEL.1},
        "tolerations": [{"key": REAL_NODE_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
    })
}

/// A Deployment of `replicas` pods labelled `app: <name>` with one container, on the harness's real
/// node ([`on_real_node`]): its pods are real processes, and they fail only when the process does.
pub fn deployment(name: &str, replicas: i32, container: serde_json::Value) -> k8s_openapi::api::apps::v1::Deployment {
    let mut pod_spec = on_real_node();
    pod_spec["containers"] = serde_json::json!([container]);
    // A short grace period: the test app stops at SIGTERM at once, and namespaces go away faster.
    pod_spec["terminationGracePeriodSeconds"] = serde_json::json!(5);
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}
        }
    }))
    .expect("valid Deployment")
}

/// The setting tests/apps/demo-api refuses to start without (it exits 1 and says so).
pub fn database_url() -> serde_json::Value {
    serde_json::json!({"name": "DATABASE_URL", "value": "postgres://db:5432/shop"})
}

/// The paths tests/apps/demo-api serves: `/healthz` (liveness), `/ready` and `/readyz` (readiness), `/`.
pub const SERVES_PATHS: &[&str] = &["/healthz", "/ready", "/readyz", "/"];

/// The demo app's container `api` running `image` with its required setting, probed on the paths it
/// serves, with quick probes so the kubelet's verdicts come in seconds.
pub fn probed_app(image: &str) -> serde_json::Value {
    serde_json::json!({"name": "api", "image": image, "ports": [{"containerPort": 8080}],
        "env": [database_url()],
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1, "failureThreshold": 2},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 2, "failureThreshold": 2}})
}

/// Wait until Deployment `name` has rolled out completely: current generation observed, every replica
/// updated and available.
pub async fn wait_available(api: &Api<k8s_openapi::api::apps::v1::Deployment>, name: &str, limit: Duration) {
    eventually(&format!("deployment {name} available"), limit, || {
        let api = api.clone();
        let client = api.clone().into_client();
        async move {
            let d = api.get(name).await.map_err(|e| e.to_string())?;
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let st = d.status.unwrap_or_default();
            let generation = d.metadata.generation.unwrap_or_default();
            let available = st.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Available" && c.status == "True");
            let done = st.observed_generation == Some(generation)
                && st.updated_replicas == Some(want)
                && st.available_replicas == Some(want)
                && st.replicas == Some(want)
                && available;
            if done {
                return Ok(());
            }
            let selector = d
                .spec
                .as_ref()
                .and_then(|s| s.selector.match_labels.as_ref())
                .map(|labels| labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","));
            let pods = match (d.metadata.namespace.as_deref(), selector) {
                (Some(ns), Some(selector)) => pods_report(&client, ns, &selector).await,
                _ => "(no namespace or selector to find its pods by)".to_owned(),
            };
            Err(format!(
                "generation {generation}, observed {:?}, updated {:?}, available {:?}, total {:?} of {want}; {pods}",
                st.observed_generation, st.updated_replicas, st.available_replicas, st.replicas
            ))
        }
    })
    .await
}

/// What the pods matching `selector` in `ns` are waiting for, in one line: phase, node, the scheduler's
/// reason when a pod is not placed (a node under disk pressure says so there), each container's waiting
/// or last terminated reason, and the last Warning Events. A rollout that times out says why, not only
/// that it did.
pub async fn pods_report(client: &Client, ns: &str, selector: &str) -> String {
    use k8s_openapi::api::core::v1::{Event, Pod};
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let listed = match pods.list(&kube::api::ListParams::default().labels(selector)).await {
        Ok(l) => l.items,
        Err(e) => return format!("pods not listed: {e}"),
    };
    let mut parts: Vec<String> = listed.iter().map(pod_line).collect();
    if parts.is_empty() {
        parts.push(format!("no pod matches {selector}"));
    }
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    if let Ok(list) = events.list(&kube::api::ListParams::default().fields("type=Warning")).await {
        let mut warnings: Vec<&Event> = list.items.iter().collect();
        warnings.sort_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0));
        for e in warnings.iter().rev().take(5) {
            parts.push(format!(
                "event {} {}: {}",
                e.involved_object.name.as_deref().unwrap_or("?"),
                e.reason.as_deref().unwrap_or("?"),
                e.message.as_deref().unwrap_or("").trim()
            ));
        }
    }
    parts.join("; ")
}

fn pod_line(pod: &k8s_openapi::api::core::v1::Pod) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let spec_node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("unscheduled");
    let Some(st) = pod.status.as_ref() else { return format!("pod {name}: no status") };
    let mut line = format!("pod {name} {} on {spec_node}", st.phase.as_deref().unwrap_or("?"));
    for c in st.conditions.iter().flatten().filter(|c| c.status != "True") {
        line.push_str(&format!(", {} {} {}: {}", c.type_, c.status, c.reason.as_deref().unwrap_or(""), c.message.as_deref().unwrap_or("")));
    }
    for c in st.init_container_statuses.iter().flatten().chain(st.container_statuses.iter().flatten()) {
        let state = c.state.as_ref();
        if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            line.push_str(&format!(
                ", container {} waiting {}: {}",
                c.name,
                w.reason.as_deref().unwrap_or("?"),
                w.message.as_deref().unwrap_or("")
            ));
        } else if !c.ready {
            line.push_str(&format!(", container {} not ready (restarts {})", c.name, c.restart_count));
        }
        if let Some(t) = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
            line.push_str(&format!(", {} last exited {} ({})", c.name, t.exit_code, t.reason.as_deref().unwrap_or("?")));
        }
    }
    line
}

/// The selector-typo scenario: Deployment `api` (the [`probed_app`] on `image`, two replicas, Available)
/// and a Service `api` whose selector says `app: apj` — it routes to nothing.
pub async fn selector_typo(ns: &TestNamespace, image: &str, limit: Duration) {
    let deployments = ns.api::<k8s_openapi::api::apps::v1::Deployment>();
    deployments.create(&PostParams::default(), &deployment("api", 2, probed_app(image))).await.expect("the Deployment is created");
    service(ns, "api", "apj", 80).await;
    wait_available(&deployments, "api", limit).await;
}

/// Create Service `name` selecting `app: <app>`, port `port` → container port 8080.
pub async fn service(ns: &TestNamespace, name: &str, app: &str, port: i32) {
    let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": port, "targetPort": 8080}]}
    }))
    .expect("valid Service");
    ns.api::<k8s_openapi::api::core::v1::Service>().create(&PostParams::default(), &svc).await.expect("the Service is created");
}

/// The oversized-requests scenario: Deployment `api` (the [`probed_app`] on `image`, two replicas)
/// requesting 64Gi of memory, more than any harness node has: its pods stay Unschedulable.
pub async fn oversized_requests(ns: &TestNamespace, image: &str) {
    let mut container = probed_app(image);
    container["resources"] = serde_json::json!({"requests": {"cpu": "100m", "memory": "64Gi"}, "limits": {"memory": "64Gi"}});
    ns.api::<k8s_openapi::api::apps::v1::Deployment>()
        .create(&PostParams::default(), &deployment("api", 2, container))
        .await
        .expect("the Deployment is created");
}

/// Gateway `public` (class `none`: no Gateway controller runs in the harness) and HTTPRoute `shop` on
/// it, whose backend, Service `api-v2`, does not exist. Needs the Gateway API's CRDs, which the harness
/// installs.
pub async fn route_to_missing_backend(ns: &TestNamespace) {
    create_gateway_api(
        ns,
        [
            serde_json::json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "public"},
            "spec": {"gatewayClassName": "none", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}),
            serde_json::json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "shop"},
            "spec": {"parentRefs": [{"name": "public"}], "rules": [{"backendRefs": [{"name": "api-v2", "port": 80}]}]}}),
        ],
    )
    .await;
}

/// GRPCRoute `orders` on Gateway `public` (see [`route_to_missing_backend`]), whose backend, Service
/// `orders`, does not exist.
pub async fn grpc_route_to_missing_backend(ns: &TestNamespace) {
    create_gateway_api(
        ns,
        [serde_json::json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute", "metadata": {"name": "orders"},
        "spec": {"parentRefs": [{"name": "public"}], "rules": [{"backendRefs": [{"name": "orders", "port": 9090}]}]}})],
    )
    .await;
}

/// ListenerSet `extra` (a TCP listener) on Gateway `public` (see [`route_to_missing_backend`]), and
/// TCPRoute `db` on that ListenerSet, whose backend, Service `postgres`, does not exist.
pub async fn tcp_route_on_listener_set(ns: &TestNamespace) {
    create_gateway_api(
        ns,
        [
            serde_json::json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "ListenerSet", "metadata": {"name": "extra"},
            "spec": {"parentRef": {"name": "public"}, "listeners": [{"name": "db", "port": 5432, "protocol": "TCP"}]}}),
            serde_json::json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "TCPRoute", "metadata": {"name": "db"},
            "spec": {"parentRefs": [{"kind": "ListenerSet", "name": "extra", "sectionName": "db"}],
                     "rules": [{"backendRefs": [{"name": "postgres", "port": 5432}]}]}}),
        ],
    )
    .await;
}

/// Gateway `public` in `infra`, which allows ListenerSets from its own namespace only, and
/// ListenerSet `extra` in `team` whose parentRef names it: the layout where Gateways live in an
/// infrastructure namespace and the apps' listeners beside the apps.
pub async fn listener_set_on_another_namespaces_gateway(team: &TestNamespace, infra: &TestNamespace) {
    create_gateway_api(
        infra,
        [serde_json::json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "public"},
        "spec": {"gatewayClassName": "none", "allowedListeners": {"namespaces": {"from": "Same"}},
                 "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}})],
    )
    .await;
    create_gateway_api(
        team,
        [serde_json::json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "ListenerSet", "metadata": {"name": "extra"},
        "spec": {"parentRef": {"name": "public", "namespace": infra.name()},
                 "listeners": [{"name": "db", "port": 5432, "protocol": "TCP"}]}})],
    )
    .await;
}

/// GatewayClass `none` (cluster-scoped: the class the other Gateways of these tests name, so that it
/// exists for them too; no controller implements it), and Gateway `orphan` in `ns`, whose class
/// `no-such-class` does not exist. The class is left: it changes nothing for the other tests' Gateways.
pub async fn gateway_of_a_missing_class(ns: &TestNamespace) {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "GatewayClass"), "gatewayclasses");
    let classes: Api<DynamicObject> = Api::all_with(ns.client(), &resource);
    let class: DynamicObject = serde_json::from_value(serde_json::json!({"apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass", "metadata": {"name": "none"}, "spec": {"controllerName": "example.com/none"}}))
    .expect("a valid object");
    match classes.create(&PostParams::default(), &class).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("creating GatewayClass none: {e}"),
    }
    create_gateway_api(
        ns,
        [serde_json::json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "orphan"},
        "spec": {"gatewayClassName": "no-such-class", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}})],
    )
    .await;
}

/// Create Gateway API objects in `ns` (the plural is the kind's, lowercased, with an `s`).
async fn create_gateway_api(ns: &TestNamespace, objects: impl IntoIterator<Item = serde_json::Value>) {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    for object in objects {
        let kind = object["kind"].as_str().expect("a kind").to_owned();
        let plural = format!("{}s", kind.to_ascii_lowercase());
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", &kind), &plural);
        let api: Api<DynamicObject> = Api::namespaced_with(ns.client(), ns.name(), &resource);
        let object: DynamicObject = serde_json::from_value(object).expect("a valid object");
        api.create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("creating {kind}: {e} (are the Gateway API CRDs installed?)"));
    }
}
