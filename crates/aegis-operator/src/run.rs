//! `aegis operator run`: leader election, the controller, detection, the shadow collector, the Falco
//! receiver and the HTTP endpoints (`/metrics`, `/healthz`, `/readyz`).
//!
//! Every replica serves health, metrics and the Falco receiver (alerts sent to any replica land in
//! the store the verifications read). Only the replica holding the Lease detects, reconciles and
//! collects: when it loses the Lease (or stops) its work is dropped, and the next leader resumes every
//! Incident from its recorded phase.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aegis_model::Source;
use aegis_security::GatePolicy;
use aegis_verify::VerifyOptions;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};
use kube_lease_manager::LeaseManagerBuilder;

use crate::crd::{Incident, Phase};
use crate::detect::{self, Scope};
use crate::metrics::Metrics;
use crate::reconcile::{Context, Settings, error_policy, reconcile};

/// Builds the gate policy for a verification plan's scanners.
pub type PolicyFor = Arc<dyn Fn(&[Source]) -> Result<GatePolicy, String> + Send + Sync>;

/// The Falco receiver the operator serves.
#[derive(Debug, Clone)]
pub struct FalcoConfig {
    pub listen: SocketAddr,
    /// A directory (SQLite: this replica alone receives) or PostgreSQL (every replica receives, the
    /// leader reads all).
    pub store: aegis_scanners::falco::StoreLocation,
    pub token: Option<String>,
}

/// Leader election.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a Lease holds without renewal: a killed leader is replaced after about this long.
    pub duration: Duration,
    /// This replica's Pod (in `namespace`), labelled [`LEADER_LABEL`]`=true` while it leads: a Service
    /// selecting that label sends Falco alerts to the leader, whose store its verifications read.
    pub pod: Option<String>,
}

/// The Falco receiver's bearer token, from the Secret `name` (key `token`) in `namespace`; created with
/// a random token when it does not exist, so a default install never runs an unauthenticated receiver
/// (anyone who can reach it could post a heartbeat that makes a dead feed look alive). Senders read the
/// same Secret. Two replicas racing to create it both end up reading the one that won.
pub async fn falco_token(client: &Client, namespace: &str, name: &str) -> Result<String, RunError> {
    use k8s_openapi::api::core::v1::Secret;
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let read = |s: Secret| -> Result<String, RunError> {
        let bytes = s.data.and_then(|mut d| d.remove("token")).map(|b| b.0).unwrap_or_default();
        let token = String::from_utf8(bytes).map_err(|_| RunError::Falco(format!("Secret {namespace}/{name}: `token` is not UTF-8")))?;
        let token = token.trim().to_owned();
        if token.is_empty() {
            return Err(RunError::Falco(format!("Secret {namespace}/{name} has no `token` key")));
        }
        Ok(token)
    };
    let err = |e: kube::Error| RunError::Falco(format!("Secret {namespace}/{name}: {e}"));
    if let Some(s) = api.get_opt(name).await.map_err(err)? {
        return read(s);
    }
    let mut random = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").map_err(|e| RunError::Falco(e.to_string()))?, &mut random)
        .map_err(|e| RunError::Falco(e.to_string()))?;
    let token: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "aegis"}},
        "stringData": {"token": token}
    }))
    .map_err(|e| RunError::Falco(e.to_string()))?;
    match api.create(&kube::api::PostParams::default(), &secret).await {
        Ok(_) => {
            tracing::info!(secret = %format!("{namespace}/{name}"), "created the Falco receiver's token Secret");
            Ok(token)
        }
        Err(kube::Error::Api(e)) if e.code == 409 => read(api.get(name).await.map_err(err)?),
        Err(e) => Err(err(e)),
    }
}

/// The label on the leading replica's Pod.
pub const LEADER_LABEL: &str = "aegis.io/leader";

/// Label (or unlabel) this replica's Pod as the leader. A failure is logged: the Lease, not the
/// label, decides who leads.
async fn mark_leader(client: &Client, lease: &LeaseConfig, leading: bool) {
    let Some(pod) = &lease.pod else { return };
    let value = if leading { serde_json::Value::from("true") } else { serde_json::Value::Null };
    let patch = serde_json::json!({"metadata": {"labels": {LEADER_LABEL: value}}});
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), &lease.namespace);
    if let Err(e) = pods.patch(pod, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await {
        tracing::warn!(pod = %pod, leading, error = %e, "the leader label was not updated");
    }
}

pub struct OperatorConfig {
    pub scope: Scope,
    pub settings: Settings,
    /// The verification settings; the policy is replaced per plan by `policy_for`.
    pub verify: VerifyOptions,
    pub policy_for: PolicyFor,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub listen: SocketAddr,
    pub falco: Option<FalcoConfig>,
    pub lease: LeaseConfig,
    /// Incidents reconciled at once (each may be running a verification).
    pub concurrency: u16,
    pub debounce: Duration,
    pub resync: Duration,
    pub gc_interval: Duration,
    /// The client's API call metrics (its observer was given to the client).
    pub api_calls: crate::metrics::ApiCalls,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("Falco store: {0}")]
    Falco(String),
    #[error("leader election: {0}")]
    Lease(String),
}

#[derive(Clone)]
struct Http {
    metrics: Metrics,
    ready: Arc<AtomicBool>,
}

async fn metrics(State(h): State<Http>) -> impl IntoResponse {
    ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], h.metrics.encode())
}

async fn readyz(State(h): State<Http>) -> impl IntoResponse {
    if h.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "the Incident API is not reachable yet")
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, RunError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|source| RunError::Listen { addr, source })
}

/// Run until `shutdown` completes; then release the Lease so another replica takes over at once.
pub async fn run(client: Client, mut config: OperatorConfig, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let mut falco_counters = None;
    let mut servers = tokio::task::JoinSet::new();
    if let Some(f) = &config.falco {
        let store = aegis_scanners::falco::FalcoStore::open_at(&f.store, aegis_scanners::falco::StoreConfig::new(""))
            .await
            .map_err(|e| RunError::Falco(e.to_string()))?;
        let receiver = aegis_scanners::falco::ReceiverConfig { token: f.token.clone(), ..Default::default() };
        falco_counters = Some(receiver.counters.clone());
        let app = aegis_scanners::falco::router(store.clone(), receiver);
        let listener = bind(f.listen).await?;
        tracing::info!(addr = %f.listen, "Falco receiver listening");
        servers.spawn(async move {
            let limits = aegis_scanners::http::ServerLimits::default();
            if let Err(e) = aegis_scanners::http::serve(listener, app, limits, std::future::pending()).await {
                tracing::error!(error = %e, "Falco receiver stopped");
            }
        });
        config.verify.runner.falco = Some(store);
    }
    let metrics = Metrics::new(falco_counters, config.api_calls.clone());
    let ready = Arc::new(AtomicBool::new(false));
    let http = Http { metrics: metrics.clone(), ready: ready.clone() };
    let app = Router::new()
        .route("/metrics", get(self::metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(http);
    let listener = bind(config.listen).await?;
    tracing::info!(addr = %config.listen, "metrics and health listening");
    servers.spawn(async move {
        // Bounded like the receiver: a slow client must not starve the kubelet's probes of /healthz.
        let limits = aegis_scanners::http::ServerLimits { max_connections: 256, ..Default::default() };
        if let Err(e) = aegis_scanners::http::serve(listener, app, limits, std::future::pending()).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });

    // Ready while the Incident API answers (the CRD is installed and RBAC allows reading it): a watch
    // of Incidents narrowed to a name none has holds one idle connection instead of a list every few
    // seconds, and fails (a 404 once the CRD is gone, a 403) as soon as the API does.
    {
        let (client, ready) = (client.clone(), ready.clone());
        servers.spawn(async move {
            let none = watcher::Config::default().fields("metadata.name=aegis-readiness-probe");
            watcher(Api::<PartialObjectMeta<Incident>>::all(client), none)
                .default_backoff()
                .for_each(|event| {
                    match event {
                        Ok(watcher::Event::InitDone) => ready.store(true, Ordering::Relaxed),
                        Ok(_) => {}
                        Err(e) => {
                            ready.store(false, Ordering::Relaxed);
                            tracing::warn!(error = %e, "the Incident API does not answer (is the CRD installed? `aegis crd | kubectl apply -f -`)");
                        }
                    }
                    async {}
                })
                .await;
        });
    }

    let lease = LeaseManagerBuilder::new(client.clone(), &config.lease.name)
        .with_namespace(&config.lease.namespace)
        .with_identity(&config.lease.identity)
        .with_duration(config.lease.duration.as_secs().max(2))
        .with_grace(1)
        .build()
        .await
        .map_err(|e| RunError::Lease(e.to_string()))?;
    // A restarted replica does not lead yet, whatever its Pod's label says from before.
    mark_leader(&client, &config.lease, false).await;
    let (mut leading, lease_task) = lease.watch().await;
    let config = Arc::new(config);
    let mut leader_work: Option<tokio::task::JoinHandle<()>> = None;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            changed = leading.changed() => {
                if changed.is_err() {
                    tracing::error!("leader election stopped");
                    break;
                }
                let is_leader = *leading.borrow_and_update();
                metrics.set_leader(is_leader);
                mark_leader(&client, &config.lease, is_leader).await;
                if is_leader && leader_work.is_none() {
                    tracing::info!(identity = %config.lease.identity, "leading: detecting and reconciling");
                    leader_work = Some(tokio::spawn(lead(client.clone(), config.clone(), metrics.clone())));
                } else if !is_leader && let Some(work) = leader_work.take() {
                    tracing::warn!(identity = %config.lease.identity, "lost the lease: stopping work; the next leader resumes it");
                    work.abort();
                }
            }
        }
    }
    if let Some(work) = leader_work.take() {
        work.abort();
    }
    metrics.set_leader(false);
    mark_leader(&client, &config.lease, false).await;
    drop(leading);
    match lease_task.await {
        Ok(Ok(_)) => tracing::info!("lease released"),
        Ok(Err(e)) => tracing::warn!(error = %e, "lease not released; it expires on its own"),
        Err(e) => tracing::warn!(error = %e, "lease task failed"),
    }
    servers.abort_all();
    Ok(())
}

/// The leader's work, started again whenever the Gateway API kinds it can read change (CRDs installed
/// or removed while it leads): its caches watch a fixed set of kinds, and a kind installed later would
/// otherwise be judged only from the next leader on. Starting again aborts the verifications in flight;
/// they resume from their Incidents' status, as after a change of leader.
async fn lead(client: Client, config: Arc<OperatorConfig>, metrics: Metrics) {
    loop {
        let gateway_api = aegis_k8s::readable_gateway_kinds(&client, &config.scope.namespaces).await;
        let watched: Vec<&str> = gateway_api.iter().map(|k| k.name()).collect();
        tracing::info!(kinds = ?watched, "Gateway API kinds watched (the others are not served or not readable: not judged)");
        tokio::select! {
            () = lead_with(client.clone(), config.clone(), metrics.clone(), &gateway_api) => return,
            () = gateway_api_changed(&client, &config.scope.namespaces, &gateway_api) => {
                tracing::info!("the Gateway API kinds that can be read changed: watching them from now on (the caches fill again)");
            }
        }
    }
}

/// Resolves once the Gateway API kinds that can be read differ from `watched`, as a metadata watch of
/// the API's CRDs tells (no polling: at rest it is one idle connection). Without the right to watch
/// CRDs it never resolves, and a kind installed later is judged from the next leader on.
async fn gateway_api_changed(client: &Client, namespaces: &[String], watched: &[aegis_k8s::GatewayKind]) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds = Api::<PartialObjectMeta<CustomResourceDefinition>>::all(client.clone());
    let suffix = format!(".{}", aegis_k8s::GATEWAY_GROUP);
    let mut events = std::pin::pin!(watcher(crds, watcher::Config::default()).default_backoff());
    let mut listed = false;
    while let Some(event) = events.next().await {
        let touched = match event {
            Ok(watcher::Event::InitDone) => {
                // A kind installed between the lead's first look and this list.
                listed = true;
                true
            }
            Ok(watcher::Event::Apply(crd) | watcher::Event::Delete(crd)) => crd.metadata.name.is_some_and(|n| n.ends_with(&suffix)),
            Ok(_) => continue,
            Err(watcher::Error::InitialListFailed(kube::Error::Api(e))) if e.code == 403 => {
                tracing::warn!(error = %e, "CRDs cannot be watched: a Gateway API installed later is judged from the next leader on");
                return std::future::pending().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "CRD watch error; the watcher retries");
                continue;
            }
        };
        // A new CRD is served once it is Established: that status change is an event of its own.
        if listed && touched && aegis_k8s::readable_gateway_kinds(client, namespaces).await != watched {
            return;
        }
    }
    std::future::pending().await
}

/// The leader's work with the caches watching `gateway_api`: the controller, detection, the shadow
/// collector and the incident gauge.
async fn lead_with(client: Client, config: Arc<OperatorConfig>, metrics: Metrics, gateway_api: &[aegis_k8s::GatewayKind]) {
    // Watch-fed caches of what detection and analysis read (dropped with the lead: a standby holds
    // none).
    let (caches, changes) =
        aegis_k8s::cache::Caches::start(&client, &config.scope.namespaces, config.scope.label_selector.as_deref(), gateway_api);
    let caches = Arc::new(caches);
    // One controller per watched namespace (least privilege: a namespaced Role suffices), or one for
    // the whole cluster, whose reconcile skips namespaces out of scope.
    let apis: Vec<Api<Incident>> = if config.scope.namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        config.scope.namespaces.iter().map(|ns| Api::namespaced(client.clone(), ns)).collect()
    };
    let controllers: Vec<Controller<Incident>> = apis
        .into_iter()
        .map(|api| {
            Controller::new(api, watcher::Config::default())
                .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        })
        .collect();
    // The controllers' own caches of Incidents feed the gauge (no list every 15 s), detection and the
    // approval step's look for earlier incidents.
    let incident_stores: Vec<kube::runtime::reflector::Store<Incident>> = controllers.iter().map(|c| c.store()).collect();
    let reporter = Reporter { controller: aegis_k8s::EVENT_REPORTER.into(), instance: Some(config.lease.identity.clone()) };
    let ctx = Arc::new(Context {
        client: client.clone(),
        settings: config.settings.clone(),
        verify: config.verify.clone(),
        policy_for: config.policy_for.clone(),
        scope: config.scope.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        metrics: metrics.clone(),
        verifications: Default::default(),
        monitors: Default::default(),
        failures: Default::default(),
        caches: Some(caches.clone()),
        incidents: incident_stores.clone(),
    });
    let controllers = controllers.into_iter().map(|controller| {
        controller.run(reconcile, error_policy, ctx.clone()).for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller");
            }
        })
    });
    let controller = futures::future::join_all(controllers);
    let detection =
        detect::run(client.clone(), config.scope.clone(), config.debounce, config.resync, caches, changes, incident_stores.clone());
    let collector = collect_shadows(client.clone(), config.gc_interval);
    let gauge = incident_gauge(incident_stores, metrics);
    tokio::join!(controller, detection, collector, gauge);
}

/// Delete expired shadows, and shadows of operator incidents that are no longer verifying (the
/// verification was interrupted: a crash, a lost lease). A watch of the namespaces labelled as shadows
/// says whether there is any: with none, a pass calls nothing.
async fn collect_shadows(client: Client, every: Duration) {
    let (shadows, writer) = reflector::store();
    let label = aegis_k8s::shadow::SHADOW_LABEL;
    let watch = watcher(Api::<PartialObjectMeta<Namespace>>::all(client.clone()), watcher::Config::default().labels(label))
        .default_backoff()
        .reflect(writer)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::warn!(kind = "Namespace", error = %e, "shadow namespace watch error; the watcher retries");
            }
        });
    let collect = async {
        loop {
            // Until the watch has listed once (it never may, without RBAC), a pass lists, as it always did.
            let known = aegis_k8s::cache::has_listed(&shadows);
            if (!known || !shadows.is_empty())
                && let Err(e) = collect_once(&client).await
            {
                tracing::warn!(error = %e, "shadow collection failed; retrying");
            }
            tokio::time::sleep(every).await;
        }
    };
    tokio::join!(watch, collect);
}

/// One pass of the collector; returns the shadow namespaces it deleted.
pub async fn collect_once(client: &Client) -> Result<Vec<String>, aegis_k8s::K8sError> {
    let mut deleted = aegis_k8s::shadow::collect_expired(client, jiff::Timestamp::now()).await?;
    for s in aegis_k8s::shadow::list_shadows(client).await? {
        let Some((ns, name)) = s.incident.split_once('/') else { continue };
        if s.phase == "Terminating" {
            continue;
        }
        let incident = Api::<Incident>::namespaced(client.clone(), ns).get_opt(name).await.map_err(|source| aegis_k8s::K8sError::List {
            kind: "Incident",
            scope: ns.into(),
            source,
        })?;
        let verifying = incident.and_then(|i| i.status).is_some_and(|st| st.phase == Phase::Verifying);
        if !verifying {
            aegis_k8s::shadow::delete_shadow_namespace(client, &s.namespace).await?;
            deleted.push(s.namespace);
        }
    }
    Ok(deleted)
}

async fn incident_gauge(stores: Vec<kube::runtime::reflector::Store<Incident>>, metrics: Metrics) {
    loop {
        let mut counts = BTreeMap::new();
        for i in stores.iter().flat_map(|s| s.state()) {
            *counts.entry((i.status.as_ref().map(|s| s.phase).unwrap_or_default(), i.spec.category)).or_insert(0u64) += 1;
        }
        metrics.set_incidents(&counts);
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
}
