//! The Falco receiver over real HTTP on loopback, with real alerts from shared/testdata.

use std::net::SocketAddr;
use std::path::Path;

use aegis_model::{FalcoPriority, RunStatus, Side};
use aegis_scanners::falco::{AlertQuery, FalcoStore, ReceiverConfig, StoreConfig, router, window_evidence};
use aegis_security::falco::parse_stream;
use aegis_testkit as testkit;
use jiff::Timestamp;
use tokio::sync::oneshot;

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(dir: &Path, config: ReceiverConfig) -> Server {
        let store = FalcoStore::open(StoreConfig::new(dir)).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(store, config);
        let done = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Server { addr, stop: Some(tx), done }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.await.unwrap();
    }
}

fn client() -> reqwest::Client {
    aegis_scanners::tls::install_crypto_provider();
    reqwest::Client::new()
}

fn real_alert_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for path in testkit::files("falco", &[".jsonl"]) {
        let text = std::fs::read_to_string(path).unwrap();
        lines.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned));
    }
    assert_eq!(lines.len(), 243);
    lines
}

async fn post(client: &reqwest::Client, url: &str, body: String) -> (u16, serde_json::Value) {
    let resp = client.post(url).header("content-type", "application/json").body(body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn every_real_alert_posted_one_per_request_is_stored_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let lines = real_alert_lines();
    let client = client();
    let (first, second) = lines.split_at(lines.len() / 2);

    let server = Server::start(dir.path(), ReceiverConfig::default()).await;
    for line in first {
        let (status, body) = post(&client, &server.url("/"), line.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    server.stop().await;

    // Restarted on the same directory: what was acknowledged is still there.
    let server = Server::start(dir.path(), ReceiverConfig::default()).await;
    for line in second {
        let (status, _) = post(&client, &server.url("/falco"), line.clone()).await;
        assert_eq!(status, 200);
    }
    // A sender retrying everything stores nothing twice.
    let (status, body) = post(&client, &server.url("/"), lines.join("\n")).await;
    assert_eq!(status, 200);
    server.stop().await;

    let store = FalcoStore::open(StoreConfig::new(dir.path())).unwrap();
    let distinct: std::collections::BTreeSet<String> =
        parse_stream(&lines.join("\n"), Timestamp::now()).alerts.iter().map(|a| a.dedup_key()).collect();
    assert_eq!(store.count().await.unwrap(), distinct.len() as u64);
    assert_eq!(body["stored"], 0);
    assert_eq!(body["duplicates"], lines.len());
}

#[tokio::test]
async fn alerts_are_queried_by_namespace_time_window_and_priority() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), ReceiverConfig::default()).await;
    let client = client();
    let text = std::fs::read_to_string(testkit::testdata().join("falco/falco-website-doc-examples.jsonl")).unwrap();
    let (status, _) = post(&client, &server.url("/"), text.clone()).await;
    assert_eq!(status, 200);
    // The store keeps one copy of identical alerts (the doc examples repeat two).
    let mut seen = std::collections::BTreeSet::new();
    let parsed: Vec<_> = parse_stream(&text, Timestamp::now()).alerts.into_iter().filter(|a| seen.insert(a.dedup_key())).collect();

    let resp: serde_json::Value = client.get(server.url("/alerts?namespace=default")).send().await.unwrap().json().await.unwrap();
    let expected = parsed.iter().filter(|a| a.namespace() == Some("default") && !a.is_internal()).count();
    assert_eq!(resp["alerts"].as_array().unwrap().len(), expected);
    assert!(expected > 0);

    let resp: serde_json::Value =
        client.get(server.url("/alerts?namespace=default&min_priority=warning")).send().await.unwrap().json().await.unwrap();
    let expected_warn =
        parsed.iter().filter(|a| a.namespace() == Some("default") && a.priority >= FalcoPriority::Warning && !a.is_internal()).count();
    assert_eq!(resp["alerts"].as_array().unwrap().len(), expected_warn);

    let since = "2023-05-25T00:00:00Z";
    let until = "2023-05-26T00:00:00Z";
    let resp: serde_json::Value =
        client.get(server.url(&format!("/alerts?since={since}&until={until}"))).send().await.unwrap().json().await.unwrap();
    let (s, u): (Timestamp, Timestamp) = (since.parse().unwrap(), until.parse().unwrap());
    let in_window = parsed.iter().filter(|a| a.time >= s && a.time <= u && !a.is_internal()).count();
    assert_eq!(resp["alerts"].as_array().unwrap().len(), in_window);
    assert!(in_window > 0);

    let (status, body) = (client.get(server.url("/alerts?min_priority=severe")).send().await.unwrap().status(), ());
    assert_eq!(status, 400, "{body:?}");
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_precise_answers_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = ReceiverConfig { token: Some("s3cret".into()), max_body: 4096, ..Default::default() };
    let server = Server::start(dir.path(), config).await;
    let client = client();
    let alert = real_alert_lines().remove(0);

    let resp = client.post(server.url("/")).body(alert.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert!(resp.text().await.unwrap().contains("missing"));

    let resp = client.post(server.url("/")).bearer_auth("wrong").body(alert.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("rejected"));

    let resp = client.post(server.url("/")).bearer_auth("s3cret").body(format!("{alert}\n{{\"rule\": \"x\"}}")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let msg = resp.text().await.unwrap();
    assert!(msg.contains("line 2") && msg.contains("priority"), "{msg}");

    let resp = client.post(server.url("/")).bearer_auth("s3cret").body("x".repeat(5000)).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    assert!(resp.text().await.unwrap().contains("4096-byte limit"));

    let resp = client.post(server.url("/")).bearer_auth("s3cret").body(alert).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    server.stop().await;
    assert_eq!(FalcoStore::open(StoreConfig::new(dir.path())).unwrap().count().await.unwrap(), 1, "only the good request was stored");
}

#[tokio::test]
async fn health_endpoints_answer_like_falcosidekick() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), ReceiverConfig::default()).await;
    let client = client();
    assert_eq!(client.get(server.url("/ping")).send().await.unwrap().text().await.unwrap().trim(), "pong");
    let health: serde_json::Value = client.get(server.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    server.stop().await;
}

#[tokio::test]
async fn window_evidence_blocks_on_silence_and_clears_a_quiet_namespace_only_when_the_feed_is_alive() {
    let dir = tempfile::tempdir().unwrap();
    let store = FalcoStore::open(StoreConfig::new(dir.path())).unwrap();
    let now = Timestamp::now();
    let since = now.checked_sub(jiff::SignedDuration::from_secs(60)).unwrap();
    let run = window_evidence(&store, "shadow-1", since, now, Side::Candidate).await;
    assert!(matches!(run.status, RunStatus::Failed { ref reason } if reason.contains("silent")), "{:?}", run.status);

    // An internal metrics message proves the feed is alive; the quiet namespace is then clean.
    let heartbeat = format!(
        r#"{{"rule":"Falco internal: metrics snapshot","priority":"Informational","source":"internal","time":"{now}","output_fields":{{}}}}"#
    );
    let alerts = aegis_security::falco::parse_body(heartbeat.as_bytes(), now).unwrap();
    store.insert(alerts, now).await.unwrap();
    let run = window_evidence(&store, "shadow-1", since, Timestamp::now(), Side::Candidate).await;
    assert_eq!(run.status, RunStatus::Ok);
    assert!(run.findings.is_empty());

    let q = AlertQuery { include_internal: true, ..Default::default() };
    assert_eq!(store.query(&q).await.unwrap().len(), 1);
}

/// falcosidekick's webhook output re-emits each alert as `{uuid, output, priority, rule, time,
/// output_fields, source, tags, hostname}`, priority in title case and an empty source as `syscalls`
/// (../shared/reference/SCANNER_FORMATS.md). falcosidekick itself cannot be installed here (the Go
/// module proxy refuses it), so its output shape is built from real Falco alerts by this function.
fn as_falcosidekick_webhook(alert: &serde_json::Value, n: usize) -> serde_json::Value {
    let mut out = serde_json::json!({
        "uuid": format!("6b3d5a0e-0000-4000-8000-{n:012}"),
        "output": alert["output"],
        "priority": alert["priority"],
        "rule": alert["rule"],
        "time": alert["time"],
        "output_fields": alert["output_fields"],
        "source": alert.get("source").filter(|s| !s.is_null() && s.as_str() != Some("")).cloned().unwrap_or("syscalls".into()),
        "tags": alert.get("tags").cloned().unwrap_or(serde_json::json!([])),
        "hostname": alert.get("hostname").cloned().unwrap_or(serde_json::Value::Null),
    });
    if let Some(p) = out["priority"].as_str() {
        let mut c = p.chars();
        let title: String = c.next().map(|f| f.to_uppercase().chain(c.flat_map(char::to_lowercase)).collect()).unwrap_or_default();
        out["priority"] = title.into();
    }
    out
}

#[tokio::test]
async fn alerts_forwarded_in_falcosidekicks_webhook_shape_reach_a_gate_verdict_for_their_namespace() {
    use aegis_security::{Evidence, GatePolicy, Policy, evaluate};

    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start(dir.path(), ReceiverConfig { token: Some("sidekick".into()), max_body: 1 << 20, ..Default::default() }).await;
    let client = client();
    let text = std::fs::read_to_string(testkit::testdata().join("falco/falco-website-doc-examples.jsonl")).unwrap();
    let alerts: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    for (n, a) in alerts.iter().enumerate() {
        let resp = client.post(server.url("/")).bearer_auth("sidekick").json(&as_falcosidekick_webhook(a, n)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    }
    server.stop().await;

    let store = FalcoStore::open(StoreConfig::new(dir.path())).unwrap();
    assert_eq!(store.count().await.unwrap(), alerts.len() as u64, "one stored alert per forwarded alert (distinct uuids)");
    // The 2023-05-25 incident: two Critical "Terminal shell in container" alerts in namespace default.
    let since: Timestamp = "2023-05-25T00:00:00Z".parse().unwrap();
    let until: Timestamp = "2023-05-26T00:00:00Z".parse().unwrap();
    let policy = GatePolicy::compile(Policy::from_yaml("trivy: {mode: off}\nzap: {mode: off}\nmanifest: {mode: off}\n").unwrap(), |_| {
        Err("none".into())
    })
    .unwrap();

    let run = window_evidence(&store, "default", since, until, Side::Candidate).await;
    assert_eq!(run.status, RunStatus::Ok);
    let report = evaluate(&policy, None, &Evidence::new(vec![run]), Timestamp::now());
    assert_eq!(report.verdict, aegis_model::Verdict::Blocked);
    let reason = report.reasons.iter().find(|r| r.rule == "falco.min_priority").expect("blocked by the Critical alerts");
    assert!(reason.message.contains("Terminal shell in container") && reason.message.contains("Critical"), "{}", reason.message);

    // Another namespace in the same window: the feed was alive and nothing was attributed to it.
    let quiet = window_evidence(&store, "payments", since, until, Side::Candidate).await;
    let report = evaluate(&policy, None, &Evidence::new(vec![quiet]), Timestamp::now());
    assert_eq!(report.verdict, aegis_model::Verdict::Passed, "{:?}", report.reasons);

    // A window in which Falco sent nothing at all: missing evidence, not a clean namespace.
    let silent_since: Timestamp = "2022-01-01T00:00:00Z".parse().unwrap();
    let silent_until: Timestamp = "2022-01-02T00:00:00Z".parse().unwrap();
    let silent = window_evidence(&store, "payments", silent_since, silent_until, Side::Candidate).await;
    assert_eq!(evaluate(&policy, None, &Evidence::new(vec![silent]), Timestamp::now()).verdict, aegis_model::Verdict::Error);
}

/// A body the receiver refuses is an alert lost to the gate: Falco's http_output does not resend it.
/// The refusal is stored, and a window it falls in cannot clear the namespaces the body may concern.
#[tokio::test]
async fn a_refused_body_leaves_the_windows_it_could_concern_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), ReceiverConfig { max_body: 4096, ..Default::default() }).await;
    let client = client();
    let since = Timestamp::now();
    let heartbeat = format!(
        r#"{{"rule":"Falco internal: metrics snapshot","priority":"Informational","source":"internal","time":"{since}","output_fields":{{}}}}"#
    );
    assert_eq!(post(&client, &server.url("/"), heartbeat).await.0, 200);
    // An alert about the shadow that cannot be read (a priority Falco never writes).
    let bad = r#"{"rule":"Terminal shell in container","priority":"Severe","time":"2026-11-26T10:00:00Z","output":"x","output_fields":{"k8s.ns.name":"aegis-shadow-1"}}"#;
    let (status, body) = post(&client, &server.url("/"), bad.to_owned()).await;
    assert_eq!(status, 400, "{body}");
    server.stop().await;

    let store = FalcoStore::open(StoreConfig::new(dir.path())).unwrap();
    let until = Timestamp::now();
    let run = window_evidence(&store, "aegis-shadow-1", since, until, Side::Candidate).await;
    match &run.status {
        RunStatus::Incomplete { reason } => assert!(reason.contains("priority"), "{reason}"),
        other => panic!("the shadow's window must be incomplete: {other:?}"),
    }
    let run = window_evidence(&store, "billing", since, until, Side::Candidate).await;
    assert_eq!(run.status, RunStatus::Ok, "a refusal naming another namespace does not hold this one up");

    // A body too large to read names no namespace: it holds up every window it falls in.
    let server = Server::start(dir.path(), ReceiverConfig { max_body: 4096, ..Default::default() }).await;
    let resp = client.post(server.url("/")).body("x".repeat(5000)).send().await.unwrap();
    assert_eq!(resp.status(), 413);
    server.stop().await;
    let store = FalcoStore::open(StoreConfig::new(dir.path())).unwrap();
    let until = Timestamp::now();
    let run = window_evidence(&store, "billing", since, until, Side::Candidate).await;
    assert!(matches!(run.status, RunStatus::Incomplete { .. }), "{:?}", run.status);
}
