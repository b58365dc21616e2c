//! The ZAP client against a loopback STAND-IN for the ZAP daemon API.
//!
//! Stand-in, because a real ZAP daemon is not yet available on these machines (the scanner-harness
//! issue tries Maven Central for it). The stand-in answers exactly as ../shared/reference/
//! SCANNER_FORMATS.md documents the daemon: `/JSON/<component>/<view|action>/<name>/`, every scalar a
//! string, `X-ZAP-API-Key` checked with HTTP 400 `{"code":"bad_api_key"}`, spider and active-scan
//! status as "0".."100", `recordsToScan` as a string, alerts paged by `start`/`count`. Its alerts are
//! the instances of a real ZAP 2.14 report from shared/testdata, turned into API alert objects.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aegis_model::{RunStatus, Side};
use aegis_scanners::zap::{ZapClient, ZapScanOptions};
use aegis_security::zap::ZapRules;
use aegis_testkit as testkit;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Behaviour {
    key: String,
    spider_stuck: bool,
    passive_never_drains: bool,
}

#[derive(Default)]
struct StandIn {
    behaviour: Behaviour,
    alerts: Vec<Value>,
    spider_polls: u32,
    passive_polls: u32,
    pages: Vec<(usize, usize)>,
    calls: Vec<String>,
}

type Shared = Arc<Mutex<StandIn>>;

/// API alert objects from a real report: one per instance, every scalar a string.
fn api_alerts_from_report(times: usize) -> Vec<Value> {
    let path = testkit::testdata().join("zap/bcgov-pipeline-templates-report_json-zap-2.14.0.json");
    let report: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let risks = ["Informational", "Low", "Medium", "High"];
    let confidences = ["False Positive", "Low", "Medium", "High", "Confirmed"];
    let mut out = Vec::new();
    for copy in 0..times {
        for a in report["site"][0]["alerts"].as_array().unwrap() {
            for (i, inst) in a["instances"].as_array().unwrap().iter().enumerate() {
                let risk: usize = a["riskcode"].as_str().unwrap().parse().unwrap();
                let conf: usize = a["confidence"].as_str().unwrap().parse().unwrap();
                out.push(json!({
                    "id": format!("{}", out.len()),
                    "pluginId": a["pluginid"],
                    "alertRef": a["alertRef"],
                    "alert": a["alert"],
                    "name": a["name"],
                    "risk": risks[risk],
                    "confidence": confidences[conf],
                    "url": format!("{}?copy={copy}&i={i}", inst["uri"].as_str().unwrap()),
                    "method": inst["method"],
                    "param": inst["param"],
                    "attack": inst["attack"],
                    "evidence": inst["evidence"],
                    "other": inst["otherinfo"],
                    "reference": a["reference"],
                    "solution": a["solution"],
                    "cweid": a["cweid"],
                    "wascid": a["wascid"],
                    "sourceid": a["sourceid"],
                    "messageId": "1",
                    "tags": {}
                }));
            }
        }
    }
    out
}

async fn api(State(s): State<Shared>, Path((_format, component, kind, name)): Path<(String, String, String, String)>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut st = s.lock().unwrap();
    st.calls.push(format!("{component}/{kind}/{name}"));
    let key_ok = headers.get("X-ZAP-API-Key").and_then(|v| v.to_str().ok()) == Some(st.behaviour.key.as_str());
    if !key_ok {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"code": "bad_api_key", "message": "Invalid or missing API key"}))).into_response();
    }
    let body = match (component.as_str(), kind.as_str(), name.as_str()) {
        ("core", "view", "version") => json!({"version": "2.16.1"}),
        ("core", "action", "accessUrl") => json!({"Result": "OK"}),
        ("spider", "action", "scan") => json!({"scan": "0"}),
        ("spider", "view", "status") => {
            st.spider_polls += 1;
            let pct = if st.behaviour.spider_stuck { 42 } else { (st.spider_polls * 50).min(100) };
            json!({"status": pct.to_string()})
        }
        ("pscan", "view", "recordsToScan") => {
            st.passive_polls += 1;
            let left = if st.behaviour.passive_never_drains { 7 } else { 3u32.saturating_sub(st.passive_polls) };
            json!({"recordsToScan": left.to_string()})
        }
        ("alert", "view", "alerts") => {
            let start: usize = q.get("start").and_then(|v| v.parse().ok()).unwrap_or(0);
            let count: usize = q.get("count").and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
            st.pages.push((start, count));
            let page: Vec<Value> = st.alerts.iter().skip(start).take(count).cloned().collect();
            json!({"alerts": page})
        }
        _ => return (StatusCode::BAD_REQUEST, axum::Json(json!({"code": "no_implementor", "message": "No implementor"}))).into_response(),
    };
    axum::Json(body).into_response()
}

async fn start(behaviour: Behaviour, alerts: Vec<Value>) -> (SocketAddr, Shared) {
    let state: Shared = Arc::new(Mutex::new(StandIn { behaviour, alerts, ..Default::default() }));
    let app = axum::Router::new().route("/{format}/{component}/{kind}/{name}/", get(api)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, state)
}

fn fast() -> ZapScanOptions {
    ZapScanOptions {
        poll_interval: Duration::from_millis(20),
        spider_timeout: Duration::from_millis(600),
        passive_timeout: Duration::from_millis(600),
        ..Default::default()
    }
}

fn client(addr: SocketAddr, key: &str) -> ZapClient {
    ZapClient::new(&format!("http://{addr}"), Some(key.into()), Duration::from_secs(5)).unwrap()
}

#[tokio::test]
async fn a_baseline_scan_spiders_waits_for_the_passive_queue_and_reads_every_page_of_alerts() {
    let alerts = api_alerts_from_report(20); // > 1,000 instances: several pages
    let n = alerts.len();
    let (addr, state) = start(Behaviour { key: "k".into(), ..Default::default() }, alerts.clone()).await;
    let mut opts = fast();
    opts.page_size = 500;
    let run = client(addr, "k").scan("http://www.itsecgames.com", &opts, &ZapRules::default(), Side::Candidate).await;
    assert_eq!(run.status, RunStatus::Ok, "{:?}", run.status);
    assert_eq!(run.tool_version.as_deref(), Some("2.16.1"));

    let st = state.lock().unwrap();
    let order: Vec<&str> = st.calls.iter().map(String::as_str).collect();
    let first = |c: &str| order.iter().position(|x| *x == c).unwrap();
    assert!(first("core/view/version") < first("spider/action/scan"));
    assert!(first("spider/view/status") < first("pscan/view/recordsToScan"));
    assert!(order.iter().rposition(|x| *x == "pscan/view/recordsToScan").unwrap() < first("alert/view/alerts"));
    assert_eq!(st.pages.iter().map(|p| p.0).collect::<Vec<_>>(), (0..=n / 500).map(|i| i * 500).collect::<Vec<_>>());

    // One finding per rule, as zap-baseline counts; false positives are not findings.
    let rules: std::collections::BTreeSet<String> = alerts
        .iter()
        .filter(|a| a["confidence"] != "False Positive")
        .map(|a| a["alertRef"].as_str().unwrap_or(a["pluginId"].as_str().unwrap()).to_owned())
        .collect();
    assert_eq!(run.findings.len(), rules.len());
}

#[tokio::test]
async fn a_rejected_api_key_fails_the_run() {
    let (addr, _) = start(Behaviour { key: "right".into(), ..Default::default() }, vec![]).await;
    let run = client(addr, "wrong").scan("http://target", &fast(), &ZapRules::default(), Side::Candidate).await;
    assert!(matches!(run.status, RunStatus::Failed { ref reason } if reason.contains("API key")), "{:?}", run.status);
}

#[tokio::test]
async fn an_unreachable_daemon_fails_the_run() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let run = client(addr, "k").scan("http://target", &fast(), &ZapRules::default(), Side::Candidate).await;
    assert!(matches!(run.status, RunStatus::Failed { ref reason } if reason.contains("unreachable")), "{:?}", run.status);
}

#[tokio::test]
async fn a_spider_that_never_finishes_fails_the_run_at_its_deadline() {
    let (addr, _) = start(Behaviour { key: "k".into(), spider_stuck: true, ..Default::default() }, vec![]).await;
    let run = client(addr, "k").scan("http://target", &fast(), &ZapRules::default(), Side::Candidate).await;
    assert!(matches!(run.status, RunStatus::Failed { ref reason } if reason.contains("spider did not finish")), "{:?}", run.status);
}

#[tokio::test]
async fn a_passive_queue_that_never_drains_fails_the_run_instead_of_reading_partial_alerts() {
    let (addr, state) = start(Behaviour { key: "k".into(), passive_never_drains: true, ..Default::default() }, api_alerts_from_report(1)).await;
    let run = client(addr, "k").scan("http://target", &fast(), &ZapRules::default(), Side::Candidate).await;
    assert!(matches!(run.status, RunStatus::Failed { ref reason } if reason.contains("passive scan did not finish")), "{:?}", run.status);
    assert!(state.lock().unwrap().pages.is_empty(), "alerts were never read");
}
