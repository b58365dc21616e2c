//! Enrichment against a loopback STAND-IN speaking the OpenAI chat-completions format
//! (`POST /v1/chat/completions` → `{"choices":[{"message":{"content":…}}],"usage":{"total_tokens":…}}`),
//! as Ollama, vLLM, OpenAI and Groq answer. A stand-in because no model can run on these machines.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aegis_analysis::{Snapshot, analyze, propose_model_fix};
use aegis_llm::{ChatClient, Enrichment, LlmConfig, enrich};
use aegis_model::Incident;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Clone)]
struct Reply {
    status: u16,
    content: String,
    total_tokens: u64,
    delay: Duration,
}

#[derive(Default)]
struct Seen {
    bodies: Vec<Value>,
    auth: Vec<String>,
}

type Shared = (Reply, Arc<Mutex<Seen>>);

async fn completions(State((reply, seen)): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    {
        let mut s = seen.lock().unwrap();
        s.bodies.push(body);
        s.auth.push(headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned());
    }
    tokio::time::sleep(reply.delay).await;
    if reply.status != 200 {
        return (
            StatusCode::from_u16(reply.status).unwrap(),
            Json(json!({"error": {"message": "model overloaded", "type": "server_error"}})),
        )
            .into_response();
    }
    Json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1764140000, "model": "stand-in",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": reply.total_tokens / 2, "completion_tokens": reply.total_tokens / 2, "total_tokens": reply.total_tokens}
    }))
    .into_response()
}

async fn standin(reply: Reply) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(completions)).with_state((reply, seen.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

fn scenario() -> (Snapshot, Incident) {
    let text = std::fs::read_to_string(aegis_testkit::repo_root().join("examples/incidents/oom-small-limit.yaml")).unwrap();
    let snapshot = Snapshot::from_text(&text).unwrap();
    let mut incident = analyze(&snapshot).remove(0);
    // Evidence can quote what a pod printed; a secret in it must never be sent.
    incident.evidence.push("log: connecting with DB_PASSWORD=hunter2 to payments-eu.acme.internal".into());
    (snapshot, incident)
}

fn reply(content: Value) -> Reply {
    Reply { status: 200, content: content.to_string(), total_tokens: 900, delay: Duration::ZERO }
}

async fn run(r: Reply, timeout: Duration) -> (Incident, Incident, Enrichment, Arc<Mutex<Seen>>) {
    let (snapshot, incident) = scenario();
    let (addr, seen) = standin(r).await;
    let mut cfg = LlmConfig::new(&format!("http://{addr}/v1"), "llama3.1:8b");
    cfg.api_key = Some("sk-test".into());
    cfg.timeout = timeout;
    cfg.redact_names = vec!["payments-eu.acme.internal".into()];
    let client = ChatClient::new(cfg).unwrap();
    let (out, how) = enrich(&client, &incident, |r, a| propose_model_fix(&snapshot, r, a, "llama3.1:8b", &[])).await;
    (incident, out, how, seen)
}

#[tokio::test]
async fn a_valid_answer_rewrites_the_explanation_and_its_typed_fix_is_rendered_by_aegis() {
    let answer = json!({"root_cause": "The api container needs about 200 MiB and its limit is 128 MiB.", "fix": {"type": "set-resources", "container": "api", "limits": {"memory": "512Mi"}}});
    let (before, after, how, seen) = run(reply(answer), Duration::from_secs(5)).await;
    assert_eq!(how, Enrichment::Enriched { model: "llama3.1:8b".into(), fix_from_model: true });
    assert_eq!(after.root_cause, "The api container needs about 200 MiB and its limit is 128 MiB.");
    assert_ne!(after.fix, before.fix);
    let patch = after.fix.patch.as_ref().unwrap();
    assert_eq!(patch.body.pointer("/spec/template/spec/containers/0/resources/limits/memory"), Some(&json!("512Mi")));
    assert_eq!(
        after.fix.inverse.as_ref().unwrap().body.pointer("/spec/template/spec/containers/0/resources/limits/memory"),
        Some(&json!("128Mi"))
    );

    let s = seen.lock().unwrap();
    assert_eq!(s.auth, vec!["Bearer sk-test"]);
    let body = &s.bodies[0];
    assert_eq!(body["model"], "llama3.1:8b");
    assert_eq!(body["response_format"]["type"], "json_object");
    let sent = body["messages"].to_string();
    assert!(!sent.contains("hunter2") && !sent.contains("payments-eu.acme.internal"), "redacted before sending: {sent}");
    assert!(sent.contains("OOMKilled"));
}

#[tokio::test]
async fn a_null_fix_keeps_the_rules_fix() {
    let (before, after, how, _) = run(reply(json!({"root_cause": "Memory limit too small.", "fix": null})), Duration::from_secs(5)).await;
    assert_eq!(how, Enrichment::Enriched { model: "llama3.1:8b".into(), fix_from_model: false });
    assert_eq!(after.fix, before.fix);
}

async fn falls_back(r: Reply, timeout: Duration, why: &str) {
    let (before, after, how, _) = run(r, timeout).await;
    assert_eq!(after, before, "the rules' incident stands");
    match how {
        Enrichment::FellBack { reason } => assert!(reason.contains(why), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn every_bad_answer_falls_back_to_the_rules_with_the_reason() {
    let bad_container = json!({"root_cause": "x", "fix": {"type": "set-image", "container": "sidecar", "image": "evil:latest"}});
    falls_back(reply(bad_container), Duration::from_secs(5), "no container \"sidecar\"").await;
    let bad_revision = json!({"root_cause": "x", "fix": {"type": "rollback", "to_revision": 7}});
    falls_back(reply(bad_revision), Duration::from_secs(5), "no revision 7").await;
    let shell = json!({"root_cause": "x", "fix": {"type": "shell", "command": "kubectl delete deploy api"}});
    falls_back(reply(shell), Duration::from_secs(5), "not the required JSON").await;
    falls_back(Reply { content: "I think the pod is sad.".into(), ..reply(json!({})) }, Duration::from_secs(5), "not the required JSON")
        .await;
    falls_back(Reply { status: 503, ..reply(json!({})) }, Duration::from_secs(5), "HTTP 503").await;
    falls_back(Reply { total_tokens: 50_000, ..reply(json!({"root_cause": "x"})) }, Duration::from_secs(5), "over the budget").await;
    falls_back(Reply { delay: Duration::from_secs(3), ..reply(json!({"root_cause": "x"})) }, Duration::from_millis(500), "did not answer")
        .await;
}

#[tokio::test]
async fn an_unreachable_endpoint_falls_back() {
    let (_, incident) = scenario();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = ChatClient::new(LlmConfig::new(&format!("http://127.0.0.1:{port}/v1"), "m")).unwrap();
    let (out, how) = enrich(&client, &incident, |_, _| Err("unused".into())).await;
    assert_eq!(out, incident);
    assert!(matches!(how, Enrichment::FellBack { ref reason } if reason.contains("unreachable")), "{how:?}");
}

/// What a model proposes is a suggestion: it must stay within what the workload has been, always waits
/// for a human, is planned as itself, and says where it came from.
#[tokio::test]
async fn a_model_fix_is_vetted_planned_as_itself_and_always_needs_a_human() {
    let (_, incident) = scenario();
    let image = "evil.example/crypto-miner:latest";
    for (answer, why) in [
        (json!({"root_cause": "x", "fix": {"type": "set-image", "container": "api", "image": image}}), "repository"),
        (
            json!({"root_cause": "x", "fix": {"type": "set-env", "container": "api", "name": "LD_PRELOAD", "value": "/tmp/x.so"}}),
            "LD_PRELOAD",
        ),
        (json!({"root_cause": "x", "fix": {"type": "scale", "replicas": 0}}), "replicas"),
        (json!({"root_cause": "x", "fix": {"type": "scale", "replicas": 2147483647}}), "replicas"),
        (json!({"root_cause": "x", "fix": {"type": "env-from", "container": "api", "secret": "cluster-admin"}}), "Secret cluster-admin"),
        (
            json!({"root_cause": "x", "fix": {"type": "set-resources", "container": "api", "limits": {"$patch": "replace"}}}),
            "resource name",
        ),
    ] {
        falls_back(reply(answer), Duration::from_secs(5), why).await;
    }
    // An accepted model fix: approval required, plan derived from it, origin named.
    assert!(incident.fix.patch.is_some());
    let answer =
        json!({"root_cause": "needs more memory", "fix": {"type": "set-resources", "container": "api", "limits": {"memory": "512Mi"}}});
    let (_, after, how, _) = run(reply(answer), Duration::from_secs(5)).await;
    assert_eq!(how, Enrichment::Enriched { model: "llama3.1:8b".into(), fix_from_model: true });
    assert_eq!(after.fix.origin, aegis_model::FixOrigin::Model { model: "llama3.1:8b".into() });
    assert!(after.verification_plan.approval_required);
    assert!(after.fix.summary.contains("llama3.1:8b"), "{}", after.fix.summary);
}

#[tokio::test]
async fn an_answer_larger_than_the_limit_is_not_read() {
    let huge = json!({"root_cause": "x".repeat(2 * 1024 * 1024)});
    falls_back(reply(huge), Duration::from_secs(20), "limit").await;
}
