//! Shadows on the local cluster's real node (containerd, runc, kubelet): the right fix makes the shadow healthy, no fix (or a wrong one)
//! leaves it unhealthy with the reason, production is untouched throughout, and cleanup and the
//! collector leave nothing behind. Needs the cluster harness; fails loudly without it.

use std::time::Duration;

use aegis_k8s::health::{Health, watch_health};
use aegis_k8s::shadow::{ShadowSpec, collect_expired, create_shadow, delete_shadow, retarget};
use aegis_k8s::{Scope, apply_fix, snapshot};
use aegis_model::{Category, FixAction, Incident, ResourceRef};
use aegis_testkit::cluster::{TestNamespace, deployment, eventually, wait_available};
use aegis_testkit::harness_env;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

fn app() -> Value {
    json!({
        "name": "api", "image": format!("{}/demo-api:v2", harness_env("AEGIS_REGISTRY")), "ports": [{"containerPort": 8080}],
        "env": [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}],
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1}
    })
}

/// A production namespace with a Secret, a Service and a Deployment whose revision 2 crashloops.
async fn broken_production() -> (TestNamespace, Incident) {
    let ns = TestNamespace::create("shadow-prod").await;
    let secret: Secret = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"url": "postgres://db:5432/shop"}}),
    )
    .unwrap();
    ns.api::<Secret>().create(&PostParams::default(), &secret).await.unwrap();
    let svc: Service = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}, "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 8080}]}})).unwrap();
    ns.api::<Service>().create(&PostParams::default(), &svc).await.unwrap();
    let deployments = ns.api::<Deployment>();
    deployments.create(&PostParams::default(), &deployment("api", 3, app())).await.unwrap();
    wait_available(&deployments, "api", WAIT).await;
    let drop_env =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "env": [{"name": "DATABASE_URL", "$patch": "delete"}]}]}}}});
    deployments.patch("api", &PatchParams::default(), &Patch::Strategic(drop_env)).await.unwrap();
    let client = ns.client();
    let scope = Scope { namespace: Some(ns.name().to_owned()), label_selector: None };
    let incident = eventually("crashloop found", WAIT, || {
        let (client, scope) = (client.clone(), scope.clone());
        async move {
            let snap = snapshot(&client, &scope).await.map_err(|e| e.to_string())?;
            aegis_analysis::analyze(&snap)
                .into_iter()
                .find(|i| i.category == Category::CrashLoopBackOff)
                .ok_or_else(|| "not yet".to_owned())
        }
    })
    .await;
    (ns, incident)
}

fn spec(ns: &TestNamespace, incident: &Incident) -> ShadowSpec {
    ShadowSpec { fix: Some(incident.fix.clone()), incident: Some("test".into()), ..plain_spec(ns) }
}

/// A shadow of Deployment `api`, without a fix.
fn plain_spec(ns: &TestNamespace) -> ShadowSpec {
    ShadowSpec {
        fix: None,
        source: ResourceRef { kind: "Deployment".into(), namespace: ns.name().to_owned(), name: "api".into() },
        incident: None,
        ttl: Duration::from_secs(600),
        aegis_namespace: "aegis-system".into(),
        runtime_class: None,
    }
}

async fn production_state(ns: &TestNamespace) -> Value {
    let d = ns.api::<Deployment>().get("api").await.unwrap();
    json!({"generation": d.metadata.generation, "template": d.spec.unwrap().template})
}

#[tokio::test]
async fn the_right_fix_heals_the_shadow_and_production_is_untouched() {
    let (ns, incident) = broken_production().await;
    assert_eq!(incident.fix.action, FixAction::Rollback { to_revision: 1 });
    let before = production_state(&ns).await;
    let client = ns.client();
    let shadow = create_shadow(&client, &spec(&ns, &incident), jiff::Timestamp::now()).await.expect("shadow created");

    // Copied: the workload (with the shadow label on selector and template), the Secret its *fixed*
    // template references (revision 2 dropped it; the rollback brings it back), and its Service.
    let copy = Api::<Deployment>::namespaced(client.clone(), &shadow.namespace).get("api").await.unwrap();
    assert_eq!(copy.spec.as_ref().unwrap().selector.match_labels.as_ref().unwrap().get("aegis.io/shadow"), Some(&shadow.id));
    assert_eq!(copy.spec.as_ref().unwrap().replicas, Some(2), "at most two replicas in a shadow");
    assert!(Api::<Secret>::namespaced(client.clone(), &shadow.namespace).get("db").await.is_ok());
    let svc = Api::<Service>::namespaced(client.clone(), &shadow.namespace).get("api").await.unwrap();
    assert_eq!(svc.spec.unwrap().selector.unwrap().get("aegis.io/shadow"), Some(&shadow.id));
    let np = Api::<k8s_openapi::api::networking::v1::NetworkPolicy>::namespaced(client.clone(), &shadow.namespace)
        .get("aegis-shadow-isolation")
        .await;
    assert!(np.is_ok(), "isolated by a NetworkPolicy");

    let fix = retarget(&incident.fix, &shadow);
    apply_fix(&client, &fix, true, "aegis-shadow").await.expect("dry run");
    apply_fix(&client, &fix, false, "aegis-shadow").await.expect("fix applied in the shadow");
    let summary = watch_health(&client, &shadow.health_target(), Duration::from_secs(3), WAIT).await.unwrap();
    assert_eq!(summary.health, Health::Healthy, "{:?}", summary.observations);
    assert_eq!(production_state(&ns).await, before, "production untouched");

    delete_shadow(&client, &shadow).await.unwrap();
    let gone = Api::<Namespace>::all(client.clone()).get_opt(&shadow.namespace).await.unwrap();
    assert!(gone.is_none() || gone.unwrap().metadata.deletion_timestamp.is_some());
}

#[tokio::test]
async fn without_the_fix_the_shadow_stays_unhealthy_with_the_reason() {
    let (ns, incident) = broken_production().await;
    let client = ns.client();
    let shadow = create_shadow(&client, &spec(&ns, &incident), jiff::Timestamp::now()).await.unwrap();
    // A wrong fix: a restart does not bring the env var back.
    let mut wrong = incident.fix.clone();
    wrong.action = FixAction::Restart;
    wrong.patch = Some(aegis_model::Patch {
        patch_type: aegis_model::PatchType::StrategicMerge,
        target: incident.resource.clone(),
        body: json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-26T00:00:00Z"}}}}}),
    });
    apply_fix(&client, &retarget(&wrong, &shadow), false, "aegis-shadow").await.unwrap();
    let summary = watch_health(&client, &shadow.health_target(), Duration::from_secs(3), WAIT).await.unwrap();
    match summary.health {
        Health::Unhealthy { reasons } => {
            assert!(reasons.iter().any(|r| r.contains("CrashLoopBackOff") || r.contains("restarted")), "{reasons:?}")
        }
        Health::Healthy => panic!("a wrong fix must not pass: {:?}", summary.observations),
    }
    delete_shadow(&client, &shadow).await.unwrap();
}

#[tokio::test]
async fn the_collector_deletes_expired_shadows_left_behind() {
    let (ns, incident) = broken_production().await;
    let client = ns.client();
    let mut s = spec(&ns, &incident);
    s.ttl = Duration::from_secs(1);
    let shadow = create_shadow(&client, &s, jiff::Timestamp::now()).await.unwrap();
    // As if the process crashed here: nothing deletes the shadow but the collector.
    let later = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_secs(5)).unwrap();
    let deleted = collect_expired(&client, later).await.unwrap();
    assert!(deleted.contains(&shadow.namespace), "{deleted:?}");
}

/// A workload that runs under its own ServiceAccount starts in its shadow too (the account is copied,
/// without its token Secrets), and a NodePort Service with `externalTrafficPolicy: Local` is copied as a
/// ClusterIP the API server accepts.
#[tokio::test]
async fn a_workload_with_its_own_service_account_and_a_node_port_service_comes_up_in_its_shadow() {
    let ns = TestNamespace::create("shadow-sa").await;
    let sa: k8s_openapi::api::core::v1::ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "api-runner"}, "automountServiceAccountToken": false})).unwrap();
    ns.api::<k8s_openapi::api::core::v1::ServiceAccount>().create(&PostParams::default(), &sa).await.unwrap();
    let svc: Service =
        serde_json::from_value(json!({"metadata": {"name": "api"}, "spec": {"type": "NodePort", "externalTrafficPolicy": "Local",
        "selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 8080}]}}))
        .unwrap();
    ns.api::<Service>().create(&PostParams::default(), &svc).await.unwrap();
    // The setting as a literal: this test copies no Secret.
    let mut container = app();
    container["env"] = json!([aegis_testkit::cluster::database_url()]);
    let mut d = deployment("api", 1, container);
    d.spec.as_mut().unwrap().template.spec.as_mut().unwrap().service_account_name = Some("api-runner".into());
    ns.api::<Deployment>().create(&PostParams::default(), &d).await.unwrap();
    wait_available(&ns.api::<Deployment>(), "api", WAIT).await;

    let spec = plain_spec(&ns);
    let shadow = create_shadow(&ns.client(), &spec, jiff::Timestamp::now()).await.expect("the shadow is created");
    let client = ns.client();
    let copied = Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), &shadow.namespace).get("api-runner").await;
    assert!(copied.is_ok(), "the ServiceAccount is copied");
    let copy = Api::<Service>::namespaced(client.clone(), &shadow.namespace).get("api").await.unwrap();
    assert_eq!(copy.spec.as_ref().unwrap().type_.as_deref(), Some("ClusterIP"));
    wait_available(&Api::<Deployment>::namespaced(client.clone(), &shadow.namespace), "api", WAIT).await;
    delete_shadow(&client, &shadow).await.unwrap();
}

/// A private registry's credentials on the namespace's default ServiceAccount: the API server adds them
/// to every production pod. The shadow's pods get the same (the Secret copied, the names on the copy's
/// pods). The harness's registry takes no credentials, so the pull itself is not what is proven here;
/// that the shadow's pods carry what production's carry is.
#[tokio::test]
async fn pull_credentials_production_pods_get_from_the_default_account_are_given_to_the_shadows_pods() {
    use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
    let ns = TestNamespace::create("shadow-pull").await;
    let auth = format!("{{\"auths\":{{\"{}\":{{\"auth\":\"dXNlcjpwYXNz\"}}}}}}", harness_env("AEGIS_REGISTRY"));
    let creds: Secret = serde_json::from_value(json!({"metadata": {"name": "registry-creds"}, "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": auth}}))
    .unwrap();
    ns.api::<Secret>().create(&PostParams::default(), &creds).await.unwrap();
    // The namespace's default account is created by a controller, a moment after the namespace.
    eventually("the default account patched", WAIT, || {
        let accounts = ns.api::<ServiceAccount>();
        async move {
            let pull = json!({"imagePullSecrets": [{"name": "registry-creds"}]});
            accounts.patch("default", &PatchParams::default(), &Patch::Merge(pull)).await.map(|_| ()).map_err(|e| e.to_string())
        }
    })
    .await;
    let mut container = app();
    container["env"] = json!([aegis_testkit::cluster::database_url()]);
    ns.api::<Deployment>().create(&PostParams::default(), &deployment("api", 1, container)).await.unwrap();
    wait_available(&ns.api::<Deployment>(), "api", WAIT).await;

    let spec = plain_spec(&ns);
    let client = ns.client();
    let shadow = create_shadow(&client, &spec, jiff::Timestamp::now()).await.expect("the shadow is created");
    let copied = Api::<Secret>::namespaced(client.clone(), &shadow.namespace).get_opt("registry-creds").await.unwrap();
    assert!(copied.is_some(), "the pull Secret is copied");
    wait_available(&Api::<Deployment>::namespaced(client.clone(), &shadow.namespace), "api", WAIT).await;
    let pods = Api::<Pod>::namespaced(client.clone(), &shadow.namespace).list(&Default::default()).await.unwrap();
    assert!(!pods.items.is_empty());
    for p in &pods.items {
        let names: Vec<&str> = p.spec.as_ref().unwrap().image_pull_secrets.iter().flatten().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["registry-creds"], "{:?}", p.metadata.name);
    }
    delete_shadow(&client, &shadow).await.unwrap();
}

/// Run the test app's `probe connect` client as a pod in `namespace` (on the real node) against `addrs`, and
/// return what it printed: one `reached ADDR` or `blocked ADDR: why` line per address.
async fn connect_from(client: &kube::Client, namespace: &str, name: &str, addrs: &[String]) -> String {
    use k8s_openapi::api::core::v1::Pod;
    let args: Vec<String> = ["probe", "connect"].into_iter().map(str::to_owned).chain(addrs.iter().cloned()).collect();
    let mut spec = aegis_testkit::cluster::on_real_node();
    spec["restartPolicy"] = json!("Never");
    spec["containers"] = json!([{"name": "probe", "image": format!("{}/demo-api:v2", harness_env("AEGIS_REGISTRY")),
        "args": args, "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]);
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually(&format!("probe {name} done"), WAIT, || {
        let pods = pods.clone();
        async move {
            let p = pods.get(name).await.map_err(|e| e.to_string())?;
            let phase = p.status.and_then(|s| s.phase).unwrap_or_default();
            if phase == "Succeeded" || phase == "Failed" { Ok(()) } else { Err(phase) }
        }
    })
    .await;
    pods.logs(name, &Default::default()).await.unwrap()
}

/// The shadow's NetworkPolicy is enforced on the real node (kube-router's firewall), not only declared:
/// from inside the shadow, production's Service and the API server (the `kubernetes` Service) cannot be
/// reached, while the shadow's own Service answers. The same client in production reaches both — so
/// what the shadow sees is the policy's doing.
#[tokio::test]
async fn a_pod_in_a_shadow_cannot_reach_production_or_the_api_server_but_reaches_the_shadow() {
    let (ns, incident) = broken_production().await;
    let client = ns.client();
    let shadow = create_shadow(&client, &spec(&ns, &incident), jiff::Timestamp::now()).await.expect("shadow created");
    apply_fix(&client, &retarget(&incident.fix, &shadow), false, "aegis-shadow").await.unwrap();
    let summary = watch_health(&client, &shadow.health_target(), Duration::from_secs(2), WAIT).await.unwrap();
    assert_eq!(summary.health, Health::Healthy, "{:?}", summary.observations);

    let service_ip = |namespace: String, name: &'static str| {
        let client = client.clone();
        async move {
            let svc = Api::<Service>::namespaced(client, &namespace).get(name).await.unwrap();
            let spec = svc.spec.unwrap();
            format!("{}:{}", spec.cluster_ip.unwrap(), spec.ports.unwrap()[0].port)
        }
    };
    let production = service_ip(ns.name().to_owned(), "api").await;
    let own = service_ip(shadow.namespace.clone(), "api").await;
    let api_server = service_ip("default".into(), "kubernetes").await;
    let targets = [production.clone(), api_server.clone(), own.clone()];

    let (from_shadow, from_production) =
        tokio::join!(connect_from(&client, &shadow.namespace, "probe", &targets), connect_from(&client, ns.name(), "probe", &targets[..2]));
    eprintln!("from the shadow:\n{from_shadow}from production:\n{from_production}");
    for addr in [&production, &api_server] {
        assert!(from_production.contains(&format!("reached {addr}")), "the client and the path work from production: {from_production}");
        assert!(from_shadow.contains(&format!("blocked {addr}")), "{addr} is out of the shadow's reach: {from_shadow}");
    }
    assert!(from_shadow.contains(&format!("reached {own}")), "the shadow's own Service answers: {from_shadow}");
    delete_shadow(&client, &shadow).await.unwrap();
}

/// A client for the harness cluster that counts the calls answered with a body read at once: GETs
/// and LISTs (watches are counted apart, as `WATCH`).
async fn counting_client() -> (kube::Client, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    let path = harness_env("AEGIS_KUBECONFIG");
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    let gets = Arc::new(AtomicU32::new(0));
    let counted = gets.clone();
    let observer: aegis_k8s::client::Observer = Arc::new(move |call| {
        if call.verb == "GET" {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    (aegis_k8s::client::build(config, Some(observer)).unwrap(), gets)
}

/// The health window follows watches: a look reads what they delivered, so the API server sees a
/// handful of lists when the window starts, not a list per kind every half second.
#[tokio::test]
async fn a_health_watch_lists_what_it_reads_once_and_then_follows_watches() {
    let ns = TestNamespace::create("health-calls").await;
    let image = format!("{}/demo-api:v2", harness_env("AEGIS_REGISTRY"));
    aegis_testkit::cluster::service(&ns, "api", "api", 8080).await;
    let deployments = ns.api::<Deployment>();
    deployments.create(&PostParams::default(), &deployment("api", 1, aegis_testkit::cluster::probed_app(&image))).await.unwrap();
    wait_available(&deployments, "api", WAIT).await;

    let (client, gets) = counting_client().await;
    let target = aegis_k8s::health::HealthTarget {
        workload: ResourceRef { kind: "Deployment".into(), namespace: ns.name().to_owned(), name: "api".into() },
        services: vec!["api".into()],
        unschedulable_grace: aegis_k8s::health::SHADOW_UNSCHEDULABLE_GRACE,
    };
    let summary = watch_health(&client, &target, Duration::from_secs(6), WAIT).await.unwrap();
    assert_eq!(summary.health, Health::Healthy, "{:?}", summary.observations);
    let gets = gets.load(std::sync::atomic::Ordering::Relaxed);
    assert!(gets <= 6, "{gets} GETs and LISTs for a 6 s window: the looks must read the watches, not the API server");
}
