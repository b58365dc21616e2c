//! Load generator for a Falco receiver (AEGIS's or falcosidekick's): real alerts from a JSON-lines
//! file, one alert per POST, over keep-alive connections from N concurrent senders. Every alert is
//! made distinct (its `time` is shifted by its sequence number) so deduplication cannot flatter the
//! figures. Prints one JSON line: alerts/s, latency percentiles, errors.
//!
//!     cargo run --release -p aegis-scanners --example falco_load -- \
//!         --url http://127.0.0.1:2801/ --alerts ../shared/testdata/falco/josevnz-falco_json_lines.only-json.jsonl \
//!         --total 20000 --concurrency 16

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(&args, "--url", "http://127.0.0.1:2801/");
    let total: usize = arg(&args, "--total", "10000").parse().expect("--total");
    let concurrency: usize = arg(&args, "--concurrency", "8").parse().expect("--concurrency");
    let token = arg(&args, "--token", "");
    let file = arg(&args, "--alerts", "");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("--alerts {file}: {e}"));
    let templates: Vec<serde_json::Value> =
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).filter(|v: &serde_json::Value| v.get("rule").is_some()).collect();
    assert!(!templates.is_empty(), "no alerts in {file}");

    aegis_scanners::tls::install_crypto_provider();
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).timeout(Duration::from_secs(30)).build().unwrap();
    let base: jiff::Timestamp = "2026-11-26T00:00:00Z".parse().unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, token, next, errors, templates) =
            (client.clone(), url.clone(), token.clone(), next.clone(), errors.clone(), templates.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return latencies;
                }
                let mut alert = templates[i % templates.len()].clone();
                let t = base.checked_add(jiff::SignedDuration::from_nanos(i as i64)).unwrap();
                alert["time"] = serde_json::Value::String(t.to_string());
                let body = serde_json::to_vec(&alert).unwrap();
                let mut req = client.post(&url).header("content-type", "application/json").body(body);
                if !token.is_empty() {
                    req = req.bearer_auth(&token);
                }
                let t0 = Instant::now();
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                latencies.push(t0.elapsed());
            }
        }));
    }
    let mut all: Vec<Duration> = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "total": total, "concurrency": concurrency, "errors": errors.load(Ordering::Relaxed),
            "seconds": wall.as_secs_f64(), "alerts_per_sec": total as f64 / wall.as_secs_f64(),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0)
        })
    );
}
