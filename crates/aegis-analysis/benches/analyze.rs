//! Analysis of a snapshot of at least 5,000 pods: the crashloop scenario captured on the real node (3
//! pods, with their Deployment, ReplicaSets, Service, Endpoints, Events), copied into 1,667 namespaces.
//!
//!     cargo bench -p aegis-analysis --bench analyze

use aegis_analysis::{Snapshot, analyze};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;

fn big_snapshot_json() -> (String, usize) {
    let path = aegis_testkit::repo_root().join("examples/incidents/crashloop-missing-env.yaml");
    let base: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).expect("corpus")).expect("yaml");
    let items = base["items"].as_array().expect("items").clone();
    let pods_per_copy = items.iter().filter(|i| i["kind"] == "Pod").count();
    let copies = 5000_usize.div_ceil(pods_per_copy);
    let mut out = Vec::new();
    for n in 0..copies {
        for item in &items {
            if item["kind"] == "Node" && n > 0 {
                continue;
            }
            let mut i = item.clone();
            if let Some(ns) = i.pointer_mut("/metadata/namespace") {
                *ns = Value::String(format!("shop-{n}"));
            }
            if let Some(ns) = i.pointer_mut("/involvedObject/namespace") {
                *ns = Value::String(format!("shop-{n}"));
            }
            out.push(i);
        }
    }
    (serde_json::to_string(&serde_json::json!({"apiVersion": "v1", "kind": "List", "items": out})).expect("json"), copies)
}

fn bench(c: &mut Criterion) {
    let (json, namespaces) = big_snapshot_json();
    let snapshot = Snapshot::from_text(&json).expect("snapshot");
    assert!(snapshot.pods.len() >= 5000, "{} pods", snapshot.pods.len());
    assert_eq!(analyze(&snapshot).len(), namespaces, "one incident per namespace");
    let mut g = c.benchmark_group("analysis");
    g.sample_size(20);
    g.bench_function("analyze 5000 pods", |b| b.iter(|| std::hint::black_box(analyze(&snapshot).len())));
    g.bench_function("parse 5000-pod List (JSON)", |b| {
        b.iter(|| std::hint::black_box(Snapshot::from_text(&json).map(|s| s.pods.len()).unwrap_or(0)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
