//! Shadow verification end to end on the local cluster's real node (scripts/harness: containerd, runc,
//! kubelet, kube-proxy), with the real Trivy scanning the images in the local registry. Every fault is
//! the test app's own (tests/apps/demo-api): a process that exits, is OOM-killed, or is not served where
//! it is probed. Needs the harnesses; fails loudly without them.

use std::path::PathBuf;
use std::time::Duration;

use aegis_k8s::{Scope, snapshot};
use aegis_model::{Category, Fix, FixAction, Incident, ResourceRef, Verdict};
use aegis_scanners::Runner;
use aegis_scanners::trivy::{TrivyConfig, TrivyScanner};
use aegis_security::{GatePolicy, Policy};
use aegis_testkit::cluster::{TestNamespace, database_url, deployment, eventually, on_real_node, probed_app, wait_available};
use aegis_testkit::harness_env;
use aegis_verify::{SmokeOutcome, VerificationResult, VerifyOptions, verify};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

fn image(tag: &str) -> String {
    format!("{}/demo-api:{tag}", harness_env("AEGIS_REGISTRY"))
}

fn options(trivy_bin: PathBuf) -> VerifyOptions {
    let policy = GatePolicy::compile(Policy::from_yaml("zap: {mode: off}\nfalco: {mode: off}\n").unwrap(), |_| Err("none".into())).unwrap();
    let trivy = TrivyScanner::new(TrivyConfig {
        binary: trivy_bin,
        cache_dir: Some(PathBuf::from(harness_env("AEGIS_TRIVY_CACHE_DIR"))),
        skip_db_update: true,
        image_src: Some("remote".into()),
        timeout: Duration::from_secs(60),
        ..Default::default()
    });
    VerifyOptions {
        window: Duration::from_secs(2),
        deadline: Duration::from_secs(90),
        policy,
        runner: Runner { trivy: Some(trivy), ..Default::default() },
        aegis_namespace: "aegis-system".into(),
        runtime_class: None,
        shadow_ttl: Duration::from_secs(600),
        smoke_paths: vec!["/ready".into()],
        progress: None,
        isolation_probe: None,
    }
}

/// Production: revision 1 runs `first_image` with DATABASE_URL; revision 2 runs `second_image` without it
/// and crashloops. Returns the namespace and the analysis' incident (a rollback to revision 1).
async fn crashloop_after_rollout(first_image: &str, second_image: &str) -> (TestNamespace, Incident) {
    let ns = TestNamespace::create("verify").await;
    let container = |img: &str, env: bool| {
        let mut c = json!({"name": "api", "image": img, "ports": [{"containerPort": 8080}],
            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1}});
        if env {
            c["env"] = json!([database_url()]);
        }
        c
    };
    let deployments = ns.api::<Deployment>();
    deployments.create(&PostParams::default(), &deployment("api", 2, container(first_image, true))).await.unwrap();
    wait_available(&deployments, "api", WAIT).await;
    let broken: Value = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": second_image, "env": [{"name": "DATABASE_URL", "$patch": "delete"}]}]}}}});
    deployments.patch("api", &PatchParams::default(), &Patch::Strategic(broken)).await.unwrap();
    let incident = found(&ns, Category::CrashLoopBackOff).await;
    assert_eq!(incident.fix.action, FixAction::Rollback { to_revision: 1 });
    (ns, incident)
}

/// Wait until a live analysis of the namespace reports `category`, and return that incident. Called
/// right after the fault is made: the time it takes is the fault's time to show on the real node
/// (printed for bench/real-node.sh).
async fn found(ns: &TestNamespace, category: Category) -> Incident {
    let start = std::time::Instant::now();
    let (client, scope) = (ns.client(), Scope { namespace: Some(ns.name().to_owned()), label_selector: None });
    let incident = eventually(&format!("{category} found"), WAIT, || {
        let (client, scope) = (client.clone(), scope.clone());
        async move {
            let snap = snapshot(&client, &scope).await.map_err(|e| e.to_string())?;
            aegis_analysis::analyze(&snap).into_iter().find(|i| i.category == category).ok_or_else(|| "not yet".to_owned())
        }
    })
    .await;
    eprintln!("bench-real-node detected {category} {}", start.elapsed().as_millis());
    incident
}

/// One line for bench/real-node.sh: where a passing verification's time went.
fn bench_line(category: &str, r: &VerificationResult) {
    eprintln!("bench-real-node verified {category} {}", serde_json::to_string(&r.timings).unwrap_or_default());
}

/// The wrong fix for any of these incidents: a restart changes nothing the fault depends on.
fn restart(incident: &Incident) -> Fix {
    Fix {
        action: FixAction::Restart,
        summary: "restart".into(),
        patch: Some(aegis_model::Patch {
            patch_type: aegis_model::PatchType::StrategicMerge,
            target: incident.resource.clone(),
            body: json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-26T00:00:00Z"}}}}}),
        }),
        inverse: None,
        origin: aegis_model::FixOrigin::Human,
    }
}

fn source(ns: &TestNamespace) -> ResourceRef {
    ResourceRef { kind: "Deployment".into(), namespace: ns.name().to_owned(), name: "api".into() }
}

async fn no_shadow_left(client: &kube::Client, namespace: &str) {
    let ns = Api::<Namespace>::all(client.clone()).get_opt(namespace).await.unwrap();
    assert!(ns.is_none_or(|n| n.metadata.deletion_timestamp.is_some()), "shadow {namespace} left behind");
}

#[tokio::test]
async fn the_right_fix_on_the_same_image_passes_health_the_gate_and_a_smoke_check_through_the_real_service() {
    let (ns, incident) = crashloop_after_rollout(&image("v2"), &image("v2")).await;
    aegis_testkit::cluster::service(&ns, "api", "api", 80).await;
    let mut opts = options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN")));
    let (stages_tx, mut stages) = tokio::sync::mpsc::unbounded_channel();
    opts.progress = Some(stages_tx);
    let before = ns.api::<Deployment>().get("api").await.unwrap().spec.unwrap().template;
    let result = verify(&ns.client(), &source(&ns), &incident.fix, Some("t".into()), &opts).await.unwrap();
    let window = opts.window.as_secs();
    drop(opts);
    let mut seen = Vec::new();
    while let Some(s) = stages.recv().await {
        seen.push(s);
    }
    use aegis_verify::Stage;
    let health: Vec<aegis_k8s::health::HealthProgress> =
        seen.iter().filter_map(|s| if let Stage::Health(p) = s { Some(*p) } else { None }).collect();
    let stages: Vec<Stage> = seen.into_iter().filter(|s| !matches!(s, Stage::Health(_))).collect();
    assert_eq!(stages, [Stage::CreatingShadow, Stage::WatchingHealth, Stage::Scanning, Stage::CleaningUp], "a watcher sees every stage");
    // The health window counts down while the shadow is healthy, and it ends with every pod ready.
    let last = health.last().expect("health progress reported");
    assert_eq!((last.ready, last.pods > 0), (last.pods, true), "{health:?}");
    assert!(health.iter().filter_map(|p| p.healthy_for).max() >= Some(window), "{health:?}");
    assert!(result.health.healthy, "{:?}", result.health);
    assert_eq!(result.verdict, Verdict::Passed, "{:?}", result.reasons);
    bench_line("CrashLoopBackOff", &result);
    let security = result.security.as_ref().unwrap();
    assert!(security.findings.new.is_empty());
    assert!(
        security
            .scanners
            .iter()
            .any(|s| s.scanner == aegis_model::Source::Trivy && s.side == aegis_model::Side::Baseline && s.status.is_ok())
    );
    assert!(result.timings.baseline_scan_ms > 0 && result.timings.health_ms > 0);
    // The shadow's copy of the Service, reached at its ClusterIP through kube-proxy's rules.
    assert_eq!(result.smoke_checks.len(), 1);
    assert_eq!(result.smoke_checks[0].outcome, SmokeOutcome::Passed, "{:?}", result.smoke_checks);
    assert!(result.smoke_checks[0].url.ends_with(":80/ready"), "{:?}", result.smoke_checks);
    assert_eq!(ns.api::<Deployment>().get("api").await.unwrap().spec.unwrap().template, before, "production untouched");
    no_shadow_left(&ns.client(), &result.shadow_namespace).await;
}

#[tokio::test]
async fn a_healthy_fix_that_brings_back_a_vulnerable_image_is_blocked_by_the_gate() {
    // Revision 1 ran v1 (openssl CVE-2099-1001, HIGH); revision 2 moved to v2 and lost its env var.
    // Rolling back heals the crash but reintroduces the vulnerability: new compared with production.
    let (ns, incident) = crashloop_after_rollout(&image("v1"), &image("v2")).await;
    let result =
        verify(&ns.client(), &source(&ns), &incident.fix, None, &options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN")))).await.unwrap();
    assert!(result.health.healthy, "{:?}", result.health);
    assert_eq!(result.verdict, Verdict::Blocked);
    let security = result.security.unwrap();
    assert!(security.findings.new.iter().any(|f| f.id == "CVE-2099-1001"), "{:?}", security.findings.new);
    assert!(result.reasons.iter().any(|r| r.contains("trivy.fail_on") && r.contains("CVE-2099-1001")), "{:?}", result.reasons);
    no_shadow_left(&ns.client(), &result.shadow_namespace).await;
}

#[tokio::test]
async fn a_wrong_fix_is_blocked_on_health_with_the_reason() {
    let (ns, incident) = crashloop_after_rollout(&image("v2"), &image("v2")).await;
    let wrong = restart(&incident);
    let result = verify(&ns.client(), &source(&ns), &wrong, None, &options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN")))).await.unwrap();
    assert!(!result.health.healthy);
    assert_eq!(result.verdict, Verdict::Blocked);
    assert!(result.reasons.iter().any(|r| r.starts_with("health:")), "{:?}", result.reasons);
    no_shadow_left(&ns.client(), &result.shadow_namespace).await;
}

#[tokio::test]
async fn a_missing_scanner_during_verification_blocks_rather_than_passes() {
    let (ns, incident) = crashloop_after_rollout(&image("v2"), &image("v2")).await;
    let result = verify(&ns.client(), &source(&ns), &incident.fix, None, &options(PathBuf::from("/nonexistent/trivy"))).await.unwrap();
    assert!(result.health.healthy);
    assert_eq!(result.verdict, Verdict::Error, "{:?}", result.reasons);
    assert!(!result.verdict.allows_production());
    assert!(result.reasons.iter().any(|r| r.contains("trivy.evidence")), "{:?}", result.reasons);
    no_shadow_left(&ns.client(), &result.shadow_namespace).await;
}

#[tokio::test]
async fn zap_scans_the_production_and_shadow_services_and_a_new_high_alert_blocks() {
    use std::sync::Arc;
    let (ns, incident) = crashloop_after_rollout(&image("v2"), &image("v2")).await;
    aegis_testkit::cluster::service(&ns, "api", "api", 8080).await;

    // The ZAP stand-in (aegis_testkit::zap; no real ZAP can scan here) finds a missing header everywhere
    // and a reflected XSS (High) only in the shadow's URL: the fix would introduce it.
    let alert = |plugin: &str, name: &str, risk: &str, url: &str| {
        json!({"pluginId": plugin, "alertRef": plugin, "name": name, "risk": risk, "confidence": "Medium", "url": url, "method": "GET",
               "param": "", "evidence": "", "reference": "", "cweid": "79", "wascid": "8"})
    };
    let alerts: aegis_testkit::zap::Alerts = Arc::new(move |base: &str| {
        let mut v = vec![alert("10021", "X-Content-Type-Options Header Missing", "Low", &format!("{base}/"))];
        if base.contains("aegis-shadow-") {
            v.push(alert("40012", "Cross Site Scripting (Reflected)", "High", &format!("{base}/search?q=x")));
        }
        v
    });
    let (addr, seen) = aegis_testkit::zap::start(aegis_testkit::zap::Behaviour { key: "k".into(), ..Default::default() }, alerts).await;
    let mut opts = options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN")));
    opts.policy = GatePolicy::compile(Policy::from_yaml("falco: {mode: off}\n").unwrap(), |_| Err("none".into())).unwrap();
    let zap = aegis_scanners::zap::ZapClient::new(&format!("http://{addr}"), Some("k".into()), Duration::from_secs(5)).unwrap();
    let zap_opts = aegis_scanners::zap::ZapScanOptions { poll_interval: Duration::from_millis(20), ..Default::default() };
    opts.runner.zap = Some((zap, zap_opts));

    let result = verify(&ns.client(), &source(&ns), &incident.fix, None, &opts).await.unwrap();
    assert!(result.health.healthy);
    assert_eq!(result.verdict, Verdict::Blocked, "{:?}", result.reasons);
    assert!(result.reasons.iter().any(|r| r.contains("zap.fail_risk") && r.contains("40012")), "{:?}", result.reasons);
    let security = result.security.unwrap();
    assert!(security.findings.persisting.iter().any(|f| f.id == "10021"), "the missing header is the same finding in both");
    let urls = seen.lock().unwrap().baseurls.clone();
    assert!(urls.iter().any(|u| u.contains(&format!(".{}.svc", ns.name()))), "production Service scanned: {urls:?}");
    assert!(urls.iter().any(|u| u.contains(&format!(".{}.svc", result.shadow_namespace))), "shadow Service scanned: {urls:?}");
    no_shadow_left(&ns.client(), &result.shadow_namespace).await;
}

/// OOMKilled, the second classic scenario proved end to end: the analysis' raised limit heals the shadow
/// and passes; a fix that leaves the limit alone (a restart) OOMs again and is rejected on health.
/// Production keeps its template throughout.
#[tokio::test]
async fn an_oom_is_healed_in_the_shadow_by_the_raised_limit_and_a_restart_is_rejected() {
    let ns = TestNamespace::create("verify-oom").await;
    let deployments = ns.api::<Deployment>();
    // The app holds 200 MiB: the kernel's memory cgroup kills it under a 128Mi limit.
    let container = json!({"name": "api", "image": image("v2"), "env": [database_url(), {"name": "ALLOCATE_MIB", "value": "200"}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}});
    deployments.create(&PostParams::default(), &deployment("api", 2, container)).await.unwrap();
    let client = ns.client();
    let incident = found(&ns, Category::OOMKilled).await;
    assert!(matches!(incident.fix.action, FixAction::SetResources { .. }), "{:?}", incident.fix.action);
    let before = deployments.get("api").await.unwrap().spec.unwrap().template;
    let opts = options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN")));

    let right = verify(&client, &source(&ns), &incident.fix, Some("oom".into()), &opts).await.unwrap();
    assert!(right.health.healthy, "{:?}", right.health);
    assert_eq!(right.verdict, Verdict::Passed, "{:?}", right.reasons);
    bench_line("OOMKilled", &right);
    no_shadow_left(&client, &right.shadow_namespace).await;

    let wrong = verify(&client, &source(&ns), &restart(&incident), Some("oom".into()), &opts).await.unwrap();
    assert!(!wrong.health.healthy);
    assert_eq!(wrong.verdict, Verdict::Blocked, "{:?}", wrong.reasons);
    // The kernel's kill: containerd reports it as OOMKilled, or (when its OOM event races the exit, as
    // seen on this node's cgroup v1) as Error with exit code 137 — SIGKILL either way.
    assert!(wrong.health.reasons.iter().any(|r| r.contains("OOMKilled") || r.contains("exit code 137")), "{:?}", wrong.health);
    no_shadow_left(&client, &wrong.shadow_namespace).await;
    assert_eq!(deployments.get("api").await.unwrap().spec.unwrap().template, before, "production untouched");
}

/// The memory limit comes from production's LimitRange (a default of 128Mi), not from the template,
/// which sets none. The app holds 200 MiB, so production's pods are OOM-killed. The shadow copies the
/// LimitRange, so its pods get the same limit: a restart OOMs there too and is rejected, and the
/// analysis' raised limit passes. (Without the copy the shadow's pods ran unbounded and the restart
/// passed: a verdict about a different workload.)
#[tokio::test]
async fn an_oom_under_a_limit_range_default_is_judged_in_the_shadow_under_the_same_limit() {
    use k8s_openapi::api::core::v1::LimitRange;
    let ns = TestNamespace::create("verify-limit-range").await;
    let range: LimitRange = serde_json::from_value(json!({"metadata": {"name": "defaults"},
        "spec": {"limits": [{"type": "Container", "default": {"memory": "128Mi"}, "defaultRequest": {"memory": "64Mi"}}]}}))
    .unwrap();
    ns.api::<LimitRange>().create(&PostParams::default(), &range).await.unwrap();
    let deployments = ns.api::<Deployment>();
    let container = json!({"name": "api", "image": image("v2"), "env": [database_url(), {"name": "ALLOCATE_MIB", "value": "200"}],
        "resources": {"requests": {"cpu": "50m"}}});
    deployments.create(&PostParams::default(), &deployment("api", 2, container)).await.unwrap();
    let client = ns.client();
    let incident = found(&ns, Category::OOMKilled).await;
    assert!(matches!(incident.fix.action, FixAction::SetResources { .. }), "{:?}: {}", incident.fix.action, incident.root_cause);
    let opts = options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN")));

    let wrong = verify(&client, &source(&ns), &restart(&incident), Some("oom".into()), &opts).await.unwrap();
    assert_eq!(wrong.verdict, Verdict::Blocked, "{:?}", wrong.reasons);
    assert!(wrong.health.reasons.iter().any(|r| r.contains("OOMKilled") || r.contains("exit code 137")), "{:?}", wrong.health);
    let right = verify(&client, &source(&ns), &incident.fix, Some("oom".into()), &opts).await.unwrap();
    assert!(right.health.healthy, "{:?}", right.health);
    assert!(right.verdict.allows_production(), "{:?}", right.reasons);
    for r in [&right, &wrong] {
        no_shadow_left(&client, &r.shadow_namespace).await;
    }
}

/// Production ran `probed_app` healthy (revision 1) until `regression` made revision 2; returns the
/// namespace and the analysis' incident of `category`, which must be a rollback to revision 1.
async fn regressed(prefix: &str, regression: Value, category: Category) -> (TestNamespace, Incident) {
    regressed_in(TestNamespace::create(prefix).await, regression, category).await
}

/// [`regressed`], in a namespace the caller has prepared (labels, quotas).
async fn regressed_in(ns: TestNamespace, regression: Value, category: Category) -> (TestNamespace, Incident) {
    let deployments = ns.api::<Deployment>();
    deployments.create(&PostParams::default(), &deployment("api", 2, probed_app(&image("v2")))).await.unwrap();
    wait_available(&deployments, "api", WAIT).await;
    deployments.patch("api", &PatchParams::default(), &Patch::Strategic(regression)).await.unwrap();
    let incident = found(&ns, category).await;
    assert_eq!(incident.fix.action, FixAction::Rollback { to_revision: 1 }, "{}", incident.root_cause);
    (ns, incident)
}

/// Verify the analysis' fix and a wrong one for the same incident: the right one passes on health,
/// the wrong one is rejected on health with a reason containing one of `wrong_reasons` (a real kubelet
/// may show the same fault first one way or another); production keeps its template and no shadow is left.
async fn right_passes_and_wrong_is_rejected(
    ns: &TestNamespace,
    incident: &Incident,
    wrong: &Fix,
    wrong_reasons: &[&str],
) -> VerificationResult {
    let client = ns.client();
    let deployments = ns.api::<Deployment>();
    let before = deployments.get("api").await.unwrap().spec.unwrap().template;
    let opts = options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN")));
    let workload = incident.verification_plan.workload.clone().expect("the plan names the workload to copy");
    let right = verify(&client, &workload, &incident.fix, Some(incident.category.to_string()), &opts).await.unwrap();
    assert!(right.health.healthy, "{:?}", right.health);
    assert!(right.verdict.allows_production(), "{:?}: {:?}", right.verdict, right.reasons);
    let rejected = verify(&client, &workload, wrong, Some(incident.category.to_string()), &opts).await.unwrap();
    assert!(!rejected.health.healthy, "{:?}", rejected.health);
    assert_eq!(rejected.verdict, Verdict::Blocked, "{:?}", rejected.reasons);
    assert!(
        rejected.health.reasons.iter().any(|r| wrong_reasons.iter().any(|w| r.contains(w))),
        "expected one of {wrong_reasons:?} in {:?}",
        rejected.health.reasons
    );
    bench_line(&incident.category.to_string(), &right);
    eprintln!(
        "right fix: {} {:?} {:?}\nwrong fix: {} {:?}",
        right.verdict, right.reasons, right.timings, rejected.verdict, rejected.health.reasons
    );
    for r in [&right, &rejected] {
        no_shadow_left(&client, &r.shadow_namespace).await;
    }
    assert_eq!(deployments.get("api").await.unwrap().spec.unwrap().template, before, "production untouched");
    right
}

/// A rollout that moves the liveness probe off the path the app serves: the kubelet kills the
/// containers (the app stops at SIGTERM) and restarts them. The rollback passes in the shadow; a
/// restart is rejected.
#[tokio::test]
async fn a_liveness_probe_regression_is_rolled_back_in_the_shadow_and_a_restart_is_rejected() {
    let moved = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}}}]}}}});
    let (ns, incident) = regressed("verify-liveness", moved, Category::LivenessProbeFailure).await;
    // Killed by the kubelet: seen as the restart, or first as the container not ready while it is killed.
    right_passes_and_wrong_is_rejected(&ns, &incident, &restart(&incident), &["restarted", "not ready"]).await;
}

/// A readiness probe moved to a path the app does not serve: the pods run but never become Ready.
/// The shadow's watch rejects the restart as soon as the probe's allowance (initial delay + failure
/// threshold × period) is spent, quoting the kubelet's probe failure — not at the deadline.
#[tokio::test]
async fn a_readiness_probe_regression_is_rolled_back_in_the_shadow_and_a_restart_is_rejected_early() {
    let moved = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "readinessProbe": {"httpGet": {"path": "/status", "port": 8080}}}]}}}});
    let (ns, incident) = regressed("verify-readiness", moved, Category::ReadinessProbeFailure).await;
    right_passes_and_wrong_is_rejected(&ns, &incident, &restart(&incident), &["not ready"]).await;
}

/// A rollout that makes the container read its settings from a ConfigMap nobody created: the kubelet
/// cannot build the container (`CreateContainerConfigError`). The rollback passes in the shadow; a
/// restart is rejected with the kubelet's reason.
#[tokio::test]
async fn a_rollout_that_needs_a_missing_configmap_is_rolled_back_in_the_shadow_and_a_restart_is_rejected() {
    let missing =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "envFrom": [{"configMapRef": {"name": "api-settings"}}]}]}}}});
    let (ns, incident) = regressed("verify-config", missing, Category::CreateContainerConfigError).await;
    right_passes_and_wrong_is_rejected(&ns, &incident, &restart(&incident), &["CreateContainerConfigError"]).await;
}

/// A rollout that runs the pods as a ServiceAccount nobody created: the ReplicaSet cannot create them
/// (`FailedCreate`, the Deployment's ReplicaFailure). The shadow copies only accounts that exist, so
/// its copy fails the same way; the rollback passes there, and a restart is rejected with the
/// controller's reason.
#[tokio::test]
async fn a_rollout_to_a_missing_service_account_is_rolled_back_in_the_shadow_and_a_restart_is_rejected() {
    let missing = json!({"spec": {"template": {"spec": {"serviceAccountName": "api-runner"}}}});
    let (ns, incident) = regressed("verify-failed-create", missing, Category::FailedCreate).await;
    right_passes_and_wrong_is_rejected(&ns, &incident, &restart(&incident), &["FailedCreate", "api-runner"]).await;
}

/// A rollout that adds the NET_ADMIN capability to the app's container: what the admission rules of
/// the tests below refuse.
fn net_admin_added() -> Value {
    json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]}}}})
}

/// A rollout that adds a capability (NET_ADMIN) the namespace's Pod Security level (baseline) forbids:
/// the API server refuses the new ReplicaSet's pods (`FailedCreate`, "violates PodSecurity"). The
/// shadow's namespace carries production's Pod Security labels, so the refused template is refused
/// there too: a restart is rejected with the API server's words, and the rollback passes. (Without
/// the labels the shadow admitted the privileged pods and the restart passed: a verdict about a
/// workload production cannot run.)
#[tokio::test]
async fn a_rollout_the_namespaces_pod_security_level_refuses_is_rolled_back_in_the_shadow_and_a_restart_is_rejected() {
    let ns = TestNamespace::create("verify-pod-security").await;
    let level = json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}});
    Api::<Namespace>::all(ns.client()).patch(ns.name(), &PatchParams::default(), &Patch::Merge(level)).await.unwrap();
    let capability = net_admin_added();
    let (ns, incident) = regressed_in(ns, capability, Category::FailedCreate).await;
    assert!(incident.evidence.iter().any(|e| e.contains("violates PodSecurity")), "{:?}", incident.evidence);
    right_passes_and_wrong_is_rejected(&ns, &incident, &restart(&incident), &["PodSecurity"]).await;
}

/// A platform's ValidatingAdmissionPolicy, bound to the namespaces carrying a label, refuses containers
/// that add NET_ADMIN (no Pod Security level is set). A rollout adds it: the API server refuses the
/// new ReplicaSet's pods. The binding selects namespaces by that label, so the shadow's namespace
/// carries it too: a restart is refused there as in production and rejected, the rollback passes.
/// (With the Pod Security labels alone, the shadow admitted the pods and the restart passed.)
#[tokio::test]
async fn a_rollout_a_validating_admission_policy_refuses_is_rolled_back_in_the_shadow_and_a_restart_is_rejected() {
    use k8s_openapi::api::admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding};
    use k8s_openapi::api::core::v1::Pod;
    let ns = TestNamespace::create("verify-admission-policy").await;
    let client = ns.client();
    let name = ns.name().to_owned();
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]},
        "validations": [{"message": "containers may not add NET_ADMIN", "expression":
            "object.spec.containers.all(c, !has(c.securityContext) || !has(c.securityContext.capabilities) || !has(c.securityContext.capabilities.add) || !('NET_ADMIN' in c.securityContext.capabilities.add))"}]}}))
    .unwrap();
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
        "policyName": name, "validationActions": ["Deny"],
        "matchResources": {"namespaceSelector": {"matchLabels": {"aegis.io/test-policy": name}}}}}))
    .unwrap();
    let (policies, bindings) =
        (Api::<ValidatingAdmissionPolicy>::all(client.clone()), Api::<ValidatingAdmissionPolicyBinding>::all(client.clone()));
    policies.create(&PostParams::default(), &policy).await.unwrap();
    bindings.create(&PostParams::default(), &binding).await.unwrap();
    let label = json!({"metadata": {"labels": {"aegis.io/test-policy": name}}});
    Api::<Namespace>::all(client.clone()).patch(&name, &PatchParams::default(), &Patch::Merge(label)).await.unwrap();
    // The API server enforces a new policy once it has read it: wait until a dry-run pod is refused.
    let probe: Pod = serde_json::from_value(json!({"metadata": {"name": "policy-probe"}, "spec": {"containers": [
        {"name": "c", "image": image("v2"), "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]}}))
    .unwrap();
    eventually("the admission policy enforced", WAIT, || {
        let (pods, probe) = (ns.api::<Pod>(), probe.clone());
        async move {
            match pods.create(&PostParams { dry_run: true, ..Default::default() }, &probe).await {
                Err(kube::Error::Api(e)) if e.message.contains("NET_ADMIN") => Ok(()),
                other => Err(format!("not yet: {other:?}")),
            }
        }
    })
    .await;
    let capability = net_admin_added();
    let (ns, incident) = regressed_in(ns, capability, Category::FailedCreate).await;
    right_passes_and_wrong_is_rejected(&ns, &incident, &restart(&incident), &["NET_ADMIN"]).await;
    bindings.delete(&name, &Default::default()).await.unwrap();
    policies.delete(&name, &Default::default()).await.unwrap();
}

/// A rollout to a tag that does not exist. The baseline image cannot be scanned (it does not exist),
/// so the gate judges every finding of the rolled-back image as new and says so; the restart keeps
/// pulling the missing tag and is rejected.
#[tokio::test]
async fn a_rollout_to_a_missing_tag_is_rolled_back_in_the_shadow_with_the_baseline_scan_reported_missing() {
    let missing = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": image("v2.1-does-not-exist")}]}}}});
    let (ns, incident) = regressed("verify-pull", missing, Category::ImagePullBackOff).await;
    let right = right_passes_and_wrong_is_rejected(&ns, &incident, &restart(&incident), &["ErrImagePull", "ImagePullBackOff"]).await;
    let security = right.security.expect("a healthy shadow is scanned");
    assert!(security.warnings.iter().any(|w| w.rule == "trivy.baseline"), "{:?}", security.warnings);
    assert!(
        security
            .scanners
            .iter()
            .any(|s| s.scanner == aegis_model::Source::Trivy && s.side == aegis_model::Side::Baseline && !s.status.is_ok()),
        "the missing image's scan failed: {:?}",
        security.scanners
    );
}

/// Requests larger than any node: the real scheduler leaves the pods Pending. The analysis' lowered
/// requests schedule in the shadow; a restart stays Unschedulable, with the scheduler's message. The
/// shadow's quota is sized from the workload, so a big workload is judged by the scheduler, not refused
/// by the shadow.
#[tokio::test]
async fn requests_too_large_for_any_node_are_lowered_in_the_shadow_and_a_restart_is_rejected() {
    let ns = TestNamespace::create("verify-pending").await;
    aegis_testkit::cluster::oversized_requests(&ns, &image("v2")).await;
    let incident = found(&ns, Category::Unschedulable).await;
    assert!(matches!(incident.fix.action, FixAction::SetResources { .. }), "{:?}", incident.fix.action);
    right_passes_and_wrong_is_rejected(&ns, &incident, &restart(&incident), &["Unschedulable"]).await;
}

/// A Service whose selector has a typo routes to nothing. The shadow copies the Service the fix patches
/// and the workload it should select; the fixed selector routes to the healthy copy and passes, a
/// selector with another typo selects nothing and is rejected. Production's Service keeps its selector.
#[tokio::test]
async fn a_service_selector_typo_is_fixed_in_the_shadow_and_another_typo_is_rejected() {
    let ns = TestNamespace::create("verify-selector").await;
    aegis_testkit::cluster::selector_typo(&ns, &image("v2"), WAIT).await;
    let services = ns.api::<k8s_openapi::api::core::v1::Service>();
    let incident = found(&ns, Category::ServiceSelectorMismatch).await;
    assert_eq!(incident.verification_plan.workload, Some(source(&ns)), "proven on the workload the Service should select");

    let snap = snapshot(&ns.client(), &Scope { namespace: Some(ns.name().to_owned()), label_selector: None }).await.unwrap();
    let another_typo = FixAction::SetServiceSelector { selector: [("app".to_owned(), "aip".to_owned())].into() };
    let wrong = aegis_analysis::render_fix(&snap, &incident.resource, &another_typo).unwrap();
    let right = right_passes_and_wrong_is_rejected(&ns, &incident, &wrong, &["Service api selects no ready pod"]).await;
    assert!(right.health.observations.iter().any(|o| o.contains("routed by Service api")), "{:?}", right.health.observations);
    let selector = services.get("api").await.unwrap().spec.unwrap().selector.unwrap();
    assert_eq!(selector.get("app").map(String::as_str), Some("apj"), "production's Service untouched");
}

/// The other scanner outages of the issue: ZAP down (nothing listens where it should) and a Falco feed
/// that delivered nothing during the window. Both are required by the policy; a healthy fix then gets
/// `error`, never `passed`, with each outage named.
#[tokio::test]
async fn a_zap_outage_and_a_silent_falco_feed_during_verification_give_error_with_both_named() {
    let (ns, incident) = crashloop_after_rollout(&image("v2"), &image("v2")).await;
    aegis_testkit::cluster::service(&ns, "api", "api", 8080).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let falco_dir = tempfile::tempdir().unwrap();
    let mut opts = options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN")));
    opts.policy =
        GatePolicy::compile(Policy::from_yaml("zap: {mode: required}\nfalco: {mode: required}\n").unwrap(), |_| Err("none".into()))
            .unwrap();
    let zap = aegis_scanners::zap::ZapClient::new(&format!("http://{closed}"), None, Duration::from_secs(2)).unwrap();
    opts.runner.zap = Some((zap, aegis_scanners::zap::ZapScanOptions::default()));
    let store = aegis_scanners::falco::FalcoStore::open(aegis_scanners::falco::StoreConfig::new(falco_dir.path())).unwrap();
    opts.runner.falco = Some(store);

    let result = verify(&ns.client(), &source(&ns), &incident.fix, None, &opts).await.unwrap();
    assert!(result.health.healthy, "{:?}", result.health);
    assert_eq!(result.verdict, Verdict::Error, "{:?}", result.reasons);
    assert!(!result.verdict.allows_production());
    for rule in ["zap.evidence", "falco.evidence"] {
        assert!(result.reasons.iter().any(|r| r.contains(rule)), "{rule} missing from {:?}", result.reasons);
    }
    no_shadow_left(&ns.client(), &result.shadow_namespace).await;
}

/// A fix whose pods are healthy but whose Service cannot carry traffic (its targetPort is not where the
/// app listens): the smoke check through the shadow's Service cannot connect, and that blocks — an
/// unreachable Service is a failed check, not a pass.
#[tokio::test]
async fn a_shadow_service_that_cannot_be_reached_fails_the_smoke_check_and_blocks() {
    let (ns, incident) = crashloop_after_rollout(&image("v2"), &image("v2")).await;
    let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"},
        "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 9090}]}
    }))
    .unwrap();
    ns.api::<k8s_openapi::api::core::v1::Service>().create(&PostParams::default(), &svc).await.unwrap();
    let result =
        verify(&ns.client(), &source(&ns), &incident.fix, None, &options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN")))).await.unwrap();
    assert!(result.health.healthy, "{:?}", result.health);
    assert_eq!(result.smoke_checks[0].outcome, SmokeOutcome::Unreachable, "{:?}", result.smoke_checks);
    assert_eq!(result.verdict, Verdict::Blocked, "{:?}", result.reasons);
    assert!(result.reasons.iter().any(|r| r.starts_with("smoke: GET") && r.contains("unreachable")), "{:?}", result.reasons);
    no_shadow_left(&ns.client(), &result.shadow_namespace).await;
}

/// A workload on the host's network (or with hostPath, host PID/IPC, a privileged container) cannot be
/// isolated in a shadow: the verification says so as its verdict (`error`, the reason named), creates
/// nothing, and leaves production as it is.
#[tokio::test]
async fn a_host_network_workload_is_refused_as_not_verifiable_in_a_shadow() {
    let ns = TestNamespace::create("verify-host").await;
    // No replica runs: the refusal depends on the spec alone, and no pod takes the host's port 8080.
    let mut d = deployment("api", 0, probed_app(&image("v2")));
    d.spec.as_mut().unwrap().template.spec.as_mut().unwrap().host_network = Some(true);
    ns.api::<Deployment>().create(&PostParams::default(), &d).await.unwrap();
    let fix = restart(&Incident {
        resource: source(&ns),
        category: Category::CrashLoopBackOff,
        severity: aegis_model::Severity::High,
        root_cause: String::new(),
        evidence: vec![],
        confidence: 0.5,
        pods: vec![],
        fix: aegis_model::Fix {
            action: FixAction::Restart,
            summary: String::new(),
            patch: None,
            inverse: None,
            origin: aegis_model::FixOrigin::Human,
        },
        verification_plan: aegis_model::VerificationPlan {
            duration_seconds: 0,
            health_criteria: vec![],
            security_checks: vec![],
            smoke_paths: vec![],
            approval_required: true,
            workload: None,
        },
    });
    let r = verify(&ns.client(), &source(&ns), &fix, None, &options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN")))).await.unwrap();
    assert_eq!(r.verdict, Verdict::Error, "{:?}", r.reasons);
    assert!(r.reasons[0].contains("hostNetwork") && r.reasons[0].contains("isolated"), "{:?}", r.reasons);
    let shadows = aegis_k8s::shadow::list_shadows(&ns.client()).await.unwrap();
    assert!(!shadows.iter().any(|s| s.source.contains(ns.name()) && s.phase != "Terminating"), "no shadow left: {shadows:?}");
}

/// A fix whose shadow holds a copy of production's Secret: the policy's default
/// (`isolation.block: when_secrets_copied`) asks for isolation to be shown, not assumed. Without an
/// isolation probe the verdict is `error` (not checked is not enforced); with one — a pod inside the
/// shadow, on the real node where kube-router enforces the shadow's NetworkPolicy — production's Service
/// and the API server are out of its reach and the fix passes, with what the probe tried in the result.
/// The probe image is the test app, which speaks `aegis probe connect`'s contract: the harness cannot
/// build AEGIS's own image (no Docker engine).
#[tokio::test]
async fn a_shadow_holding_a_copied_secret_passes_only_once_its_isolation_is_shown() {
    let ns = TestNamespace::create("verify-isolation").await;
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"url": "postgres://db:5432/shop"}}),
    )
    .unwrap();
    ns.api::<k8s_openapi::api::core::v1::Secret>().create(&PostParams::default(), &secret).await.unwrap();
    let mut container = probed_app(&image("v2"));
    container["env"] = json!([{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]);
    let deployments = ns.api::<Deployment>();
    deployments.create(&PostParams::default(), &deployment("api", 2, container)).await.unwrap();
    aegis_testkit::cluster::service(&ns, "api", "api", 80).await;
    wait_available(&deployments, "api", WAIT).await;
    let broken =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "env": [{"name": "DATABASE_URL", "$patch": "delete"}]}]}}}});
    deployments.patch("api", &PatchParams::default(), &Patch::Strategic(broken)).await.unwrap();
    let incident = found(&ns, Category::CrashLoopBackOff).await;

    let mut opts = options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN")));
    let unproven = verify(&ns.client(), &source(&ns), &incident.fix, None, &opts).await.unwrap();
    assert!(unproven.health.healthy, "{:?}", unproven.health);
    assert_eq!(unproven.verdict, Verdict::Error, "{:?}", unproven.reasons);
    assert!(
        unproven.reasons.iter().any(|r| r.starts_with("isolation not checked") && r.contains("Secrets copied: db")),
        "{:?}",
        unproven.reasons
    );

    opts.isolation_probe = Some(aegis_k8s::isolation::ProbeSpec { image: image("v2"), deadline: Duration::from_secs(90) });
    let proven = verify(&ns.client(), &source(&ns), &incident.fix, None, &opts).await.unwrap();
    eprintln!("isolation: {:?}", proven.isolation);
    assert_eq!(proven.isolation.status, aegis_k8s::isolation::IsolationStatus::Enforced, "{:?}", proven.isolation);
    let targets: Vec<&str> = proven.isolation.probes.iter().map(|p| p.target.as_str()).collect();
    assert!(targets.contains(&format!("Service {}/api", ns.name()).as_str()) && targets.contains(&"the API server"), "{targets:?}");
    assert_eq!(proven.verdict, Verdict::Passed, "{:?}", proven.reasons);
    no_shadow_left(&ns.client(), &proven.shadow_namespace).await;
}

/// DaemonSet `agent` running `pod_spec`.
fn agent(pod_spec: Value) -> DaemonSet {
    serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"metadata": {"labels": {"app": "agent"}}, "spec": pod_spec}}}))
    .unwrap()
}

/// A DaemonSet (an agent on every node; here the real node) rolls out without the setting its app
/// needs: the analysis reads its history from its ControllerRevisions and rolls back to revision 1.
/// The shadow copies the DaemonSet onto the nodes production's pods run on; the rollback passes there,
/// a restart is rejected, and production keeps its template.
#[tokio::test]
async fn a_daemonset_rollout_is_rolled_back_in_the_shadow_and_a_restart_is_rejected() {
    let ns = TestNamespace::create("verify-ds").await;
    let daemon_sets = ns.api::<DaemonSet>();
    let mut pod_spec = on_real_node();
    pod_spec["containers"] = json!([probed_app(&image("v2"))]);
    daemon_sets.create(&PostParams::default(), &agent(pod_spec)).await.unwrap();
    eventually("the DaemonSet's pod ready", WAIT, || {
        let daemon_sets = daemon_sets.clone();
        async move {
            let st = daemon_sets.get("agent").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
            if st.desired_number_scheduled > 0 && st.number_ready == st.desired_number_scheduled { Ok(()) } else { Err(format!("{st:?}")) }
        }
    })
    .await;
    let broken =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "env": [{"name": "DATABASE_URL", "$patch": "delete"}]}]}}}});
    daemon_sets.patch("agent", &PatchParams::default(), &Patch::Strategic(broken)).await.unwrap();
    let incident = found(&ns, Category::CrashLoopBackOff).await;
    assert_eq!(incident.resource.kind, "DaemonSet");
    assert_eq!(incident.fix.action, FixAction::Rollback { to_revision: 1 }, "{}", incident.root_cause);
    let before = daemon_sets.get("agent").await.unwrap().spec.unwrap().template;
    let (client, opts) = (ns.client(), options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN"))));

    let right = verify(&client, &incident.resource, &incident.fix, Some("ds".into()), &opts).await.unwrap();
    assert!(right.health.healthy, "{:?}", right.health);
    assert!(right.verdict.allows_production(), "{:?}: {:?}", right.verdict, right.reasons);
    bench_line("CrashLoopBackOff (DaemonSet)", &right);
    let wrong = verify(&client, &incident.resource, &restart(&incident), Some("ds".into()), &opts).await.unwrap();
    assert_eq!(wrong.verdict, Verdict::Blocked, "{:?}", wrong.reasons);
    assert!(wrong.health.reasons.iter().any(|r| r.contains("CrashLoopBackOff") || r.contains("restarted")), "{:?}", wrong.health);
    for r in [&right, &wrong] {
        no_shadow_left(&client, &r.shadow_namespace).await;
    }
    assert_eq!(daemon_sets.get("agent").await.unwrap().spec.unwrap().template, before, "production untouched");
}

/// A DaemonSet whose memory requests (64Gi) no node can hold: its pod for the real node stays Pending
/// and never runs. The analysis lowers the requests to what the node holds; the shadow's copy (on
/// the node production's DaemonSet targets) schedules and passes, a restart stays Unschedulable with
/// the scheduler's words, and production keeps its template.
#[tokio::test]
async fn a_daemonset_whose_requests_no_node_holds_is_lowered_in_the_shadow_and_a_restart_is_rejected() {
    let ns = TestNamespace::create("verify-ds-pending").await;
    let daemon_sets = ns.api::<DaemonSet>();
    let mut container = probed_app(&image("v2"));
    container["resources"] = json!({"requests": {"cpu": "20m", "memory": "64Gi"}, "limits": {"memory": "64Gi"}});
    let mut pod_spec = on_real_node();
    pod_spec["containers"] = json!([container]);
    daemon_sets.create(&PostParams::default(), &agent(pod_spec)).await.unwrap();
    let incident = found(&ns, Category::Unschedulable).await;
    assert_eq!(incident.resource.kind, "DaemonSet");
    assert!(matches!(incident.fix.action, FixAction::SetResources { .. }), "{:?}", incident.fix.action);
    let before = daemon_sets.get("agent").await.unwrap().spec.unwrap().template;
    let (client, opts) = (ns.client(), options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN"))));

    let right = verify(&client, &incident.resource, &incident.fix, Some("ds-pending".into()), &opts).await.unwrap();
    assert!(right.health.healthy, "{:?}", right.health);
    assert!(right.verdict.allows_production(), "{:?}: {:?}", right.verdict, right.reasons);
    let wrong = verify(&client, &incident.resource, &restart(&incident), Some("ds-pending".into()), &opts).await.unwrap();
    assert_eq!(wrong.verdict, Verdict::Blocked, "{:?}", wrong.reasons);
    assert!(wrong.health.reasons.iter().any(|r| r.contains("Unschedulable")), "{:?}", wrong.health);
    for r in [&right, &wrong] {
        no_shadow_left(&client, &r.shadow_namespace).await;
    }
    assert_eq!(daemon_sets.get("agent").await.unwrap().spec.unwrap().template, before, "production untouched");
}

/// A new Deployment whose liveness probe asks for a path the app does not serve: no rollout to undo, so
/// the analysis points the probe at the path its readiness probe finds served — an inference a human
/// approves. The fix passes in the shadow; production keeps its template.
#[tokio::test]
async fn a_liveness_probe_on_an_unserved_path_from_the_start_is_pointed_at_the_served_path_and_passes() {
    let ns = TestNamespace::create("verify-probe").await;
    let deployments = ns.api::<Deployment>();
    let mut app = probed_app(&image("v2"));
    app["livenessProbe"]["httpGet"]["path"] = json!("/health");
    deployments.create(&PostParams::default(), &deployment("api", 2, app)).await.unwrap();
    let incident = found(&ns, Category::LivenessProbeFailure).await;
    assert_eq!(
        incident.fix.action,
        FixAction::AdjustProbe { container: "api".into(), probe: aegis_model::ProbeKind::Liveness, path: "/ready".into() },
        "{}",
        incident.root_cause
    );
    assert!(incident.verification_plan.approval_required, "an inference, not a rollback: a human approves it");
    let before = deployments.get("api").await.unwrap().spec.unwrap().template;
    let (client, opts) = (ns.client(), options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN"))));
    let right = verify(&client, &source(&ns), &incident.fix, Some("probe".into()), &opts).await.unwrap();
    assert!(right.health.healthy, "{:?}", right.health);
    assert!(right.verdict.allows_production(), "{:?}: {:?}", right.verdict, right.reasons);
    no_shadow_left(&client, &right.shadow_namespace).await;
    assert_eq!(deployments.get("api").await.unwrap().spec.unwrap().template, before, "production untouched");
}

/// A StatefulSet as databases run them — a `matchExpressions` selector, OrderedReady, no requests and
/// no limits — rolls out without the setting its app needs. The analysis reads its history from its
/// ControllerRevisions and rolls back to revision 1; in the shadow (the same selector, no limits
/// invented) the rollback needs the forced rollback OrderedReady requires, and passes; a restart is
/// rejected; production keeps its template.
#[tokio::test]
async fn a_statefulset_rollout_with_a_match_expressions_selector_and_no_limits_is_rolled_back_in_the_shadow() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    let ns = TestNamespace::create("verify-sts").await;
    let sets = ns.api::<StatefulSet>();
    let mut app = probed_app(&image("v2"));
    app.as_object_mut().unwrap().remove("resources");
    let mut pod_spec = on_real_node();
    pod_spec["containers"] = json!([app]);
    let sts: StatefulSet = serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "podManagementPolicy": "OrderedReady",
            "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": pod_spec}}}))
    .unwrap();
    sets.create(&PostParams::default(), &sts).await.unwrap();
    eventually("the StatefulSet ready", WAIT, || {
        let sets = sets.clone();
        async move {
            let st = sets.get("db").await.map_err(|e| e.to_string())?.status.unwrap_or_default();
            if st.ready_replicas == Some(2) { Ok(()) } else { Err(format!("{st:?}")) }
        }
    })
    .await;
    let broken =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "env": [{"name": "DATABASE_URL", "$patch": "delete"}]}]}}}});
    sets.patch("db", &PatchParams::default(), &Patch::Strategic(broken)).await.unwrap();
    let incident = found(&ns, Category::CrashLoopBackOff).await;
    assert_eq!(incident.resource.kind, "StatefulSet");
    assert_eq!(incident.fix.action, FixAction::Rollback { to_revision: 1 }, "{}", incident.root_cause);
    let before = sets.get("db").await.unwrap().spec.unwrap().template;
    let (client, opts) = (ns.client(), options(PathBuf::from(harness_env("AEGIS_TRIVY_BIN"))));

    let right = verify(&client, &incident.resource, &incident.fix, Some("sts".into()), &opts).await.unwrap();
    assert!(right.health.healthy, "{:?}", right.health);
    assert!(right.verdict.allows_production(), "{:?}: {:?}", right.verdict, right.reasons);
    bench_line("CrashLoopBackOff (StatefulSet)", &right);
    let wrong = verify(&client, &incident.resource, &restart(&incident), Some("sts".into()), &opts).await.unwrap();
    assert_eq!(wrong.verdict, Verdict::Blocked, "{:?}", wrong.reasons);
    for r in [&right, &wrong] {
        no_shadow_left(&client, &r.shadow_namespace).await;
    }
    assert_eq!(sets.get("db").await.unwrap().spec.unwrap().template, before, "production untouched");
}
