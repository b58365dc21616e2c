//! The local cluster (scripts/harness/cluster.sh) behaves as a real one: on its real node (containerd,
//! runc, kubelet) each classic incident happens because the test app's process does what a broken
//! workload's would — exits without its setting, is OOM-killed by the memory cgroup, is not served on a
//! probed path, cannot be pulled — and the right fix to the spec makes the workload healthy. The kwok
//! nodes, kept for scale work, still run unpinned pods. Needs the harnesses; fails loudly without them.

use std::time::Duration;

use aegis_testkit::cluster::{TestNamespace, database_url, eventually, probed_app};
use aegis_testkit::harness_env;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

fn deployment(name: &str, container: Value) -> Deployment {
    aegis_testkit::cluster::deployment(name, 2, container)
}

fn image(tag: &str) -> String {
    format!("{}/demo-api:{tag}", harness_env("AEGIS_REGISTRY"))
}

/// The app's container without probes: `image`, its required setting, and `extra` merged in.
fn app(extra: Value) -> Value {
    let mut c = json!({"name": "api", "image": image("v2"), "env": [database_url()]});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c
}

async fn create(ns: &TestNamespace, d: &Deployment) {
    ns.api::<Deployment>().create(&PostParams::default(), d).await.expect("create deployment");
}

async fn available(ns: &TestNamespace, name: &str) {
    aegis_testkit::cluster::wait_available(&ns.api::<Deployment>(), name, WAIT).await
}

/// The first container status of a pod of `app` that satisfies `check`.
async fn pod_status(ns: &TestNamespace, app: &str, what: &str, check: impl Fn(&Pod, &ContainerStatus) -> bool) -> (Pod, ContainerStatus) {
    let api = ns.api::<Pod>();
    let lp = ListParams::default().labels(&format!("app={app}"));
    let check = &check;
    eventually(what, WAIT, || {
        let (api, lp) = (api.clone(), lp.clone());
        async move {
            let pods = api.list(&lp).await.map_err(|e| e.to_string())?;
            for p in &pods.items {
                if let Some(cs) = p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).and_then(|c| c.first())
                    && check(p, cs)
                {
                    return Ok((p.clone(), cs.clone()));
                }
            }
            Err(format!(
                "{:?}",
                pods.items.iter().map(|p| p.status.as_ref().map(|s| (&s.phase, &s.container_statuses))).collect::<Vec<_>>()
            ))
        }
    })
    .await
}

async fn has_event(ns: &TestNamespace, reason: &str, message_part: &str) {
    let api = ns.api::<Event>();
    eventually(&format!("event {reason}"), WAIT, || {
        let api = api.clone();
        async move {
            let events = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
            if events.items.iter().any(|e| e.reason.as_deref() == Some(reason) && e.message.as_deref().unwrap_or("").contains(message_part))
            {
                Ok(())
            } else {
                Err(format!("{:?}", events.items.iter().map(|e| (&e.reason, &e.message)).collect::<Vec<_>>()))
            }
        }
    })
    .await
}

async fn patch(ns: &TestNamespace, name: &str, patch: Value) {
    ns.api::<Deployment>().patch(name, &PatchParams::default(), &Patch::Strategic(patch)).await.expect("patch deployment");
}

fn ready(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn probe(path: &str) -> Value {
    json!({"httpGet": {"path": path, "port": 8080}})
}

#[tokio::test]
async fn an_unpinned_deployment_rolls_out_to_the_fake_nodes_kept_for_scale() {
    let ns = TestNamespace::create("rollout").await;
    let mut d = deployment("web", json!({"name": "web", "image": "demo-api:v2"}));
    let spec = d.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    (spec.node_selector, spec.tolerations) = (None, None);
    create(&ns, &d).await;
    available(&ns, "web").await;
    let pods = ns.api::<Pod>().list(&ListParams::default().labels("app=web")).await.unwrap();
    assert_eq!(pods.items.len(), 2);
    for p in &pods.items {
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        assert!(node.starts_with("kwok-node-"), "an unpinned pod stays off the tainted real node: {node}");
        assert!(ready(p));
        assert!(p.metadata.owner_references.as_ref().is_some_and(|o| o[0].kind == "ReplicaSet"));
    }
}

#[tokio::test]
async fn the_real_node_runs_the_app_ready_through_its_probes_and_answers_through_its_service() {
    let ns = TestNamespace::create("realnode").await;
    create(&ns, &deployment("api", probed_app(&image("v2")))).await;
    aegis_testkit::cluster::service(&ns, "api", "api", 80).await;
    available(&ns, "api").await;
    let pods = ns.api::<Pod>().list(&ListParams::default().labels("app=api")).await.unwrap();
    for p in &pods.items {
        assert_eq!(p.spec.as_ref().and_then(|s| s.node_name.as_deref()), Some("aegis-node"));
        assert!(p.status.as_ref().and_then(|s| s.pod_ip.as_deref()).is_some_and(|ip| ip.starts_with("10.88.")), "a CNI address");
    }
    let svc = ns.api::<k8s_openapi::api::core::v1::Service>().get("api").await.unwrap();
    let ip = svc.spec.unwrap().cluster_ip.unwrap();
    // Through kube-proxy's rules for the ClusterIP, from the host, as plain HTTP/1.0. Until kube-proxy
    // has written them, the ClusterIP is just an address on the default route, and whatever answers
    // there is not the app (seen in CI: this machine's egress proxy, "426 Upgrade Required"): only
    // the app's own answer counts.
    let body = eventually("the Service answers with the app", WAIT, || {
        let ip = ip.clone();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut conn = tokio::net::TcpStream::connect((ip.as_str(), 80)).await.map_err(|e| e.to_string())?;
            conn.write_all(b"GET / HTTP/1.0\r\n\r\n").await.map_err(|e| e.to_string())?;
            let mut body = String::new();
            conn.read_to_string(&mut body).await.map_err(|e| e.to_string())?;
            if body.contains(r#""service":"demo-api""#) { Ok(body) } else { Err(format!("not the app yet: {body}")) }
        }
    })
    .await;
    assert!(body.contains(r#""version":"v2""#), "{body}");
    let logs = ns.api::<Pod>().logs(pods.items[0].metadata.name.as_deref().unwrap(), &Default::default()).await.unwrap();
    assert!(logs.contains("demo-api v2 listening on :8080"), "{logs}");
}

#[tokio::test]
async fn a_pod_missing_a_required_env_var_crashloops_and_adding_it_heals_the_deployment() {
    let ns = TestNamespace::create("crashloop").await;
    create(&ns, &deployment("api", json!({"name": "api", "image": image("v2")}))).await;
    let (pod, cs) = pod_status(&ns, "api", "CrashLoopBackOff", |_, cs| {
        cs.restart_count >= 1 && cs.state.as_ref().and_then(|s| s.waiting.as_ref()).is_some()
    })
    .await;
    assert_eq!(cs.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(), Some("CrashLoopBackOff"));
    let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    assert!(!cs.ready && !ready(&pod));
    let name = pod.metadata.name.clone().unwrap();
    // The previous container's log can be out of reach for a moment while the kubelet restarts the
    // next one ("unable to retrieve container logs", seen on CI): the process's words are read once
    // the kubelet serves them.
    eventually("the process says why", WAIT, || {
        let (pods, name) = (ns.api::<Pod>(), name.clone());
        async move {
            let logs = pods.logs(&name, &kube::api::LogParams { previous: true, ..Default::default() }).await.map_err(|e| e.to_string())?;
            if logs.contains("required setting DATABASE_URL is not set") { Ok(()) } else { Err(format!("the log says: {logs}")) }
        }
    })
    .await;
    has_event(&ns, "BackOff", "restarting failed container").await;

    patch(&ns, "api", json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "env": [database_url()]}]}}}})).await;
    available(&ns, "api").await;
}

#[tokio::test]
async fn a_memory_limit_below_the_apps_need_is_oomkilled_by_the_kernel_and_raising_it_heals() {
    let ns = TestNamespace::create("oom").await;
    let container =
        app(json!({"env": [database_url(), {"name": "ALLOCATE_MIB", "value": "200"}], "resources": {"limits": {"memory": "128Mi"}}}));
    create(&ns, &deployment("api", container)).await;
    let (_, cs) = pod_status(&ns, "api", "OOMKilled", |_, cs| cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()).is_some()).await;
    let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    // SIGKILL from the kernel's OOM killer. containerd 1.6 on cgroup v1 reports it as OOMKilled, or as
    // Error when the task's exit outruns its OOM event (seen here): the exit code is the kill either way.
    assert_eq!(last.exit_code, 137, "{last:?}");
    assert!(matches!(last.reason.as_deref(), Some("OOMKilled" | "Error")), "{last:?}");
    patch(
        &ns,
        "api",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "resources": {"limits": {"memory": "512Mi"}}}]}}}}),
    )
    .await;
    available(&ns, "api").await;
}

#[tokio::test]
async fn a_tag_that_does_not_exist_backs_off_pulling_and_the_right_tag_heals() {
    let ns = TestNamespace::create("pull").await;
    create(&ns, &deployment("api", app(json!({"image": image("v2.1-does-not-exist")})))).await;
    let (pod, cs) = pod_status(&ns, "api", "ImagePullBackOff", |_, cs| {
        cs.state.as_ref().and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.as_deref()) == Some("ImagePullBackOff")
    })
    .await;
    assert_eq!(pod.status.as_ref().unwrap().phase.as_deref(), Some("Pending"));
    assert_eq!(cs.restart_count, 0);
    assert!(cs.state.as_ref().unwrap().waiting.as_ref().unwrap().message.as_deref().unwrap().contains("Back-off pulling image"));
    has_event(&ns, "Failed", "not found").await;
    patch(&ns, "api", json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": image("v2")}]}}}})).await;
    available(&ns, "api").await;
}

#[tokio::test]
async fn a_readiness_probe_on_a_path_the_app_does_not_serve_never_becomes_ready() {
    let ns = TestNamespace::create("notready").await;
    let container = app(json!({"readinessProbe": {"httpGet": {"path": "/status", "port": 8080}, "periodSeconds": 1}}));
    create(&ns, &deployment("api", container)).await;
    let (pod, cs) = pod_status(&ns, "api", "running but not ready", |p, cs| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && cs.state.as_ref().is_some_and(|s| s.running.is_some())
    })
    .await;
    assert!(!cs.ready && !ready(&pod));
    assert_eq!(cs.restart_count, 0);
    has_event(&ns, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404").await;
    // Still not ready a while later: it never becomes ready by itself.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = ns.api::<Pod>().get(pod.metadata.name.as_deref().unwrap()).await.unwrap();
    assert!(!ready(&again));
    patch(&ns, "api", json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "readinessProbe": probe("/ready")}]}}}})).await;
    available(&ns, "api").await;
}

#[tokio::test]
async fn a_liveness_probe_on_a_port_the_app_does_not_listen_on_gets_the_container_killed_and_restarted() {
    let ns = TestNamespace::create("liveness").await;
    let container =
        app(json!({"livenessProbe": {"httpGet": {"path": "/healthz", "port": 9090}, "periodSeconds": 1, "failureThreshold": 1}}));
    create(&ns, &deployment("api", container)).await;
    let (_, cs) = pod_status(&ns, "api", "liveness restarts", |_, cs| cs.restart_count >= 1).await;
    assert!(cs.last_state.as_ref().unwrap().terminated.is_some(), "{cs:?}");
    has_event(&ns, "Unhealthy", "Liveness probe failed").await;
    has_event(&ns, "Killing", "failed liveness probe, will be restarted").await;
    patch(&ns, "api", json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "livenessProbe": probe("/healthz")}]}}}})).await;
    available(&ns, "api").await;
}

#[tokio::test]
async fn requests_larger_than_every_node_stay_pending_as_unschedulable_and_fitting_requests_heal() {
    let ns = TestNamespace::create("unschedulable").await;
    let container = app(json!({"resources": {"requests": {"memory": "64Gi"}}}));
    create(&ns, &deployment("api", container)).await;
    let api = ns.api::<Pod>();
    let pod = eventually("PodScheduled=False, Unschedulable", WAIT, || {
        let api = api.clone();
        async move {
            let pods = api.list(&ListParams::default().labels("app=api")).await.map_err(|e| e.to_string())?;
            pods.items
                .into_iter()
                .find(|p| {
                    p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| {
                        c.iter().any(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
                    })
                })
                .ok_or_else(|| "no unschedulable pod yet".to_owned())
        }
    })
    .await;
    let cond = pod.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "PodScheduled").unwrap();
    assert!(cond.message.unwrap().contains("Insufficient memory"));
    has_event(&ns, "FailedScheduling", "Insufficient memory").await;
    patch(
        &ns,
        "api",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "resources": {"requests": {"memory": "64Mi"}}}]}}}}),
    )
    .await;
    available(&ns, "api").await;
}
