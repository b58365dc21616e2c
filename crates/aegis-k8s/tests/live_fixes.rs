//! On the local cluster's real node: the classic incidents created for real (the test app's process
//! exits, is OOM-killed, is probed where it does not serve, cannot be pulled), read live into a
//! snapshot, analyzed to the same incident as their captured files, and the rendered fix applied with
//! `apply_patch` — server-side dry run first, then for real — heals the workload; the inverse patch
//! brings back what was there. Needs the cluster harness; fails loudly without it.

use std::time::Duration;

use aegis_k8s::{Scope, apply_patch, snapshot};
use aegis_model::{Category, FixAction, Incident};
use aegis_testkit::cluster::{TestNamespace, database_url, deployment, eventually, on_real_node, wait_available};
use aegis_testkit::harness_env;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);
const MANAGER: &str = "aegis-tests";

fn image(tag: &str) -> String {
    format!("{}/demo-api:{tag}", harness_env("AEGIS_REGISTRY"))
}

fn app(name: &str) -> Value {
    json!({
        "name": name,
        "image": image("v2"),
        "ports": [{"containerPort": 8080}],
        "env": [database_url()],
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 2, "failureThreshold": 2}
    })
}

/// The app told to hold 200 MiB under a 128Mi limit: the kernel's memory cgroup kills it.
fn oom_app(name: &str) -> Value {
    let mut container = app(name);
    container["env"] = json!([database_url(), {"name": "ALLOCATE_MIB", "value": "200"}]);
    container["resources"]["limits"]["memory"] = json!("128Mi");
    container
}

/// Wait until a live analysis of the namespace reports `category`, and return that incident.
async fn incident(ns: &TestNamespace, category: Category) -> Incident {
    let client = ns.client();
    let scope = Scope { namespace: Some(ns.name().to_owned()), label_selector: None };
    eventually(&format!("{category} detected live"), WAIT, || {
        let (client, scope) = (client.clone(), scope.clone());
        async move {
            let snap = snapshot(&client, &scope).await.map_err(|e| e.to_string())?;
            let found = aegis_analysis::analyze(&snap);
            found
                .iter()
                .find(|i| i.category == category)
                .cloned()
                .ok_or_else(|| format!("{:?}", found.iter().map(|i| i.category).collect::<Vec<_>>()))
        }
    })
    .await
}

async fn apply_fix(ns: &TestNamespace, i: &Incident) -> aegis_k8s::Applied {
    assert!(i.fix.patch.is_some(), "the fix renders a patch");
    aegis_k8s::apply_fix(&ns.client(), &i.fix, true, MANAGER).await.expect("server-side dry run admits the patch");
    aegis_k8s::apply_fix(&ns.client(), &i.fix, false, MANAGER).await.expect("the fix applies")
}

async fn crashloop_pod_appears(ns: &TestNamespace) {
    let api = ns.api::<Pod>();
    eventually("a CrashLoopBackOff pod", WAIT, || {
        let api = api.clone();
        async move {
            let pods = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
            let crashing = pods.items.iter().any(|p| {
                p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()) == Some("CrashLoopBackOff")
                    })
                })
            });
            if crashing { Ok(()) } else { Err("none yet".into()) }
        }
    })
    .await
}

#[tokio::test]
async fn a_crashloop_after_a_bad_rollout_is_found_live_rolled_back_and_the_inverse_restores_it() {
    let ns = TestNamespace::create("fix-crashloop").await;
    let deployments = ns.api::<Deployment>();
    deployments.create(&PostParams::default(), &deployment("api", 3, app("api"))).await.unwrap();
    wait_available(&deployments, "api", WAIT).await;
    // Revision 2 drops DATABASE_URL.
    let broken =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "env": [{"name": "DATABASE_URL", "$patch": "delete"}]}]}}}});
    deployments.patch("api", &PatchParams::default(), &Patch::Strategic(broken)).await.unwrap();
    crashloop_pod_appears(&ns).await;

    let i = incident(&ns, Category::CrashLoopBackOff).await;
    assert_eq!(i.fix.action, FixAction::Rollback { to_revision: 1 }, "{}", i.root_cause);
    let before_fix = deployments.get("api").await.unwrap().spec.unwrap().template;
    apply_fix(&ns, &i).await;
    wait_available(&deployments, "api", WAIT).await;
    let env = deployments.get("api").await.unwrap().spec.unwrap().template.spec.unwrap().containers[0].env.clone().unwrap_or_default();
    assert!(env.iter().any(|e| e.name == "DATABASE_URL"), "rolled back to the template with the env var");

    // The inverse puts back exactly the template that was there before the fix.
    apply_patch(&ns.client(), i.fix.inverse.as_ref().unwrap(), false, MANAGER).await.unwrap();
    let after_inverse = deployments.get("api").await.unwrap().spec.unwrap().template;
    assert_eq!(after_inverse.spec.unwrap().containers[0].env, before_fix.spec.unwrap().containers[0].env);
    crashloop_pod_appears(&ns).await;
}

#[tokio::test]
async fn an_oom_is_found_live_and_the_raised_limit_heals_it() {
    let ns = TestNamespace::create("fix-oom").await;
    let deployments = ns.api::<Deployment>();
    deployments.create(&PostParams::default(), &deployment("api", 2, oom_app("api"))).await.unwrap();
    let i = incident(&ns, Category::OOMKilled).await;
    assert!(matches!(&i.fix.action, FixAction::SetResources { limits, .. } if limits["memory"] == "256Mi"));
    apply_fix(&ns, &i).await;
    wait_available(&deployments, "api", WAIT).await;
}

#[tokio::test]
async fn requests_too_large_for_any_node_are_found_live_and_the_lowered_requests_schedule() {
    let ns = TestNamespace::create("fix-pending").await;
    let deployments = ns.api::<Deployment>();
    let mut container = app("api");
    container["resources"] = json!({"requests": {"cpu": "100m", "memory": "64Gi"}, "limits": {"memory": "64Gi"}});
    deployments.create(&PostParams::default(), &deployment("api", 2, container)).await.unwrap();
    let i = incident(&ns, Category::Unschedulable).await;
    apply_fix(&ns, &i).await;
    wait_available(&deployments, "api", WAIT).await;
}

#[tokio::test]
async fn a_service_selector_typo_is_found_live_and_the_fixed_selector_gets_endpoints() {
    let ns = TestNamespace::create("fix-selector").await;
    let deployments = ns.api::<Deployment>();
    deployments.create(&PostParams::default(), &deployment("web", 2, app("web"))).await.unwrap();
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "wbe"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))
    .unwrap();
    ns.api::<Service>().create(&PostParams::default(), &svc).await.unwrap();
    wait_available(&deployments, "web", WAIT).await;

    let i = incident(&ns, Category::ServiceSelectorMismatch).await;
    apply_fix(&ns, &i).await;
    let endpoints = ns.api::<Endpoints>();
    eventually("the Service has ready endpoints", WAIT, || {
        let endpoints = endpoints.clone();
        async move {
            let ep = endpoints.get("web").await.map_err(|e| e.to_string())?;
            let ready: usize = ep.subsets.unwrap_or_default().iter().map(|s| s.addresses.as_ref().map_or(0, Vec::len)).sum();
            if ready == 2 { Ok(()) } else { Err(format!("{ready} ready addresses")) }
        }
    })
    .await;
    apply_patch(&ns.client(), i.fix.inverse.as_ref().unwrap(), false, MANAGER).await.unwrap();
    let selector = ns.api::<Service>().get("web").await.unwrap().spec.unwrap().selector.unwrap();
    assert_eq!(selector.get("app").map(String::as_str), Some("wbe"), "the inverse restores the old selector");
}

#[tokio::test]
async fn a_live_snapshot_never_reads_secrets() {
    let ns = TestNamespace::create("snapshot-secrets").await;
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "hunter2"}
    }))
    .unwrap();
    ns.api::<k8s_openapi::api::core::v1::Secret>().create(&PostParams::default(), &secret).await.unwrap();
    let snap = snapshot(&ns.client(), &Scope { namespace: Some(ns.name().to_owned()), label_selector: None }).await.unwrap();
    assert!(snap.secrets.is_empty(), "Secrets are not listed: {:?}", snap.secrets);
    assert!(!format!("{snap:?}").contains("hunter2") && !format!("{snap:?}").contains("aHVudGVyMg"));
    assert!(!snap.nodes.is_empty(), "nodes are visible to the harness's admin kubeconfig");
}

/// Create a healthy Deployment, break it with `patch` (revision 2), wait until `category` is found live,
/// roll back with the rendered fix and wait until it is healthy again.
async fn bad_rollout_is_rolled_back(prefix: &str, patch: Value, category: Category) {
    let ns = TestNamespace::create(prefix).await;
    let deployments = ns.api::<Deployment>();
    deployments.create(&PostParams::default(), &deployment("api", 3, app("api"))).await.unwrap();
    wait_available(&deployments, "api", WAIT).await;
    deployments.patch("api", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
    let i = incident(&ns, category).await;
    assert_eq!(i.fix.action, FixAction::Rollback { to_revision: 1 }, "{}", i.root_cause);
    apply_fix(&ns, &i).await;
    wait_available(&deployments, "api", WAIT).await;
}

#[tokio::test]
async fn a_rollout_to_a_missing_tag_is_found_live_and_rolled_back() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": image("v2.1-does-not-exist")}]}}}});
    bad_rollout_is_rolled_back("fix-pull", patch, Category::ImagePullBackOff).await;
}

#[tokio::test]
async fn a_rollout_that_moves_the_liveness_probe_is_found_live_and_rolled_back() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}}}]}}}});
    bad_rollout_is_rolled_back("fix-liveness", patch, Category::LivenessProbeFailure).await;
}

#[tokio::test]
async fn a_rollout_that_moves_the_readiness_probe_is_found_live_and_rolled_back() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "readinessProbe": {"httpGet": {"path": "/status", "port": 8080}}}]}}}});
    bad_rollout_is_rolled_back("fix-readiness", patch, Category::ReadinessProbeFailure).await;
}

#[tokio::test]
async fn an_oom_in_a_statefulset_is_found_live_and_the_raised_limit_heals_it() {
    oom_in_a_stateful_set_is_healed("fix-sts", false).await;
}

/// Production's guarded path (precondition and marker) is the shadow's path: the same forced rollback
/// follows the patch, so a StatefulSet fix that passed in a shadow does not hang in production.
#[tokio::test]
async fn production_applies_a_statefulset_fix_through_the_same_path_with_its_forced_rollback() {
    oom_in_a_stateful_set_is_healed("fix-sts-guarded", true).await;
}

async fn oom_in_a_stateful_set_is_healed(prefix: &str, guarded: bool) {
    use k8s_openapi::api::apps::v1::StatefulSet;
    let ns = TestNamespace::create(prefix).await;
    let mut pod_spec = on_real_node();
    pod_spec["containers"] = json!([oom_app("db")]);
    pod_spec["terminationGracePeriodSeconds"] = json!(5);
    let sts: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "replicas": 2, "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": pod_spec}}
    }))
    .unwrap();
    let api = ns.api::<StatefulSet>();
    api.create(&PostParams::default(), &sts).await.unwrap();
    let i = incident(&ns, Category::OOMKilled).await;
    assert_eq!((i.resource.kind.as_str(), i.resource.name.as_str()), ("StatefulSet", "db"));
    assert!(matches!(&i.fix.action, FixAction::SetResources { limits, .. } if limits["memory"] == "256Mi"));
    let applied = if guarded {
        let generation = api.get("db").await.unwrap().metadata.generation.unwrap();
        let pre = aegis_k8s::apply::Precondition { workload: i.resource.clone(), generation };
        let patch = i.fix.patch.as_ref().unwrap();
        let (outcome, applied) = aegis_k8s::apply::apply_guarded(&ns.client(), patch, Some(&pre), "aegis.io/applied-fix", "test", MANAGER)
            .await
            .expect("the guarded fix applies");
        assert!(matches!(outcome, aegis_k8s::apply::Guarded::Applied { .. }), "{outcome:?}");
        applied
    } else {
        apply_fix(&ns, &i).await
    };
    assert!(!applied.deleted_pods.is_empty(), "an OrderedReady StatefulSet needs its broken pods replaced");
    eventually("statefulset ready with the new limit", WAIT, || {
        let api = api.clone();
        async move {
            let s = api.get("db").await.map_err(|e| e.to_string())?;
            let st = s.status.unwrap_or_default();
            let ok = st.ready_replicas == Some(2) && st.updated_replicas == Some(2) && st.current_revision == st.update_revision;
            if ok { Ok(()) } else { Err(format!("ready {:?} updated {:?}", st.ready_replicas, st.updated_replicas)) }
        }
    })
    .await;
}

/// The operator's caches of `namespaces` (with the Gateway API kinds served there), filled; the task
/// that feeds them runs until aborted.
async fn filled_caches(client: &kube::Client, namespaces: &[String]) -> (aegis_k8s::cache::Caches, tokio::task::JoinHandle<()>) {
    let gateway_api = aegis_k8s::readable_gateway_kinds(client, namespaces).await;
    let (caches, changes) = aegis_k8s::cache::Caches::start(client, namespaces, None, &gateway_api);
    let pump = tokio::spawn(futures::StreamExt::for_each(changes, |_| async {}));
    caches.ready().await;
    (caches, pump)
}

/// A namespace's snapshot holds the Gateways of the other namespaces its ListenerSets (and routes)
/// name as parents — listed, and from the operator's caches alike — and judges them not.
#[tokio::test]
async fn a_namespaces_snapshot_reads_its_parent_gateways_from_another_namespace_cached_as_listed() {
    let team = TestNamespace::create("team").await;
    let infra = TestNamespace::create("infra").await;
    aegis_testkit::cluster::listener_set_on_another_namespaces_gateway(&team, &infra).await;
    let client = team.client();
    let (caches, pump) = filled_caches(&client, &[team.name().to_owned(), infra.name().to_owned()]).await;

    let listed = snapshot(&client, &Scope { namespace: Some(team.name().to_owned()), label_selector: None }).await.unwrap();
    let cached = caches.snapshot(team.name()).expect("a watched namespace");
    let parents = |s: &aegis_analysis::Snapshot| {
        s.parent_gateways
            .iter()
            .map(|g| format!("{}/{}", g.metadata.namespace.clone().unwrap_or_default(), g.metadata.name.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    assert_eq!(parents(&listed), [format!("{}/public", infra.name())], "the listed snapshot reads the parent's namespace");
    assert_eq!(parents(&cached), parents(&listed), "the cached snapshot holds the same parents");
    assert!(listed.gateways.is_empty() && cached.gateways.is_empty(), "a parent is not one of the namespace's own Gateways");
    assert_eq!(
        cached.parent_gateways[0].spec.allowed_listeners, listed.parent_gateways[0].spec.allowed_listeners,
        "what decides whether the ListenerSet is taken is read in both"
    );
    let incidents = |s: &aegis_analysis::Snapshot| {
        aegis_analysis::analyze(s).into_iter().map(|i| (i.category, i.resource, i.fix.summary)).collect::<Vec<_>>()
    };
    assert_eq!(incidents(&cached), incidents(&listed));
    let infra_only = caches.snapshot(infra.name()).expect("watched");
    assert!(infra_only.parent_gateways.is_empty(), "the Gateway's own namespace holds it as its own");
    assert_eq!(infra_only.gateways.len(), 1);
    pump.abort();
}

/// A Gateway of a class the cluster does not have is found alike from a listed snapshot and from the
/// operator's caches, which watch the cluster's GatewayClasses.
#[tokio::test]
async fn a_gateway_of_a_class_the_cluster_lacks_is_found_from_the_cached_classes_as_from_the_listed_ones() {
    let ns = TestNamespace::create("gwclass").await;
    aegis_testkit::cluster::gateway_of_a_missing_class(&ns).await;
    let client = ns.client();
    let (caches, pump) = filled_caches(&client, &[ns.name().to_owned()]).await;
    let listed = snapshot(&client, &Scope { namespace: Some(ns.name().to_owned()), label_selector: None }).await.unwrap();
    let cached = caches.snapshot(ns.name()).expect("a watched namespace");
    let classes = |s: &aegis_analysis::Snapshot| s.gateway_classes.iter().filter_map(|c| c.metadata.name.clone()).collect::<Vec<_>>();
    assert!(classes(&listed).contains(&"none".to_owned()), "{:?}", classes(&listed));
    assert_eq!(classes(&cached), classes(&listed), "the cached classes are the listed ones");
    let not_ready = |s: &aegis_analysis::Snapshot| {
        aegis_analysis::analyze(s)
            .into_iter()
            .filter(|i| i.category == Category::GatewayNotReady)
            .map(|i| (i.resource.name, i.root_cause))
            .collect::<Vec<_>>()
    };
    let found = not_ready(&listed);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "orphan");
    assert!(found[0].1.contains("GatewayClass no-such-class, which does not exist"), "{}", found[0].1);
    assert_eq!(not_ready(&cached), found);
    pump.abort();
}

/// The operator's watch-fed caches see what a LIST sees: on the real node, a Service whose selector
/// has a typo and a ConfigMap — the analysis of the cached snapshot equals the analysis of the listed
/// one, the ConfigMap's keys are cached without their values, and a change arrives through the watch
/// (its namespace reported, the new generation in the cache) without another list.
#[tokio::test]
async fn the_watch_fed_caches_give_the_analysis_what_a_list_gives() {
    let ns = TestNamespace::create("cache").await;
    aegis_testkit::cluster::selector_typo(&ns, &image("v2"), WAIT).await;
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "settings"}, "data": {"LOG_LEVEL": "debug", "REGION": "eu-west-1"}})).unwrap();
    ns.api::<k8s_openapi::api::core::v1::ConfigMap>().create(&PostParams::default(), &cm).await.unwrap();
    let client = ns.client();
    aegis_testkit::cluster::route_to_missing_backend(&ns).await;
    aegis_testkit::cluster::grpc_route_to_missing_backend(&ns).await;
    aegis_testkit::cluster::tcp_route_on_listener_set(&ns).await;
    // The harness serves the Gateway API (its CRDs, no controller): routes are cached too.
    let gateway_api = aegis_k8s::readable_gateway_kinds(&client, &[ns.name().to_owned()]).await;
    assert_eq!(gateway_api, aegis_k8s::GatewayKind::ALL, "the harness installs the Gateway API's CRDs");
    let (caches, changes) = aegis_k8s::cache::Caches::start(&client, &[ns.name().to_owned()], None, &gateway_api);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let pump = tokio::spawn(futures::StreamExt::for_each(changes, move |t| {
        record.lock().unwrap().push(t);
        async {}
    }));
    assert!(caches.snapshot(ns.name()).is_none(), "no snapshot before the caches are filled");
    caches.ready().await;
    assert!(caches.snapshot("some-other-namespace").is_none(), "an unwatched namespace has no snapshot");

    let listed = snapshot(&client, &Scope { namespace: Some(ns.name().to_owned()), label_selector: None }).await.unwrap();
    let cached = caches.snapshot(ns.name()).expect("a watched namespace");
    assert_eq!(cached.pods.len(), listed.pods.len());
    assert_eq!(cached.deployments.len(), 1);
    let incidents = |s: &aegis_analysis::Snapshot| {
        aegis_analysis::analyze(s).into_iter().map(|i| (i.category, i.resource, i.fix.summary)).collect::<Vec<_>>()
    };
    assert_eq!(incidents(&cached), incidents(&listed), "the cached snapshot analyses as the listed one");
    assert!(incidents(&cached).iter().any(|(c, _, _)| *c == Category::ServiceSelectorMismatch));
    let routes: Vec<(&str, Option<&str>)> = cached.routes.iter().map(|r| (r.kind.as_str(), r.metadata.name.as_deref())).collect();
    assert_eq!(
        routes,
        [("HTTPRoute", Some("shop")), ("GRPCRoute", Some("orders")), ("TCPRoute", Some("db"))],
        "the routes of every kind are cached"
    );
    let listener_sets = |s: &aegis_analysis::Snapshot| s.listener_sets.iter().map(|l| l.metadata.name.clone()).collect::<Vec<_>>();
    assert_eq!(listener_sets(&cached), [Some("extra".to_owned())], "ListenerSets are cached");
    assert_eq!(listener_sets(&cached), listener_sets(&listed));
    let mut broken: Vec<String> = incidents(&cached)
        .into_iter()
        .filter(|(c, _, _)| *c == Category::RouteBackendMissing)
        .map(|(_, r, _)| format!("{}/{}", r.kind, r.name))
        .collect();
    broken.sort();
    assert_eq!(broken, ["GRPCRoute/orders", "HTTPRoute/shop", "TCPRoute/db"], "{:?}", incidents(&cached));
    let keys = |s: &aegis_analysis::Snapshot| s.config_maps.iter().find(|c| c.name == "settings").map(|c| c.keys.clone());
    assert_eq!(keys(&cached), Some(vec!["LOG_LEVEL".to_owned(), "REGION".to_owned()]));
    assert_eq!(keys(&cached), keys(&listed));
    assert!(cached.deployments[0].metadata.managed_fields.is_none(), "managedFields are not cached");

    seen.lock().unwrap().clear();
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {"aegis.test/bump": "1"}}}}});
    ns.api::<Deployment>().patch("api", &PatchParams::default(), &Patch::Strategic(patch)).await.unwrap();
    eventually("the new generation in the cache", WAIT, || {
        let generation = caches.snapshot(ns.name()).and_then(|s| s.deployments.first().and_then(|d| d.metadata.generation));
        async move { if generation == Some(2) { Ok(()) } else { Err(format!("generation {generation:?}")) } }
    })
    .await;
    let touched = seen.lock().unwrap().clone();
    assert!(touched.iter().any(|t| t.kind == "Deployment" && t.namespace == ns.name()), "{touched:?}");
    pump.abort();
}
