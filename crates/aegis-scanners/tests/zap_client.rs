//! The ZAP client against a loopback STAND-IN for the ZAP daemon API (`aegis_testkit::zap`): a real ZAP
//! baseline scan cannot run on these machines (docs/testing.md says exactly what Maven Central lacks).
//! The stand-in answers as ../shared/reference/SCANNER_FORMATS.md documents the daemon; its alerts are
//! the instances of a real ZAP 2.14 report from shared/testdata, turned into API alert objects.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aegis_model::{RunStatus, Side};
use aegis_scanners::zap::{ZapClient, ZapScanOptions};
use aegis_security::zap::ZapRules;
use aegis_testkit as testkit;
use aegis_testkit::zap::{Behaviour, Seen};
use serde_json::{Value, json};

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

async fn start(behaviour: Behaviour, alerts: Vec<Value>) -> (SocketAddr, Arc<Mutex<Seen>>) {
    testkit::zap::start(behaviour, Arc::new(move |_: &str| alerts.clone())).await
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

/// The runner reports what a scan is doing for a live display: the scan's start and end, and ZAP's
/// phases with their percentage as the daemon reports it.
#[tokio::test]
async fn a_scan_reports_its_phases_and_percentages_to_a_progress_display() {
    let (addr, _) = start(Behaviour { key: "k".into(), ..Default::default() }, api_alerts_from_report(1)).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let runner = aegis_scanners::Runner { zap: Some((client(addr, "k"), fast())), progress: Some(tx), ..Default::default() };
    let policy = aegis_security::GatePolicy::compile(
        aegis_security::Policy::from_yaml("trivy: {mode: off}\nfalco: {mode: off}\nmanifest: {mode: off}\n").unwrap(),
        |_| Err("none".into()),
    )
    .unwrap();
    let targets = aegis_scanners::Targets { url: Some("http://www.itsecgames.com".into()), ..Default::default() };
    let (_, cand) = runner.scan(&policy, None, &targets).await;
    assert!(cand.runs.iter().any(|r| r.status == RunStatus::Ok), "{:?}", cand.runs);
    drop(runner);
    let mut seen = Vec::new();
    while let Some(p) = rx.recv().await {
        seen.push(p);
    }
    use aegis_scanners::ScanProgress;
    assert!(matches!(seen.first(), Some(ScanProgress::Started { scanner: aegis_model::Source::Zap, .. })), "{seen:?}");
    assert!(seen.iter().any(|p| matches!(p, ScanProgress::Phase { phase: "spider", percent: Some(100), .. })), "{seen:?}");
    assert!(seen.iter().any(|p| matches!(p, ScanProgress::Phase { phase: "passive scan", .. })), "{seen:?}");
    assert!(matches!(seen.last(), Some(ScanProgress::Finished { outcome, .. }) if outcome == "ok"), "{seen:?}");
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
    let (addr, state) =
        start(Behaviour { key: "k".into(), passive_never_drains: true, ..Default::default() }, api_alerts_from_report(1)).await;
    let run = client(addr, "k").scan("http://target", &fast(), &ZapRules::default(), Side::Candidate).await;
    assert!(matches!(run.status, RunStatus::Failed { ref reason } if reason.contains("passive scan did not finish")), "{:?}", run.status);
    assert!(state.lock().unwrap().pages.is_empty(), "alerts were never read");
}

/// The real ZAP 2.17 daemon, started without `-config api.reportpermerrors=true`, answers a wrong API
/// key (or a client outside `api.addrs`) by closing the connection without a reply. That is not
/// "unreachable": the run fails naming the likely causes.
#[tokio::test]
async fn a_daemon_that_closes_the_connection_without_a_reply_is_named_with_its_likely_causes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let mut buf = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
            drop(stream);
        }
    });
    let run = client(addr, "wrong").scan("http://target", &fast(), &ZapRules::default(), Side::Candidate).await;
    let RunStatus::Failed { reason } = &run.status else { panic!("{:?}", run.status) };
    assert!(!reason.contains("unreachable"), "{reason}");
    assert!(reason.contains("API key") && reason.contains("api.addrs") && reason.contains("reportpermerrors"), "{reason}");
}
