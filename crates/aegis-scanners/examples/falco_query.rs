//! Query latency of the Falco alert store with many alerts stored.
//!
//!     cargo run --release -p aegis-scanners --example falco_query -- --alerts 1000000
//!
//! Fills a fresh store (in a temp dir) with N alerts spread over 24 h and 200 namespaces, then times
//! the gate's question — "every alert of namespace X in this 10-minute window, and was the feed
//! alive?" — and a namespace + minimum-priority listing. Prints one JSON line.

use std::time::Instant;

use aegis_model::{FalcoPriority, Side};
use aegis_scanners::falco::{AlertQuery, FalcoStore, StoreConfig, window_evidence};
use aegis_security::falco::FalcoAlert;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.iter().position(|a| a == "--alerts").and_then(|i| args.get(i + 1)).map(|s| s.parse().unwrap()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = StoreConfig::new(dir.path());
    cfg.fsync = false;
    let store = FalcoStore::open(cfg).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let day_start: jiff::Timestamp = "2026-11-25T00:00:00Z".parse().unwrap();
    let step_ns = 86_400_000_000_000i64 / n as i64;
    let rules = ["Terminal shell in container", "Write below etc", "Read sensitive file untrusted", "Launch Privileged Container"];
    let fill = Instant::now();
    let batch = 10_000;
    for chunk in 0..n.div_ceil(batch) {
        let alerts: Vec<FalcoAlert> = (chunk * batch..((chunk + 1) * batch).min(n))
            .map(|i| {
                let ns = format!("ns-{}", i % 200);
                let time = day_start.checked_add(jiff::SignedDuration::from_nanos(i as i64 * step_ns)).unwrap();
                let mut fields = std::collections::BTreeMap::new();
                fields.insert("k8s.ns.name".to_owned(), serde_json::Value::String(ns.clone()));
                fields.insert("k8s.pod.name".to_owned(), format!("api-{}-x", i % 7).into());
                fields.insert("container.name".to_owned(), "api".into());
                fields.insert("proc.cmdline".to_owned(), "sh -c id".into());
                FalcoAlert {
                    time,
                    rule: rules[i % rules.len()].to_owned(),
                    // Vary priority independently of the namespace (200 is a multiple of 8).
                    priority: FalcoPriority::from_rank(((i / 200) % 8) as u8).unwrap(),
                    source: Some("syscall".into()),
                    hostname: Some("node-1".into()),
                    output: format!("{time}: alert {i} in {ns}"),
                    tags: vec!["container".into()],
                    output_fields: fields,
                    uuid: Some(format!("{i:016x}")),
                    time_unparsed: None,
                }
            })
            .collect();
        rt.block_on(store.insert(alerts, jiff::Timestamp::now())).unwrap();
    }
    let fill_s = fill.elapsed().as_secs_f64();

    let mut window_ms = Vec::new();
    let mut list_ms = Vec::new();
    let mut found = 0usize;
    for q in 0..200 {
        let since = day_start.checked_add(jiff::SignedDuration::from_secs((q * 421) % 85_800)).unwrap();
        let until = since.checked_add(jiff::SignedDuration::from_secs(600)).unwrap();
        let ns = format!("ns-{}", q % 200);
        let t0 = Instant::now();
        let run = rt.block_on(window_evidence(&store, &ns, since, until, Side::Candidate));
        window_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        found += run.findings.len();
        let t0 = Instant::now();
        let listed = rt
            .block_on(store.query(&AlertQuery {
                namespace: Some(ns),
                min_priority: Some(FalcoPriority::Warning),
                limit: 100,
                ..Default::default()
            }))
            .unwrap();
        list_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert!(!listed.is_empty());
    }
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
    };
    let size_mb = std::fs::metadata(store.location()).map(|m| m.len() as f64 / 1e6).unwrap_or(0.0);
    println!(
        "{}",
        serde_json::json!({
            "alerts": n, "fill_seconds": fill_s, "fill_alerts_per_sec": n as f64 / fill_s, "db_mb": size_mb,
            "window_query_p50_ms": pct(&mut window_ms, 0.5), "window_query_p99_ms": pct(&mut window_ms, 0.99),
            "list_query_p50_ms": pct(&mut list_ms, 0.5), "list_query_p99_ms": pct(&mut list_ms, 0.99),
            "alerts_judged_total": found
        })
    );
}
