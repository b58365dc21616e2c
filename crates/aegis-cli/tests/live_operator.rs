//! `aegis operator run` — the real binary — on the local control plane, with the real Trivy and the
//! registry of the scanner harness: incidents from detection to Resolved, approvals bound to evidence,
//! an automatic rollback, a crash at every phase, and two replicas. Needs both harnesses; fails loudly
//! without them.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use aegis_model::Digest;
use aegis_operator::crd::{Incident, Phase};
use aegis_testkit::cluster::{TestNamespace, deployment, eventually, probed_app, wait_available};
use aegis_testkit::harness_env;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use common::{Operator, WAIT, incident_in, install_crd};

mod common;

fn image(tag: &str) -> String {
    format!("{}/demo-api:{tag}", harness_env("AEGIS_REGISTRY"))
}

/// Production: revision 1 is healthy, revision 2 lost DATABASE_URL and crashloops.
async fn crashloop(prefix: &str) -> TestNamespace {
    let ns = TestNamespace::create(prefix).await;
    install_crd(&ns.client()).await;
    let container = json!({"name": "api", "image": image("v2"), "env": [{"name": "DATABASE_URL", "value": "postgres://db:5432/shop"}],
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}}});
    let deployments = ns.api::<Deployment>();
    deployments.create(&PostParams::default(), &deployment("api", 2, container)).await.unwrap();
    wait_available(&deployments, "api", WAIT).await;
    let broken =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "env": [{"name": "DATABASE_URL", "$patch": "delete"}]}]}}}});
    deployments.patch("api", &PatchParams::default(), &Patch::Strategic(broken)).await.unwrap();
    ns
}

/// A plain HTTP/1.0 GET: the status and the body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_owned())
}

fn phases(i: &Incident) -> Vec<Phase> {
    i.status.as_ref().map(|s| s.transitions.iter().map(|t| t.phase).collect()).unwrap_or_default()
}

fn aegis(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aegis")).args(args).env("KUBECONFIG", harness_env("AEGIS_KUBECONFIG")).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn no_shadow_of(client: &kube::Client, ns: &str) {
    let shadows = aegis_k8s::shadow::list_shadows(client).await.unwrap();
    let left: Vec<_> = shadows.iter().filter(|s| s.incident.starts_with(&format!("{ns}/")) && s.phase != "Terminating").collect();
    assert!(left.is_empty(), "shadows left behind: {left:?}");
}

/// Production is healed: available, and the env var is back.
async fn healed(ns: &TestNamespace) -> Deployment {
    let deployments = ns.api::<Deployment>();
    wait_available(&deployments, "api", WAIT).await;
    let d = deployments.get("api").await.unwrap();
    let env = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0].env.clone().unwrap_or_default();
    assert!(env.iter().any(|e| e.name == "DATABASE_URL"), "the rollback restored DATABASE_URL");
    d
}

#[tokio::test]
async fn a_crashloop_goes_from_detected_to_resolved_with_policy_approval() {
    let ns = crashloop("op-resolve").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let _operator = Operator::start(ns.name(), &["--auto-approve-max-severity", "critical", "--listen", &listen], None);
    let done = incident_in(&ns, Phase::Resolved, WAIT).await;

    // Health, readiness and metrics of the running operator.
    assert_eq!(http_get(&listen, "/healthz").0, 200);
    assert_eq!(http_get(&listen, "/readyz"), (200, "ok".to_owned()));
    let (code, metrics) = http_get(&listen, "/metrics");
    assert_eq!(code, 200);
    for needle in [
        "aegis_leader 1",
        "aegis_incident_transitions_total{phase=\"Resolved\",category=\"CrashLoopBackOff\"} 1",
        "aegis_gate_verdicts_total{verdict=\"passed\"} 1",
        "aegis_fixes_applied_total 1",
        "aegis_verification_duration_seconds_count 1",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from\n{metrics}");
    }
    assert_eq!(
        phases(&done),
        [Phase::Detected, Phase::Analyzing, Phase::Verifying, Phase::AwaitingApproval, Phase::Applying, Phase::Monitoring, Phase::Resolved]
    );
    let st = done.status.clone().unwrap();
    let v = st.verification.clone().unwrap();
    assert_eq!(v.verdict, aegis_model::Verdict::Passed, "{:?}", v.reasons);
    let evidence = &st.analysis.as_ref().unwrap().evidence;
    assert!(!evidence.iter().any(|e| e.contains("event Analyzing")), "AEGIS's own Events are not evidence: {evidence:?}");
    let at = |p: Phase| st.transitions.iter().find(|t| t.phase == p).unwrap().at.parse::<jiff::Timestamp>().unwrap();
    let monitored = at(Phase::Resolved).duration_since(at(Phase::Monitoring));
    assert!(monitored.as_secs() >= 5, "transitions carry the time they happened: monitoring took {monitored:?}");
    assert!(st.approved.as_ref().unwrap().by.contains("policy"));
    assert_eq!(st.approved.as_ref().unwrap().evidence_digest, v.evidence_digest);

    let d = healed(&ns).await;
    let marker = d.metadata.annotations.unwrap_or_default().get(aegis_operator::apply::APPLIED_ANNOTATION).cloned();
    assert_eq!(marker, Some(format!("{}/{}@{}", ns.name(), done.name_any(), v.evidence_digest)), "the applied fix is marked");
    assert_eq!(d.metadata.generation, Some(done.spec.detected_generation + 1), "applied once");

    // The full evidence is stored outside the Incident, bound by its digest.
    let stored = aegis_operator::evidence::load(&ns.client(), ns.name(), &v.evidence_config_map).await.unwrap().expect("evidence stored");
    assert_eq!(stored.evidence_digest, v.evidence_digest);
    let size = serde_json::to_vec(&done).unwrap().len();
    assert!(size < 64 * 1024, "the Incident stays small: {size} bytes");

    // Events on the Incident and on the workload.
    let events: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    let events = events.list(&ListParams::default()).await.unwrap().items;
    for kind in ["Incident", "Deployment"] {
        assert!(
            events
                .iter()
                .any(|e| e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some(kind) && e.reason.as_deref() == Some("Resolved")),
            "a Resolved event on the {kind}"
        );
    }
    no_shadow_of(&ns.client(), ns.name()).await;

    let (code, list, _) = aegis(&["incident", "list", "-n", ns.name()]);
    assert_eq!(code, Some(0));
    assert!(list.contains(&done.name_any()) && list.contains("Resolved") && list.contains("passed"), "{list}");
    let (code, show, _) = aegis(&["incident", "show", &done.name_any(), "-n", ns.name()]);
    assert_eq!(code, Some(0));
    assert!(show.contains("History:") && show.contains("Root cause:") && show.contains(v.evidence_digest.as_str()), "{show}");
}

/// Who the API server says the harness's kubeconfig user is.
async fn whoami(client: &kube::Client) -> String {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let r = Api::<SelfSubjectReview>::all(client.clone()).create(&PostParams::default(), &SelfSubjectReview::default()).await.unwrap();
    r.status.unwrap().user_info.unwrap().username.unwrap()
}

#[tokio::test]
async fn an_approval_for_old_evidence_is_refused_and_the_current_one_applies() {
    let ns = crashloop("op-approve").await;
    let _operator = Operator::start(ns.name(), &[], None);
    let waiting = incident_in(&ns, Phase::AwaitingApproval, WAIT).await;
    let name = waiting.name_any();
    let generation = ns.api::<Deployment>().get("api").await.unwrap().metadata.generation;

    let old = Digest::of_bytes(b"the evidence of an earlier verification");
    let (code, _, err) = aegis(&["incident", "approve", &name, "-n", ns.name(), "--digest", old.as_str()]);
    assert_eq!(code, Some(0));
    assert!(err.contains("not the current verification's evidence"), "{err}");
    let api: Api<Incident> = ns.api();
    let refused = eventually("the stale approval is refused", WAIT, || {
        let api = api.clone();
        let name = name.clone();
        async move {
            let i = api.get(&name).await.map_err(|e| e.to_string())?;
            let st = i.status.clone().unwrap_or_default();
            if st.conditions.iter().any(|c| c.type_ == "ApprovalStale" && c.status == "True") { Ok(i) } else { Err(format!("{st:?}")) }
        }
    })
    .await;
    assert_eq!(refused.status.unwrap().phase, Phase::AwaitingApproval);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ns.api::<Deployment>().get("api").await.unwrap().metadata.generation, generation, "nothing applied on a stale approval");

    // A claimed identity is refused: the decision records who the API server authenticates.
    let (code, _, err) = aegis(&["incident", "approve", &name, "-n", ns.name(), "--as", "alice"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("authenticates you as"), "{err}");
    let (code, out, _) = aegis(&["incident", "approve", &name, "-n", ns.name()]);
    assert_eq!(code, Some(0), "{out}");
    let done = incident_in(&ns, Phase::Resolved, WAIT).await;
    assert_eq!(done.status.unwrap().approved.unwrap().by, whoami(&ns.client()).await);
    healed(&ns).await;
}

#[tokio::test]
async fn a_rejected_fix_is_never_applied() {
    let ns = crashloop("op-reject").await;
    let _operator = Operator::start(ns.name(), &[], None);
    let waiting = incident_in(&ns, Phase::AwaitingApproval, WAIT).await;
    let generation = ns.api::<Deployment>().get("api").await.unwrap().metadata.generation;
    let (code, _, _) = aegis(&["incident", "reject", &waiting.name_any(), "-n", ns.name(), "--comment", "not during the sale"]);
    assert_eq!(code, Some(0));
    let done = incident_in(&ns, Phase::Rejected, WAIT).await;
    assert!(done.status.unwrap().message.unwrap().contains("not during the sale"));
    assert_eq!(ns.api::<Deployment>().get("api").await.unwrap().metadata.generation, generation, "nothing applied");
    let (code, _, err) = aegis(&["incident", "approve", &waiting.name_any(), "-n", ns.name()]);
    assert_eq!(code, Some(3), "an ended incident cannot be approved");
    assert!(err.contains("has ended"), "{err}");
}

/// Long work runs beside reconcile, not inside it. With one reconcile at a time (`--concurrency 1`)
/// and verifications that watch their shadow for 25 s, a rejection of one incident is recorded while
/// another incident's verification is still running — before, the rejection waited for it.
#[tokio::test]
async fn a_rejection_is_recorded_while_another_incidents_verification_runs() {
    let ns = crashloop("op-beside").await;
    let worker = json!({"name": "api", "image": image("v2"), "env": [{"name": "DATABASE_URL", "value": "postgres://db:5432/shop"}],
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}}});
    let deployments = ns.api::<Deployment>();
    deployments.create(&PostParams::default(), &deployment("worker", 1, worker)).await.unwrap();
    wait_available(&deployments, "worker", WAIT).await;
    let _operator = Operator::start(ns.name(), &["--concurrency", "1", "--window", "25s"], None);
    let first = incident_in(&ns, Phase::AwaitingApproval, WAIT).await;
    assert_eq!(first.spec.resource.name, "api", "{:?}", first.spec.resource);

    let broken =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "env": [{"name": "DATABASE_URL", "$patch": "delete"}]}]}}}});
    deployments.patch("worker", &PatchParams::default(), &Patch::Strategic(broken)).await.unwrap();
    let incidents: Api<Incident> = ns.api();
    let of_worker = |list: &[Incident]| list.iter().find(|i| i.spec.resource.name == "worker").cloned();
    eventually("the worker's incident verifying", WAIT, || {
        let incidents = incidents.clone();
        async move {
            let list = incidents.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
            match of_worker(&list).and_then(|i| i.status).map(|s| s.phase) {
                Some(Phase::Verifying) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    let (code, _, err) = aegis(&["incident", "reject", &first.name_any(), "-n", ns.name(), "--comment", "not now"]);
    assert_eq!(code, Some(0), "{err}");
    eventually("the rejection recorded", WAIT, || {
        let (incidents, name) = (incidents.clone(), first.name_any());
        async move {
            let i = incidents.get(&name).await.map_err(|e| e.to_string())?;
            let phase = i.status.map(|s| s.phase);
            if phase == Some(Phase::Rejected) { Ok(()) } else { Err(format!("{phase:?}")) }
        }
    })
    .await;
    let list = incidents.list(&ListParams::default()).await.unwrap().items;
    let worker_phase = of_worker(&list).and_then(|i| i.status).map(|s| s.phase);
    assert_eq!(worker_phase, Some(Phase::Verifying), "the rejection waited for the other verification to end");
}

/// An OOM whose raised limit passes in the shadow, but production's pods — started after a moment
/// the test chooses (the test app's `FAIL_AFTER`, a latent fault) — crash: the monitoring sees the
/// regression and rolls the fix back with its inverse.
#[tokio::test]
async fn a_fix_that_regresses_in_production_is_rolled_back_automatically() {
    let ns = TestNamespace::create("op-rollback").await;
    install_crd(&ns.client()).await;
    // Time enough to detect and verify under a loaded CI machine; production's pods come after it.
    let fails_after = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_secs(60)).unwrap();
    let fails_after = fails_after.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let container = json!({"name": "api", "image": image("v2"),
        "env": [{"name": "DATABASE_URL", "value": "postgres://db:5432/shop"}, {"name": "ALLOCATE_MIB", "value": "200"}, {"name": "FAIL_AFTER", "value": fails_after}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}});
    ns.api::<Deployment>().create(&PostParams::default(), &deployment("api", 2, container)).await.unwrap();
    let _operator = Operator::start(ns.name(), &[], None);
    let waiting = incident_in(&ns, Phase::AwaitingApproval, Duration::from_secs(55)).await;
    assert_eq!(waiting.spec.category, aegis_model::Category::OOMKilled);
    // Approve once production's new pods will fail.
    let wait = jiff::Timestamp::now().until(fails_after.parse::<jiff::Timestamp>().unwrap()).unwrap();
    tokio::time::sleep(Duration::from_secs(wait.get_seconds().max(0) as u64 + 1)).await;
    let (code, _, _) = aegis(&["incident", "approve", &waiting.name_any(), "-n", ns.name()]);
    assert_eq!(code, Some(0));
    let done = incident_in(&ns, Phase::RolledBack, WAIT).await;
    assert_eq!(phases(&done)[4..], [Phase::Applying, Phase::Monitoring, Phase::RolledBack]);
    let st = done.status.unwrap();
    assert!(st.rollback.unwrap().reason.contains("CrashLoopBackOff") || st.message.unwrap().contains("restarted"));
    let d = ns.api::<Deployment>().get("api").await.unwrap();
    let limit = d.spec.unwrap().template.spec.unwrap().containers[0].resources.clone().unwrap().limits.unwrap()["memory"].0.clone();
    assert_eq!(limit, "128Mi", "the inverse patch restored the limit");
    assert!(d.metadata.annotations.unwrap().contains_key(aegis_operator::apply::ROLLED_BACK_ANNOTATION));
}

/// Crash the operator at `failpoint` (it aborts, like `kill -9`), restart it, and check that the
/// incident still ends Resolved, the fix was applied once, and no shadow is left.
async fn crash_and_resume(prefix: &str, failpoint: &str, crashed_in: Phase) {
    let ns = crashloop(prefix).await;
    let auto = ["--auto-approve-max-severity", "critical"];
    let mut first = Operator::start(ns.name(), &auto, Some(failpoint));
    let status = first.exited(WAIT).await;
    assert!(!status.success(), "the failpoint aborted the operator");
    assert!(first.log().contains(&format!("AEGIS_FAILPOINT {failpoint}")), "{}", first.log());
    let at_crash = ns.api::<Incident>().list(&ListParams::default()).await.unwrap().items;
    assert_eq!(at_crash.len(), 1);
    assert_eq!(at_crash[0].status.as_ref().map(|s| s.phase).unwrap_or_default(), crashed_in, "the crash came in {crashed_in}");
    let _second = Operator::start(ns.name(), &auto, None);
    let done = incident_in(&ns, Phase::Resolved, WAIT).await;
    let d = healed(&ns).await;
    assert_eq!(d.metadata.generation, Some(done.spec.detected_generation + 1), "the fix was applied once");
    assert_eq!(ns.api::<Incident>().list(&ListParams::default()).await.unwrap().items.len(), 1, "no duplicate incident");
    // The interrupted verification's shadow is gone once the resumed step (or the collector) ran.
    eventually("no shadow left", WAIT, || {
        let client = ns.client();
        let name = ns.name().to_owned();
        async move {
            let left: Vec<_> = aegis_k8s::shadow::list_shadows(&client)
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|s| s.incident.starts_with(&format!("{name}/")) && s.phase != "Terminating")
                .collect();
            if left.is_empty() { Ok(()) } else { Err(format!("{left:?}")) }
        }
    })
    .await;
}

#[tokio::test]
async fn a_crash_right_after_detection_resumes_to_resolved() {
    crash_and_resume("op-crash-detect", "detected:before-commit", Phase::Detected).await;
}

#[tokio::test]
async fn an_unanswered_fix_expires_and_is_never_applied() {
    let ns = crashloop("op-expire").await;
    let _operator = Operator::start(ns.name(), &["--approval-timeout", "3s"], None);
    let expired = incident_in(&ns, Phase::Expired, WAIT).await;
    assert_eq!(phases(&expired)[3..], [Phase::AwaitingApproval, Phase::Expired]);
    assert_eq!(
        ns.api::<Deployment>().get("api").await.unwrap().metadata.generation,
        Some(expired.spec.detected_generation),
        "nothing applied"
    );
}

#[tokio::test]
async fn a_crash_after_the_analysis_resumes_to_resolved() {
    crash_and_resume("op-crash-analyze", "analyzing:before-commit", Phase::Analyzing).await;
}

#[tokio::test]
async fn a_crash_during_the_verification_resumes_to_resolved_without_its_shadow() {
    crash_and_resume("op-crash-verify", "verifying:during", Phase::Verifying).await;
}

#[tokio::test]
async fn a_crash_while_approving_resumes_to_resolved() {
    crash_and_resume("op-crash-approve", "awaiting-approval:before-commit", Phase::AwaitingApproval).await;
}

#[tokio::test]
async fn a_crash_after_the_production_patch_resumes_without_applying_it_twice() {
    crash_and_resume("op-crash-apply", "applying:after-patch", Phase::Applying).await;
}

#[tokio::test]
async fn a_crash_during_the_monitoring_resumes_to_resolved() {
    crash_and_resume("op-crash-monitor", "monitoring:during", Phase::Monitoring).await;
}

async fn holder(ns: &TestNamespace) -> Option<String> {
    ns.api::<Lease>().get_opt("aegis-operator").await.ok().flatten().and_then(|l| l.spec).and_then(|s| s.holder_identity)
}

#[tokio::test]
async fn two_replicas_elect_one_leader_and_the_other_takes_over_when_it_dies() {
    let ns = crashloop("op-replicas").await;
    // The replicas' Pods (kwok runs them): the leader labels its own, for the Falco Service.
    let pods = ns.api::<k8s_openapi::api::core::v1::Pod>();
    for name in ["replica-a", "replica-b"] {
        let pod = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"aegis.io/leader": "true"}},
            "spec": {"containers": [{"name": "operator", "image": "registry.invalid/aegis:test"}]}}))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let leader_label = |name: &'static str| {
        let pods = pods.clone();
        async move { pods.get(name).await.unwrap().metadata.labels.unwrap_or_default().get("aegis.io/leader").cloned() }
    };
    let auto = ["--auto-approve-max-severity", "critical"];
    let mut a = Operator::start(ns.name(), &[&auto[..], &["--identity", "replica-a", "--pod-name", "replica-a"]].concat(), None);
    let mut b = Operator::start(ns.name(), &[&auto[..], &["--identity", "replica-b", "--pod-name", "replica-b"]].concat(), None);
    incident_in(&ns, Phase::Resolved, WAIT).await;
    let leader = eventually("a leader", WAIT, || async { holder(&ns).await.ok_or_else(|| "no holder".to_owned()) }).await;
    assert!(leader == "replica-a" || leader == "replica-b", "{leader}");
    let standby = if leader == "replica-a" { "replica-b" } else { "replica-a" };
    let leader_name: &'static str = if leader == "replica-a" { "replica-a" } else { "replica-b" };
    assert_eq!(leader_label(leader_name).await.as_deref(), Some("true"), "the leader's Pod is labelled");
    assert_eq!(leader_label(standby).await, None, "a stale label is cleared at start; the standby's Pod is not labelled");
    let logs = format!("{}{}", a.log(), b.log());
    assert_eq!(logs.matches("leading: detecting and reconciling").count(), 1, "exactly one replica led:\n{logs}");

    // Kill the leader without letting it release the Lease; the other takes over once it expires.
    let (dead, survivor) = if leader == "replica-a" { (&mut a, "replica-b") } else { (&mut b, "replica-a") };
    dead.kill();
    eventually("the other replica leads", WAIT, || async {
        match holder(&ns).await {
            Some(h) if h == survivor => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    eventually("the survivor's Pod is labelled the leader", WAIT, || async {
        match leader_label(standby).await {
            Some(v) if v == "true" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // The new leader works: break the workload again and watch a second incident resolve.
    let broken =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "env": [{"name": "DATABASE_URL", "$patch": "delete"}]}]}}}});
    ns.api::<Deployment>().patch("api", &PatchParams::default(), &Patch::Strategic(broken)).await.unwrap();
    let api: Api<Incident> = ns.api();
    eventually("the second incident is resolved by the survivor", WAIT, || {
        let api = api.clone();
        async move {
            let items = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
            let resolved = items.iter().filter(|i| i.status.as_ref().is_some_and(|s| s.phase == Phase::Resolved)).count();
            if resolved == 2 { Ok(()) } else { Err(format!("{resolved} resolved of {}", items.len())) }
        }
    })
    .await;
}

/// What a sustained Falco sender saw: the uuids the receivers acknowledged, and its retries.
#[derive(Default)]
struct Sent {
    acknowledged: std::collections::BTreeSet<String>,
    requests: u64,
    retries: u64,
    duplicates_answered: u64,
}

/// A falcosidekick-like sender: `senders` loops post batches of 5 alerts (unique uuids, namespace
/// `aegis-load`, Notice) to the receivers in turn; a failed request is retried on the next receiver
/// until one acknowledges it, and every tenth acknowledged batch is sent again (an answer lost on the
/// way back), which must come back as duplicates. Stops when `stop` turns true.
async fn sustain(receivers: Vec<String>, senders: usize, stop: tokio::sync::watch::Receiver<bool>) -> Sent {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let loops = (0..senders).map(|s| {
        let (http, receivers, stop) = (http.clone(), receivers.clone(), stop.clone());
        async move {
            let mut sent = Sent::default();
            let mut turn = s;
            for batch in 0u64.. {
                if *stop.borrow() {
                    break;
                }
                let uuids: Vec<String> = (0..5).map(|k| format!("load-{s}-{batch}-{k}")).collect();
                let body: String = uuids
                    .iter()
                    .map(|u| {
                        let alert = json!({"uuid": u, "rule": "Read sensitive file untrusted", "priority": "Notice",
                            "time": jiff::Timestamp::now().to_string(), "output": format!("load {u}"), "source": "syscall",
                            "output_fields": {"k8s.ns.name": "aegis-load", "k8s.pod.name": "load-0"}});
                        alert.to_string() + "\n"
                    })
                    .collect();
                let resend = batch % 10 == 9;
                for attempt in 0.. {
                    assert!(attempt < 300, "no receiver acknowledged a batch for 30 s");
                    let url = &receivers[turn % receivers.len()];
                    turn += 1;
                    sent.requests += 1;
                    match http.post(url).body(body.clone()).send().await {
                        Ok(r) if r.status() == 200 => {
                            let outcome: serde_json::Value = r.json().await.unwrap();
                            sent.duplicates_answered += outcome["duplicates"].as_u64().unwrap_or(0);
                            sent.acknowledged.extend(uuids.iter().cloned());
                            break;
                        }
                        _ => {
                            sent.retries += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                if resend {
                    let url = &receivers[turn % receivers.len()];
                    if let Ok(r) = http.post(url).body(body).send().await
                        && r.status() == 200
                    {
                        let outcome: serde_json::Value = r.json().await.unwrap();
                        sent.duplicates_answered += outcome["duplicates"].as_u64().unwrap_or(0);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            sent
        }
    });
    let mut all = Sent::default();
    for s in futures::future::join_all(loops).await {
        all.acknowledged.extend(s.acknowledged);
        all.requests += s.requests;
        all.retries += s.retries;
        all.duplicates_answered += s.duplicates_answered;
    }
    all
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Evidence survives failover. Two replicas share one PostgreSQL store and both receive Falco alerts
/// under a sustained load (with a sender's retries and resent batches); the gate's Falco check is on.
/// The leader is killed mid-verification: the senders' retries go to the survivor, which takes the
/// lead, verifies again with the Falco evidence both replicas stored, and passes. Every alert a
/// receiver acknowledged is in the store exactly once (0 lost, 0 duplicated), and the new leader's
/// receiver lists them all.
#[tokio::test]
async fn the_new_leader_sees_every_alert_the_old_one_acknowledged_after_a_kill_mid_verification() {
    let ns = crashloop("op-failover").await;
    let dsn = aegis_testkit::postgres_database("failover").await;
    let policy = "zap: {mode: off}\nfalco: {mode: required}\n";
    let ports = [free_port(), free_port()];
    let start = |identity: &str, port: u16| {
        let listen = format!("127.0.0.1:{port}");
        Operator::start_with(
            ns.name(),
            &["--identity", identity, "--falco-listen", &listen, "--window", "8s"],
            None,
            policy,
            &[("AEGIS_FALCO_STORE", dsn.as_str())],
        )
    };
    let mut a = start("replica-a", ports[0]);
    let mut b = start("replica-b", ports[1]);
    let receivers: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}/")).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(sustain(receivers.clone(), 4, stopped));

    let verifying = incident_in(&ns, Phase::Verifying, WAIT).await;
    let leader = eventually("a leader", WAIT, || async { holder(&ns).await.ok_or_else(|| "no holder".to_owned()) }).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (dead, survivor, survivor_port) = if leader == "replica-a" { (&mut a, &b, ports[1]) } else { (&mut b, &a, ports[0]) };
    dead.kill();
    let waiting = incident_in(&ns, Phase::AwaitingApproval, Duration::from_secs(150)).await;
    assert_eq!(waiting.name_any(), verifying.name_any());
    let verification = waiting.status.unwrap().verification.unwrap();
    assert_eq!(verification.verdict.to_string(), "passed", "{:?}", verification.reasons);
    assert_ne!(holder(&ns).await.as_deref(), Some(leader.as_str()), "the survivor leads");
    assert!(survivor.log().contains("verification started"), "the survivor verified again:\n{}", survivor.log());

    stop.send(true).unwrap();
    let sent = load.await.unwrap();
    eprintln!(
        "load: {} alerts acknowledged in {} requests, {} retried, {} duplicates answered",
        sent.acknowledged.len(),
        sent.requests,
        sent.retries,
        sent.duplicates_answered
    );
    assert!(sent.retries > 0, "the kill cut some requests off (else it proves nothing)");
    assert!(sent.duplicates_answered > 0, "resent batches were answered as duplicates");

    let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let rows = client.query("SELECT body FROM aegis_falco_alerts WHERE namespace = 'aegis-load'", &[]).await.unwrap();
    let stored: Vec<String> = rows
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(r.get::<_, &str>(0)).unwrap()["uuid"].as_str().unwrap().to_owned())
        .collect();
    let distinct: std::collections::BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), distinct.len(), "0 duplicated");
    let lost: Vec<&String> = sent.acknowledged.difference(&distinct).collect();
    assert!(lost.is_empty(), "0 lost: {} acknowledged alerts are not stored, e.g. {:?}", lost.len(), lost.first());

    let listed: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{survivor_port}/alerts?namespace=aegis-load&limit=100000"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["alerts"].as_array().unwrap().len(), distinct.len(), "the new leader lists every stored alert");
}

/// A healthy `probed_app` (revision 1) broken by `regression` (revision 2).
async fn regressed(prefix: &str, regression: serde_json::Value) -> TestNamespace {
    let ns = TestNamespace::create(prefix).await;
    install_crd(&ns.client()).await;
    let deployments = ns.api::<Deployment>();
    deployments.create(&PostParams::default(), &deployment("api", 2, probed_app(&image("v2")))).await.unwrap();
    wait_available(&deployments, "api", WAIT).await;
    deployments.patch("api", &PatchParams::default(), &Patch::Strategic(regression)).await.unwrap();
    ns
}

/// Run the operator (policy approval up to CRITICAL) until the namespace's incident of `category`
/// is Resolved, approving by hand when the gate passed only with warnings; production is then healthy.
async fn resolves(ns: &TestNamespace, category: aegis_model::Category) -> Incident {
    let _operator = Operator::start(ns.name(), &["--auto-approve-max-severity", "critical"], None);
    let api: Api<Incident> = ns.api();
    let done = eventually(&format!("the {category} incident resolved"), Duration::from_secs(150), || {
        let api = api.clone();
        async move {
            let items = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
            let Some(i) = items.into_iter().find(|i| i.spec.category == category) else { return Err("no incident yet".to_owned()) };
            let st = i.status.clone().unwrap_or_default();
            if st.phase == Phase::AwaitingApproval && i.spec.approval.is_none() {
                // passed_with_warnings is never approved by policy: a human looks at the warnings first.
                let (code, _, err) = aegis(&["incident", "approve", &i.name_any(), "-n", &i.namespace().unwrap()]);
                return Err(format!("approved by hand ({code:?} {err})"));
            }
            match st.phase {
                Phase::Resolved => Ok(i),
                p if p.is_terminal() => panic!("ended {p}: {:?}", st.message),
                p => Err(format!("{p}: {:?}", st.message)),
            }
        }
    })
    .await;
    wait_available(&ns.api::<Deployment>(), "api", WAIT).await;
    no_shadow_of(&ns.client(), ns.name()).await;
    done
}

#[tokio::test]
async fn a_liveness_probe_regression_is_resolved_by_the_operator() {
    let moved = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}}}]}}}});
    let ns = regressed("op-liveness", moved).await;
    resolves(&ns, aegis_model::Category::LivenessProbeFailure).await;
}

#[tokio::test]
async fn a_readiness_probe_regression_is_resolved_by_the_operator() {
    let moved = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "readinessProbe": {"httpGet": {"path": "/status", "port": 8080}}}]}}}});
    let ns = regressed("op-readiness", moved).await;
    resolves(&ns, aegis_model::Category::ReadinessProbeFailure).await;
}

/// The rolled-back image is scanned by the real Trivy; the missing image's baseline scan fails, so the
/// gate passes with a warning and a human approves.
#[tokio::test]
async fn a_rollout_to_a_missing_tag_is_resolved_by_the_operator_after_a_human_approval() {
    let missing = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": image("v2.1-does-not-exist")}]}}}});
    let ns = regressed("op-pull", missing).await;
    let done = resolves(&ns, aegis_model::Category::ImagePullBackOff).await;
    let st = done.status.unwrap();
    assert_eq!(st.verification.unwrap().verdict, aegis_model::Verdict::PassedWithWarnings);
    assert_eq!(st.approved.unwrap().by, whoami(&ns.client()).await, "a human, as the API server knows them");
}

#[tokio::test]
async fn an_oom_is_resolved_by_the_operator() {
    let ns = TestNamespace::create("op-oom").await;
    install_crd(&ns.client()).await;
    let mut container = probed_app(&image("v2"));
    container["resources"]["limits"]["memory"] = json!("128Mi");
    container["env"] = json!([aegis_testkit::cluster::database_url(), {"name": "ALLOCATE_MIB", "value": "200"}]);
    ns.api::<Deployment>().create(&PostParams::default(), &deployment("api", 2, container)).await.unwrap();
    resolves(&ns, aegis_model::Category::OOMKilled).await;
}

#[tokio::test]
async fn requests_too_large_for_any_node_are_resolved_by_the_operator() {
    let ns = TestNamespace::create("op-pending").await;
    install_crd(&ns.client()).await;
    aegis_testkit::cluster::oversized_requests(&ns, &image("v2")).await;
    resolves(&ns, aegis_model::Category::Unschedulable).await;
}

#[tokio::test]
async fn a_service_selector_typo_is_resolved_by_the_operator() {
    let ns = TestNamespace::create("op-selector").await;
    install_crd(&ns.client()).await;
    aegis_testkit::cluster::selector_typo(&ns, &image("v2"), WAIT).await;
    let done = resolves(&ns, aegis_model::Category::ServiceSelectorMismatch).await;
    assert!(done.status.unwrap().message.unwrap().contains("routed by Service api"), "monitoring checked the Service routes");
    let selector = ns.api::<k8s_openapi::api::core::v1::Service>().get("api").await.unwrap().spec.unwrap().selector.unwrap();
    assert_eq!(selector.get("app").map(String::as_str), Some("api"));
}

/// A TCP link to the API server that a test can cut — live connections dropped, new ones refused —
/// and restore: the API server unavailable for one operator, while the other tests keep theirs.
struct ApiLink {
    addr: std::net::SocketAddr,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    epoch: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl ApiLink {
    /// A link to the harness' API server.
    async fn to_harness() -> ApiLink {
        let kc = kube::config::Kubeconfig::read_from(harness_env("AEGIS_KUBECONFIG")).unwrap();
        let server = kc.clusters[0].cluster.as_ref().unwrap().server.clone().unwrap();
        ApiLink::start(server.trim_start_matches("https://").to_owned()).await
    }

    async fn start(upstream: String) -> ApiLink {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let epoch = std::sync::Arc::new(tokio::sync::watch::channel(0u64).0);
        let (c, e) = (cut.clone(), epoch.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                if c.load(Ordering::SeqCst) {
                    continue; // refused: dropped at once
                }
                let (upstream, mut cut_now) = (upstream.clone(), e.subscribe());
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_now.changed() => {}
                    }
                });
            }
        });
        ApiLink { addr, cut, epoch }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        self.epoch.send_modify(|e| *e += 1);
    }

    fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// The harness kubeconfig, pointed at this link; written into `dir`.
    fn kubeconfig(&self, dir: &std::path::Path) -> PathBuf {
        let mut kc = kube::config::Kubeconfig::read_from(harness_env("AEGIS_KUBECONFIG")).unwrap();
        for c in &mut kc.clusters {
            if let Some(cluster) = c.cluster.as_mut() {
                cluster.server = Some(format!("https://{}", self.addr));
            }
        }
        let path = dir.join("kubeconfig");
        std::fs::write(&path, serde_json::to_string(&kc).unwrap()).unwrap();
        path
    }
}

/// The API server unavailable for 8 s during the verification and again during the monitoring (with
/// a 4 s Lease): the operator sees the outage — a step that writes during it fails and is retried, one
/// that only watches (a shadow's health window) waits it out, which of the two depends on where the
/// cut falls — the interrupted verification's shadow is deleted when the step resumes, and the
/// incident still ends Resolved with the fix applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_unavailable_during_verification_and_monitoring_delays_but_never_misleads() {
    let ns = crashloop("op-apicut").await;
    let link = ApiLink::to_harness().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = link.kubeconfig(dir.path());
    let op = Operator::start(ns.name(), &["--auto-approve-max-severity", "critical", "--kubeconfig", kubeconfig.to_str().unwrap()], None);
    for phase in [Phase::Verifying, Phase::Monitoring] {
        incident_in(&ns, phase, WAIT).await;
        link.cut();
        tokio::time::sleep(Duration::from_secs(8)).await;
        link.restore();
    }
    let done = incident_in(&ns, Phase::Resolved, WAIT).await;
    let d = healed(&ns).await;
    assert_eq!(d.metadata.generation, Some(done.spec.detected_generation + 1), "the fix was applied once");
    assert_eq!(ns.api::<Incident>().list(&ListParams::default()).await.unwrap().items.len(), 1);
    let log = op.log();
    let failed_and_retried = log.contains("reconcile failed; retrying");
    let waited_out = log.contains("the Incident API does not answer") && log.contains("watch error; the watcher retries");
    assert!(failed_and_retried || waited_out, "the outage was seen:\n{log}");
    no_shadow_of(&ns.client(), ns.name()).await;
}

/// The API server unavailable while the fix is being applied: the operator pauses just before the
/// production patch (`AEGIS_FAILPOINT=applying:pause`, inverse already recorded), the link is cut for
/// longer than that pause, the patch fails and is retried once the API server is back — applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_unavailable_during_the_apply_delays_it_and_it_lands_once() {
    let ns = crashloop("op-apicut-apply").await;
    let link = ApiLink::to_harness().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = link.kubeconfig(dir.path());
    let op = Operator::start(
        ns.name(),
        &["--auto-approve-max-severity", "critical", "--kubeconfig", kubeconfig.to_str().unwrap()],
        Some("applying:pause"),
    );
    let api: Api<Incident> = ns.api();
    eventually("the inverse recorded, the patch not yet sent", WAIT, || {
        let api = api.clone();
        async move {
            let items = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items;
            let applying = items.iter().any(|i| i.status.as_ref().is_some_and(|s| s.phase == Phase::Applying && s.applied.is_some()));
            if applying { Ok(()) } else { Err("not applying yet".to_owned()) }
        }
    })
    .await;
    // Cut only once the operator is inside the pause: cut earlier, and the watch event that starts the
    // paused step waits for the link too, so the patch is sent after the outage (a race CI lost).
    eventually("the operator pausing before the patch", WAIT, || {
        let log = op.log();
        async move { if log.contains("AEGIS_FAILPOINT applying:pause") { Ok(()) } else { Err("not paused yet".to_owned()) } }
    })
    .await;
    link.cut();
    // The outage outlasts the failpoint's pause, so the patch is sent into it.
    tokio::time::sleep(aegis_operator::failpoint::PAUSE + Duration::from_secs(4)).await;
    link.restore();
    let done = incident_in(&ns, Phase::Resolved, WAIT).await;
    let d = healed(&ns).await;
    assert_eq!(d.metadata.generation, Some(done.spec.detected_generation + 1), "the fix was applied once");
    assert!(op.log().contains("reconcile failed; retrying"), "the outage was seen and retried:\n{}", op.log());
}

/// An Incident may only name a resource in its own namespace: one written in a watched namespace
/// that names a crash-looping workload elsewhere ends Failed, and nothing there is analyzed or patched.
#[tokio::test]
async fn an_incident_aimed_at_another_namespace_is_refused_and_nothing_is_patched() {
    let victim = crashloop("op-victim").await;
    let attacker = TestNamespace::create("op-foreign").await;
    let generation = victim.api::<Deployment>().get("api").await.unwrap().metadata.generation;
    let foreign: Incident = serde_json::from_value(json!({
        "apiVersion": "aegis.io/v1alpha1", "kind": "Incident", "metadata": {"name": "steal"},
        "spec": {"resource": {"kind": "Deployment", "namespace": victim.name(), "name": "api"}, "category": "CrashLoopBackOff",
                 "severity": "HIGH", "detectedGeneration": generation.unwrap_or(0)}
    }))
    .unwrap();
    attacker.api::<Incident>().create(&PostParams::default(), &foreign).await.unwrap();
    let _operator = Operator::start(attacker.name(), &["--auto-approve-max-severity", "critical"], None);
    let failed = incident_in(&attacker, Phase::Failed, WAIT).await;
    let message = failed.status.unwrap().message.unwrap_or_default();
    assert!(message.contains("own namespace"), "{message}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(victim.api::<Deployment>().get("api").await.unwrap().metadata.generation, generation, "nothing patched");
    let shadows = aegis_k8s::shadow::list_shadows(&victim.client()).await.unwrap();
    assert!(!shadows.iter().any(|s| s.source.contains(victim.name())), "no shadow of the victim: {shadows:?}");
}

/// Where the Gateway API is served (the harness installs its CRDs), the operator watches routes: an
/// HTTPRoute whose backend Service does not exist becomes an incident about the route, explained and
/// left to a human (no automatic fix), and it does not stall on reading the route back.
#[tokio::test]
async fn a_route_to_a_missing_backend_is_explained_and_left_to_a_human() {
    let ns = TestNamespace::create("op-route").await;
    install_crd(&ns.client()).await;
    aegis_testkit::cluster::route_to_missing_backend(&ns).await;
    let _operator = Operator::start(ns.name(), &[], None);
    let done = incident_in(&ns, Phase::Failed, WAIT).await;
    assert_eq!(done.spec.category, aegis_model::Category::RouteBackendMissing);
    assert_eq!((done.spec.resource.kind.as_str(), done.spec.resource.name.as_str()), ("HTTPRoute", "shop"));
    let status = done.status.unwrap();
    assert!(status.message.as_deref().unwrap_or_default().contains("no automatic fix"), "{:?}", status.message);
    assert!(status.analysis.unwrap().evidence.iter().any(|e| e.contains("api-v2")), "the evidence names the missing Service");
}
