//! The gate's laws and its fail-closed paths, on real reports.

use aegis_testkit as common;

use std::collections::BTreeSet;

use aegis_model::{RunStatus, ScannerRun, Side, Source, Verdict};
use aegis_security::evidence::{self, EvidenceKind, LoadOptions};
use aegis_security::policy::{Delta, Mode};
use aegis_security::{Evidence, GatePolicy, Policy, evaluate};
use jiff::Timestamp;

fn now() -> Timestamp {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

fn policy(yaml: &str) -> GatePolicy {
    GatePolicy::compile(Policy::from_yaml(yaml).unwrap(), |p| Err(format!("no file {p}"))).unwrap()
}

/// A policy that judges only Trivy.
fn trivy_only() -> GatePolicy {
    policy("zap: {mode: off}\nfalco: {mode: off}\nmanifest: {mode: off}\n")
}

fn run(sub_path: &str, side: Side, gp: &GatePolicy) -> ScannerRun {
    let path = common::testdata().join(sub_path);
    let bytes = std::fs::read(&path).unwrap();
    let kind = evidence::detect(&bytes).unwrap();
    evidence::load(kind, sub_path, &bytes, side, gp, &LoadOptions::default(), now())
}

fn fps(list: &[aegis_model::Finding]) -> BTreeSet<String> {
    list.iter().map(|f| f.fingerprint.to_string()).collect()
}

const PAIRS: [(&str, &str); 3] = [
    ("trivy/securecodebox-juice-shop-v10.2.0.json", "trivy/securecodebox-juice-shop-v12.10.2.json"),
    ("trivy/trivy-golden-alpine-39.json", "trivy/trivy-golden-ubuntu-1804.json"),
    ("trivy/securecodebox-local-k8s-scan-result.json", "trivy/securecodebox-trivy--k8s-scan-results.json"),
];

#[test]
fn gating_evidence_against_itself_finds_nothing_new_and_nothing_resolved() {
    let gp = trivy_only();
    for (a, _) in PAIRS {
        let ev = Evidence::new(vec![run(a, Side::Candidate, &gp)]);
        let report = evaluate(&gp, Some(&ev), &ev, now());
        assert!(report.findings.new.is_empty(), "{a}");
        assert!(report.findings.resolved.is_empty(), "{a}");
        assert!(!report.findings.persisting.is_empty(), "{a}");
        assert_eq!(report.verdict, Verdict::Passed, "{a}: {:?}", report.reasons);
    }
}

#[test]
fn what_is_new_from_a_to_b_is_what_is_resolved_from_b_to_a() {
    let gp = trivy_only();
    for (a, b) in PAIRS {
        let ea = Evidence::new(vec![run(a, Side::Baseline, &gp)]);
        let eb = Evidence::new(vec![run(b, Side::Candidate, &gp)]);
        let ab = evaluate(&gp, Some(&ea), &eb, now());
        let ba = evaluate(&gp, Some(&eb), &ea, now());
        assert_eq!(fps(&ab.findings.new), fps(&ba.findings.resolved), "{a} -> {b}");
        assert_eq!(fps(&ab.findings.resolved), fps(&ba.findings.new), "{a} -> {b}");
        assert_eq!(fps(&ab.findings.persisting), fps(&ba.findings.persisting), "{a} -> {b}");
        assert!(!ab.findings.new.is_empty() && !ab.findings.resolved.is_empty(), "{a} -> {b}: a real delta");
    }
}

#[test]
fn without_a_baseline_every_finding_is_new_and_high_severities_block() {
    let gp = trivy_only();
    let ev = Evidence::new(vec![run("trivy/securecodebox-juice-shop-v12.10.2.json", Side::Candidate, &gp)]);
    let report = evaluate(&gp, None, &ev, now());
    assert!(report.findings.persisting.is_empty() && report.findings.resolved.is_empty());
    assert_eq!(report.verdict, Verdict::Blocked);
    assert!(report.reasons.iter().any(|r| r.rule == "trivy.fail_on"), "{:?}", report.reasons);
    assert!(!report.has_baseline);
}

#[test]
fn new_mode_blocks_only_on_what_the_candidate_introduces_and_absolute_mode_on_everything() {
    let base = "trivy/securecodebox-juice-shop-v10.2.0.json";
    let cand = "trivy/securecodebox-juice-shop-v12.10.2.json";
    let gp = trivy_only();
    let eb = Evidence::new(vec![run(base, Side::Baseline, &gp)]);
    let ec = Evidence::new(vec![run(cand, Side::Candidate, &gp)]);
    let new_mode = evaluate(&gp, Some(&eb), &ec, now());
    let blocked: usize = new_mode.reasons.iter().filter(|r| r.rule == "trivy.fail_on").map(|r| r.findings.len()).sum();
    let new_high = new_mode.findings.new.iter().filter(|f| f.severity >= aegis_model::Severity::High).count();
    assert_eq!(blocked, new_high);

    let mut abs = trivy_only();
    abs.policy.trivy.delta = Delta::Absolute;
    let abs_mode = evaluate(&abs, Some(&eb), &ec, now());
    let blocked_abs: usize = abs_mode.reasons.iter().filter(|r| r.rule == "trivy.fail_on").map(|r| r.findings.len()).sum();
    let all_high =
        abs_mode.findings.new.iter().chain(&abs_mode.findings.persisting).filter(|f| f.severity >= aegis_model::Severity::High).count();
    assert_eq!(blocked_abs, all_high);
    assert!(blocked_abs > blocked);
}

#[test]
fn a_required_scanner_without_evidence_makes_the_verdict_error_not_passed() {
    let gp = policy("falco: {mode: off}\nmanifest: {mode: off}\n"); // trivy and zap required
    let ev = Evidence::new(vec![run("trivy/trivy-golden-dockerfile.json", Side::Candidate, &gp)]);
    let mut gp_pass = gp.clone();
    gp_pass.policy.trivy.fail_on.clear();
    gp_pass.policy.trivy.warn_on.clear();
    let report = evaluate(&gp_pass, None, &ev, now());
    assert_eq!(report.verdict, Verdict::Error);
    assert!(report.reasons.iter().any(|r| r.rule == "zap.evidence" && r.message.contains("no candidate evidence")));
    assert_eq!(report.verdict.exit_code(), 3);
    assert!(!report.verdict.allows_production());
}

#[test]
fn an_advisory_scanner_without_evidence_only_warns() {
    let mut gp = policy("zap: {mode: advisory}\nfalco: {mode: off}\nmanifest: {mode: off}\n");
    gp.policy.trivy.fail_on.clear();
    gp.policy.trivy.warn_on.clear();
    let ev = Evidence::new(vec![run("trivy/trivy-golden-dockerfile.json", Side::Candidate, &gp)]);
    let report = evaluate(&gp, None, &ev, now());
    assert_eq!(report.verdict, Verdict::PassedWithWarnings);
    assert_eq!(report.verdict.exit_code(), 2);
}

#[test]
fn every_way_a_scanner_run_can_fail_blocks_a_required_scanner() {
    let gp = trivy_only();
    let bad_outputs: [(&str, &[u8]); 4] = [
        ("empty", b""),
        ("truncated", br#"{"SchemaVersion": 2, "ArtifactName": "x", "Results": [{"Target": "#),
        ("garbage", b"panic: runtime error: invalid memory address"),
        ("foreign JSON", br#"{"SchemaVersion": 7}"#),
    ];
    for (what, bytes) in bad_outputs {
        let run = match evidence::detect(bytes) {
            Ok(kind) => evidence::load(kind, what, bytes, Side::Candidate, &gp, &LoadOptions::default(), now()),
            // Unrecognisable output: the caller records a failed run of the scanner it ran.
            Err(e) => ScannerRun::failed(Source::Trivy, Side::Candidate, what, now(), e.to_string()),
        };
        assert!(matches!(run.status, RunStatus::Failed { .. }), "{what}");
        let report = evaluate(&gp, None, &Evidence::new(vec![run]), now());
        assert_eq!(report.verdict, Verdict::Error, "{what}");
        assert!(report.reasons.iter().all(|r| r.rule == "trivy.evidence"), "{what}: {:?}", report.reasons);
    }
}

#[test]
fn a_blocking_finding_outranks_missing_evidence() {
    let gp = policy("falco: {mode: off}\nmanifest: {mode: off}\n");
    let ev = Evidence::new(vec![run("trivy/trivy-golden-alpine-39.json", Side::Candidate, &gp)]);
    let report = evaluate(&gp, None, &ev, now());
    assert_eq!(report.verdict, Verdict::Blocked);
    assert!(report.reasons.iter().any(|r| r.rule == "zap.evidence"));
}

#[test]
fn a_failed_baseline_counts_every_candidate_finding_as_new_and_says_so() {
    let gp = trivy_only();
    let cand = run("trivy/securecodebox-juice-shop-v12.10.2.json", Side::Candidate, &gp);
    let base = ScannerRun::failed(Source::Trivy, Side::Baseline, "demo:v1", now(), "timed out after 300s");
    let report = evaluate(&gp, Some(&Evidence::new(vec![base])), &Evidence::new(vec![cand.clone()]), now());
    let alone = evaluate(&gp, None, &Evidence::new(vec![cand]), now());
    assert_eq!(report.findings.new.len(), alone.findings.new.len());
    assert!(report.warnings.iter().any(|w| w.rule == "trivy.baseline"));
}

#[test]
fn exceptions_hold_until_they_expire_and_the_report_then_says_so() {
    let cand = |gp: &GatePolicy| Evidence::new(vec![run("trivy/trivy-golden-alpine-39.json", Side::Candidate, gp)]);
    let base = trivy_only();
    let high: Vec<String> = evaluate(&base, None, &cand(&base), now())
        .findings
        .new
        .iter()
        .filter(|f| f.severity >= aegis_model::Severity::High)
        .map(|f| f.id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(!high.is_empty());
    let entries =
        |expires: &str| high.iter().map(|id| format!("    - {{id: {id}, expires: {expires}, reason: accepted}}\n")).collect::<String>();

    let live =
        policy(&format!("zap: {{mode: off}}\nfalco: {{mode: off}}\nmanifest: {{mode: off}}\ntrivy:\n  ignore:\n{}", entries("2027-01-01")));
    let report = evaluate(&live, None, &cand(&live), now());
    assert_ne!(report.verdict, Verdict::Blocked, "{:?}", report.reasons);
    assert!(report.summary.suppressed > 0);

    let expired =
        policy(&format!("zap: {{mode: off}}\nfalco: {{mode: off}}\nmanifest: {{mode: off}}\ntrivy:\n  ignore:\n{}", entries("2026-01-01")));
    let report = evaluate(&expired, None, &cand(&expired), now());
    assert_eq!(report.verdict, Verdict::Blocked);
    assert!(report.warnings.iter().any(|w| w.rule == "trivy.exception_expired"));
}

#[test]
fn zap_rules_file_levels_override_risk_thresholds() {
    let text = std::fs::read_to_string(common::testdata().join("zap/zaproxy-integration-baseline2.conf")).unwrap();
    let mut p =
        Policy::from_yaml("trivy: {mode: off}\nfalco: {mode: off}\nmanifest: {mode: off}\nzap: {rules_file: rules.conf}\n").unwrap();
    p.zap.delta = Delta::New;
    let gp = GatePolicy::compile(p, |_| Ok(text.clone())).unwrap();
    let ev = Evidence::new(vec![run("zap/bcgov-pipeline-templates-report_json-zap-2.14.0.json", Side::Candidate, &gp)]);
    let report = evaluate(&gp, None, &ev, now());
    // The report has plugin 10021 (X-Content-Type-Options missing), which the rules file makes FAIL,
    // though its risk is only Low.
    let fail = report.reasons.iter().find(|r| r.rule == "zap.rules_file").expect("10021 fails by the rules file");
    assert_eq!(report.verdict, Verdict::Blocked);
    assert!(report.findings.new.iter().any(|f| f.id == "10021" && fail.findings.contains(&f.fingerprint)));
    assert!(report.findings.new.iter().all(|f| f.id != "10049"), "IGNOREd rule is gone");
}

#[test]
fn falco_alerts_block_a_namespace_and_unattributed_ones_cannot_clear_it() {
    let gp = policy("trivy: {mode: off}\nzap: {mode: off}\nmanifest: {mode: off}\n");
    let path = common::testdata().join("falco/falco-website-doc-examples.jsonl");
    let bytes = std::fs::read(&path).unwrap();
    let load = |ns: &str, gp: &GatePolicy| {
        let opts = LoadOptions { namespace: Some(ns.into()) };
        evidence::load(EvidenceKind::Falco, "doc", &bytes, Side::Candidate, gp, &opts, now())
    };
    // A namespace no alert names: only unattributed alerts remain, and they still block.
    let report = evaluate(&gp, None, &Evidence::new(vec![load("quiet-ns", &gp)]), now());
    assert_eq!(report.verdict, Verdict::Blocked);
    assert!(report.reasons.iter().all(|r| r.rule == "falco.attribution"), "{:?}", report.reasons);

    let mut trusting = gp.clone();
    trusting.policy.falco.require_attribution = false;
    let report = evaluate(&trusting, None, &Evidence::new(vec![load("quiet-ns", &trusting)]), now());
    assert_eq!(report.verdict, Verdict::Passed, "{:?}", report.reasons);

    // A silent feed is missing evidence.
    let silent = evidence::load(EvidenceKind::Falco, "empty", b"Starting Falco\n", Side::Candidate, &gp, &LoadOptions::default(), now());
    assert_eq!(evaluate(&gp, None, &Evidence::new(vec![silent]), now()).verdict, Verdict::Error);
}

#[test]
fn a_scanner_switched_off_is_listed_but_not_judged() {
    let mut gp = trivy_only();
    gp.policy.trivy.mode = Mode::Off;
    gp.policy.manifest.mode = Mode::Required;
    let manifest = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"x:1","securityContext":{"privileged":true}}]}}"#;
    let m = evidence::load(EvidenceKind::Manifest, "pod.json", manifest, Side::Candidate, &gp, &LoadOptions::default(), now());
    let t = run("trivy/trivy-golden-alpine-39.json", Side::Candidate, &gp);
    let report = evaluate(&gp, None, &Evidence::new(vec![m, t]), now());
    assert!(report.findings.new.iter().all(|f| f.source == Source::Manifest));
    assert!(report.scanners.iter().any(|s| s.scanner == Source::Trivy && s.notes.iter().any(|n| n.contains("off"))));
    assert_eq!(report.verdict, Verdict::Blocked, "privileged container blocks");
}

/// ZAP and Falco off (they cannot run here, say) and never run: the report still names them, as
/// skipped by the policy, so nobody reads their absence as a clean result.
#[test]
fn a_scanner_the_policy_turned_off_is_shown_as_off_not_left_out() {
    let gp = trivy_only();
    let t = run("trivy/trivy-golden-alpine-39.json", Side::Candidate, &gp);
    let report = evaluate(&gp, None, &Evidence::new(vec![t]), now());
    for source in [Source::Zap, Source::Falco] {
        let shown =
            report.scanners.iter().find(|s| s.scanner == source).unwrap_or_else(|| panic!("{source:?} missing: {:?}", report.scanners));
        assert_eq!(shown.status.label(), "skipped");
        assert!(shown.status.reason().unwrap().contains("off in the policy"), "{:?}", shown.status);
    }
}

#[test]
fn the_report_digests_identify_policy_and_evidence_exactly() {
    let gp = trivy_only();
    let a = Evidence::new(vec![run("trivy/trivy-golden-alpine-39.json", Side::Candidate, &gp)]);
    let b = Evidence::new(vec![run("trivy/trivy-golden-centos-7.json", Side::Candidate, &gp)]);
    let ra = evaluate(&gp, None, &a, now());
    assert_eq!(ra.evidence_digest, evaluate(&gp, None, &a, now()).evidence_digest);
    assert_ne!(ra.evidence_digest, evaluate(&gp, None, &b, now()).evidence_digest);
    let mut strict = trivy_only();
    strict.policy.trivy.fail_on.insert(aegis_model::Severity::Low);
    assert_ne!(ra.policy_digest, evaluate(&strict, None, &a, now()).policy_digest);
}
