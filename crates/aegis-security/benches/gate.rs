//! Parse + normalise + gate throughput on the largest real Trivy reports in shared/testdata.
//!
//!     cargo bench -p aegis-security --bench gate
//!
//! Figures go to docs/benchmarks.md. Peak RSS of the same work through the CLI is measured by
//! bench/gate-rss.sh.

use aegis_model::Side;
use aegis_security::evidence::{self, LoadOptions};
use aegis_security::{Evidence, GatePolicy, Policy, evaluate};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const REPORTS: [&str; 4] = [
    "securecodebox-mediawiki-1.27.3.legacy.json",
    "securecodebox-local-k8s-scan-result.json",
    "securecodebox-trivy--k8s-scan-results.json",
    "backline-juice-shop-repo-trivy-0.69.3.json",
];

fn bench(c: &mut Criterion) {
    let policy =
        GatePolicy::compile(Policy::from_yaml("zap: {mode: off}\nfalco: {mode: off}\nmanifest: {mode: off}\n").expect("policy"), |_| {
            Err("no files".into())
        })
        .expect("compile");
    let now = jiff::Timestamp::now();
    let mut group = c.benchmark_group("trivy_parse_gate");
    for name in REPORTS {
        let bytes = std::fs::read(aegis_testkit::testdata().join("trivy").join(name)).expect("report");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let kind = evidence::detect(&bytes).expect("trivy");
                let run = evidence::load(kind, name, &bytes, Side::Candidate, &policy, &LoadOptions::default(), now);
                let report = evaluate(&policy, None, &Evidence::new(vec![run]), now);
                std::hint::black_box(report.summary.new)
            })
        });
        // Baseline and candidate both this report: the delta path with every finding persisting.
        group.bench_function(format!("{name} (delta vs itself)"), |b| {
            b.iter(|| {
                let kind = evidence::detect(&bytes).expect("trivy");
                let base = evidence::load(kind, name, &bytes, Side::Baseline, &policy, &LoadOptions::default(), now);
                let cand = evidence::load(kind, name, &bytes, Side::Candidate, &policy, &LoadOptions::default(), now);
                let report = evaluate(&policy, Some(&Evidence::new(vec![base])), &Evidence::new(vec![cand]), now);
                std::hint::black_box(report.summary.persisting)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
