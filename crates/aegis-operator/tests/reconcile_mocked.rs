//! Reconcile decisions against a mocked API server (tower-test), in milliseconds: for each phase, the
//! exact requests a step sends — and, as much to the point, the ones it must never send (a workload
//! PATCH on a stale approval). The live tests (`aegis-cli/tests/live_operator.rs`) prove the same
//! machine end to end on a real control plane; these pin its decisions one request at a time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aegis_model::{Category, Digest, Severity, Verdict};
use aegis_operator::crd::{Analysis, Approval, Decision, Incident, IncidentSpec, IncidentStatus, Phase, Transition, VerificationSummary};
use aegis_operator::reconcile::{Context, Settings, reconcile};
use aegis_operator::work::Attempt;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};

/// One request the step sent: method, path (without the query), body.
#[derive(Debug, Clone)]
struct Sent {
    method: Method,
    path: String,
    body: Value,
}

/// A mocked API server answering from `objects` (path → JSON): GETs of a listed path get the object,
/// writes get their own body back (201 for POST), anything else 404. Every request is recorded.
struct Api {
    client: kube::Client,
    sent: Arc<Mutex<Vec<Sent>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Api {
    fn serving(objects: Vec<(String, Value)>) -> Api {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let record = sent.clone();
        let server = tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let path = parts.uri.path().to_owned();
                record.lock().unwrap().push(Sent { method: parts.method.clone(), path: path.clone(), body: body.clone() });
                let bare = parts.uri.path().to_owned();
                let (status, answer) = match parts.method {
                    Method::GET => match objects.iter().find(|(p, _)| *p == bare) {
                        Some((_, object)) => (StatusCode::OK, object.clone()),
                        None => (StatusCode::NOT_FOUND, not_found(&bare)),
                    },
                    Method::POST => (StatusCode::CREATED, body),
                    _ => (StatusCode::OK, body),
                };
                let response = Response::builder().status(status).body(Body::from(serde_json::to_vec(&answer).unwrap())).unwrap();
                respond.send_response(response);
            }
        });
        Api { client: kube::Client::new(service, "shop"), sent, server }
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn not_found(path: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": format!("{path} not found"), "reason": "NotFound", "code": 404})
}

fn context(client: kube::Client) -> Arc<Context> {
    let policy = aegis_security::GatePolicy::compile(Default::default(), |p| Err(format!("no file {p}"))).unwrap();
    let verify = aegis_verify::VerifyOptions {
        window: Duration::from_secs(2),
        deadline: Duration::from_secs(60),
        policy: policy.clone(),
        runner: aegis_scanners::Runner::default(),
        aegis_namespace: "aegis-system".into(),
        runtime_class: None,
        shadow_ttl: Duration::from_secs(600),
        smoke_paths: Vec::new(),
        progress: None,
        isolation_probe: None,
    };
    Arc::new(Context {
        client: client.clone(),
        settings: Settings::default(),
        verify,
        policy_for: Arc::new(move |_| Ok(policy.clone())),
        scope: Default::default(),
        recorder: Recorder::new(client, Reporter { controller: "aegis-operator".into(), instance: None }),
        metrics: aegis_operator::metrics::Metrics::new(None, Default::default()),
        verifications: Default::default(),
        monitors: Default::default(),
        failures: Default::default(),
        caches: None,
        incidents: Vec::new(),
    })
}

/// A controller's store of Incidents, listed and ready, holding `incidents`.
fn store_of(incidents: Vec<Incident>) -> kube::runtime::reflector::Store<Incident> {
    use kube::runtime::watcher::Event;
    let mut writer = kube::runtime::reflector::store::Writer::<Incident>::default();
    writer.apply_watcher_event(&Event::Init);
    for i in incidents {
        writer.apply_watcher_event(&Event::InitApply(i));
    }
    writer.apply_watcher_event(&Event::InitDone);
    writer.as_reader()
}

/// An Incident verified and waiting, whose plan the policy may approve without a human.
fn policy_approvable(current: &Digest) -> Incident {
    let mut i = incident(Phase::AwaitingApproval, current, None);
    i.status.as_mut().unwrap().analysis.as_mut().unwrap().plan.approval_required = false;
    i
}

/// An earlier Incident about the same resource whose same fix was rolled back.
fn rolled_back_before() -> Incident {
    let mut earlier = policy_approvable(&digest("earlier"));
    earlier.metadata.name = Some("deployment-api-crashloopbackoff-g1".into());
    earlier.status.as_mut().unwrap().phase = Phase::RolledBack;
    earlier
}

fn lists_incidents(sent: &[Sent]) -> bool {
    sent.iter().any(|s| s.method == Method::GET && s.path.ends_with("/incidents"))
}

/// The crash-looping Deployment of the corpus, as the analysis sees it (moved to namespace `shop`):
/// its fix and plan.
fn analysis() -> Analysis {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/incidents/crashloop-missing-env.yaml");
    let text = std::fs::read_to_string(path).unwrap().replace("corpus-crashloop-missing-env", "shop");
    let snapshot = aegis_analysis::Snapshot::from_text(&text).unwrap();
    let found = aegis_analysis::analyze(&snapshot).into_iter().find(|i| i.category == Category::CrashLoopBackOff).unwrap();
    Analysis {
        root_cause: found.root_cause,
        evidence: found.evidence,
        confidence: found.confidence,
        fix: found.fix,
        plan: aegis_model::VerificationPlan { approval_required: true, ..found.verification_plan },
    }
}

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/api";

fn deployment(generation: i64) -> (String, Value) {
    (
        DEPLOYMENT.to_owned(),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop", "generation": generation,
            "resourceVersion": "7"}, "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {"metadata": {"labels": {"app": "api"}},
            "spec": {"containers": [{"name": "api", "image": "demo-api:v2"}]}}}}),
    )
}

fn digest(s: &str) -> Digest {
    Digest::of_bytes(s.as_bytes())
}

/// An Incident about `shop/api` in `phase`, verified with evidence `current`.
fn incident(phase: Phase, current: &Digest, approval: Option<&Digest>) -> Incident {
    let analysis = analysis();
    let mut i = Incident::new(
        "deployment-api-crashloopbackoff-g2",
        IncidentSpec {
            resource: analysis.fix.patch.as_ref().unwrap().target.clone(),
            category: Category::CrashLoopBackOff,
            severity: Severity::High,
            detected_generation: 2,
            approval: approval.map(|d| Approval {
                decision: Decision::Approve,
                by: "alice".into(),
                evidence_digest: d.clone(),
                at: "2026-11-30T09:00:00Z".into(),
                comment: None,
            }),
        },
    );
    i.metadata.namespace = Some("shop".into());
    i.metadata.uid = Some("uid-1".into());
    i.metadata.resource_version = Some("42".into());
    i.status = Some(IncidentStatus {
        phase,
        analysis: Some(analysis),
        verification: Some(VerificationSummary {
            verdict: Verdict::Passed,
            healthy: true,
            reasons: Vec::new(),
            evidence_digest: current.clone(),
            evidence_config_map: "aegis-evidence-x".into(),
            new_findings: Default::default(),
            shadow_namespace: "aegis-shadow-x".into(),
            total_ms: 5000,
            workload_generation: 2,
            finished_at: "2026-11-30T08:59:00Z".into(),
        }),
        transitions: vec![Transition { phase, at: "2026-11-30T08:59:00Z".into(), reason: "test".into() }],
        ..Default::default()
    });
    i
}

fn status_writes(sent: &[Sent]) -> Vec<&Sent> {
    sent.iter().filter(|s| s.method == Method::PUT && s.path.ends_with("/status")).collect()
}

fn touches_the_workload(sent: &[Sent]) -> bool {
    sent.iter().any(|s| s.path.starts_with(DEPLOYMENT) && s.method != Method::GET)
}

#[tokio::test]
async fn a_stale_approval_is_refused_with_a_condition_and_sends_no_workload_patch() {
    let api = Api::serving(vec![deployment(2)]);
    let (current, stale) = (digest("current"), digest("stale"));
    reconcile(Arc::new(incident(Phase::AwaitingApproval, &current, Some(&stale))), context(api.client.clone())).await.unwrap();
    let sent = api.sent();
    assert!(!touches_the_workload(&sent), "{sent:#?}");
    let writes = status_writes(&sent);
    assert_eq!(writes.len(), 1, "{sent:#?}");
    let status = &writes[0].body["status"];
    assert_eq!(status["phase"], "AwaitingApproval");
    let condition = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "ApprovalStale").unwrap();
    assert_eq!(condition["status"], "True");
    assert!(condition["message"].as_str().unwrap().contains(stale.as_str()), "{condition}");
    assert_eq!(writes[0].body["metadata"]["resourceVersion"], "42", "the write carries the version it read");
}

#[tokio::test]
async fn an_approval_of_the_current_evidence_moves_to_applying_without_touching_the_workload_yet() {
    let api = Api::serving(vec![deployment(2)]);
    let current = digest("current");
    reconcile(Arc::new(incident(Phase::AwaitingApproval, &current, Some(&current))), context(api.client.clone())).await.unwrap();
    let sent = api.sent();
    assert!(!touches_the_workload(&sent), "the patch is the next step's, after the inverse is recorded: {sent:#?}");
    let writes = status_writes(&sent);
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].body["status"]["phase"], "Applying");
    assert_eq!(writes[0].body["status"]["approved"]["by"], "alice");
}

#[tokio::test]
async fn a_workload_changed_since_detection_supersedes_the_incident_and_nothing_is_applied() {
    let api = Api::serving(vec![deployment(3)]);
    let current = digest("current");
    reconcile(Arc::new(incident(Phase::AwaitingApproval, &current, Some(&current))), context(api.client.clone())).await.unwrap();
    let sent = api.sent();
    assert!(!touches_the_workload(&sent), "{sent:#?}");
    let writes = status_writes(&sent);
    assert_eq!(writes[0].body["status"]["phase"], "Superseded");
    assert!(writes[0].body["status"]["message"].as_str().unwrap().contains("generation 2 → 3"), "{}", writes[0].body["status"]["message"]);
}

#[tokio::test]
async fn a_fix_rolled_back_before_is_found_in_the_controllers_store_without_listing_incidents() {
    let api = Api::serving(vec![deployment(2)]);
    let mut ctx = context(api.client.clone());
    Arc::get_mut(&mut ctx).unwrap().incidents = vec![store_of(vec![rolled_back_before()])];
    reconcile(Arc::new(policy_approvable(&digest("current"))), ctx).await.unwrap();
    let sent = api.sent();
    assert!(!lists_incidents(&sent), "{sent:#?}");
    let writes = status_writes(&sent);
    assert_eq!(writes.len(), 1, "{sent:#?}");
    let condition = writes[0].body["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "RegressedBefore").cloned();
    assert_eq!(condition.expect("RegressedBefore")["status"], "True");
}

#[tokio::test]
async fn waiting_for_approval_with_a_ready_store_lists_no_incidents() {
    let api = Api::serving(vec![deployment(2)]);
    let mut ctx = context(api.client.clone());
    Arc::get_mut(&mut ctx).unwrap().incidents = vec![store_of(Vec::new())];
    reconcile(Arc::new(policy_approvable(&digest("current"))), ctx).await.unwrap();
    let sent = api.sent();
    assert!(!lists_incidents(&sent), "{sent:#?}");
    assert!(!touches_the_workload(&sent), "{sent:#?}");
}

#[tokio::test]
async fn without_a_ready_store_the_incidents_are_listed_rather_than_assumed_absent() {
    let api = Api::serving(vec![deployment(2)]);
    let mut ctx = context(api.client.clone());
    let (not_listed_yet, _writer) = kube::runtime::reflector::store::<Incident>();
    Arc::get_mut(&mut ctx).unwrap().incidents = vec![not_listed_yet];
    let _ = reconcile(Arc::new(policy_approvable(&digest("current"))), ctx).await;
    assert!(lists_incidents(&api.sent()), "{:#?}", api.sent());
}

/// Incidents about objects that are not workloads (an Ingress here) have manual fixes, but the
/// machine still asks whether the object changed since detection: it must be able to read it.
#[tokio::test]
async fn an_incident_about_an_ingress_reads_the_ingress_to_see_whether_it_changed() {
    const INGRESS: &str = "/apis/networking.k8s.io/v1/namespaces/shop/ingresses/web";
    let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "shop",
        "generation": 2, "resourceVersion": "9"}, "spec": {"defaultBackend": {"service": {"name": "gone", "port": {"number": 80}}}}});
    let api = Api::serving(vec![(INGRESS.to_owned(), ingress)]);
    let mut i = incident(Phase::Analyzing, &digest("current"), None);
    i.spec.resource = aegis_model::ResourceRef { kind: "Ingress".into(), namespace: "shop".into(), name: "web".into() };
    i.spec.category = Category::IngressBackendMissing;
    i.spec.detected_generation = 1;
    let outcome = reconcile(Arc::new(i), context(api.client.clone())).await;
    let sent = api.sent();
    assert!(sent.iter().any(|s| s.method == Method::GET && s.path == INGRESS), "{outcome:?} {sent:#?}");
    let writes = status_writes(&sent);
    assert_eq!(writes.first().map(|w| w.body["status"]["phase"].clone()), Some(json!("Superseded")), "{outcome:?} {sent:#?}");
}

#[tokio::test]
async fn applying_records_the_inverse_before_sending_any_patch() {
    let api = Api::serving(vec![deployment(2)]);
    let current = digest("current");
    let mut i = incident(Phase::Applying, &current, Some(&current));
    let status = i.status.as_mut().unwrap();
    status.approved = i.spec.approval.clone();
    reconcile(Arc::new(i), context(api.client.clone())).await.unwrap();
    let sent = api.sent();
    assert!(!touches_the_workload(&sent), "{sent:#?}");
    let writes = status_writes(&sent);
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].body["status"]["phase"], "Applying");
    assert!(writes[0].body["status"]["applied"]["inverse"].is_object(), "{}", writes[0].body["status"]);
}

#[tokio::test]
async fn an_approval_for_other_evidence_than_the_verification_is_never_applied() {
    let api = Api::serving(vec![deployment(2)]);
    let (current, other) = (digest("current"), digest("other"));
    let mut i = incident(Phase::Applying, &current, Some(&other));
    let status = i.status.as_mut().unwrap();
    status.approved = i.spec.approval.clone();
    reconcile(Arc::new(i), context(api.client.clone())).await.unwrap();
    let sent = api.sent();
    assert!(!touches_the_workload(&sent), "{sent:#?}");
    assert_eq!(status_writes(&sent)[0].body["status"]["phase"], "Failed");
}

#[tokio::test]
async fn a_verification_in_flight_is_looked_at_without_a_single_api_call() {
    let api = Api::serving(vec![deployment(2)]);
    let ctx = context(api.client.clone());
    let i = incident(Phase::Verifying, &digest("current"), None);
    let attempt = Attempt {
        incident: "shop/deployment-api-crashloopbackoff-g2".into(),
        uid: "uid-1".into(),
        phase: Phase::Verifying,
        since: "2026-11-30T08:59:00Z".parse::<jiff::Timestamp>().unwrap().to_string(),
    };
    ctx.verifications.start(attempt, std::future::pending());
    let action = reconcile(Arc::new(i), ctx).await.unwrap();
    assert!(api.sent().is_empty(), "{:#?}", api.sent());
    assert_eq!(action, Action::requeue(Duration::from_secs(1)));
}

#[tokio::test]
async fn an_ended_incident_is_left_alone() {
    let api = Api::serving(vec![deployment(2)]);
    let i = incident(Phase::Rejected, &digest("current"), None);
    let action = reconcile(Arc::new(i), context(api.client.clone())).await.unwrap();
    assert!(api.sent().is_empty());
    assert_eq!(action, Action::await_change());
}
