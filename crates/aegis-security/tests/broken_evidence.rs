//! The gate never passes on evidence it could not read: an alert line, a scanned resource or a workload
//! object that cannot be read is evidence that cannot be judged — `error` (or `blocked`), named in the
//! reasons — never "fewer findings".

use aegis_model::{RunStatus, Side, Verdict};
use aegis_security::evidence::{self, LoadOptions};
use aegis_security::{Evidence, GatePolicy, Policy, evaluate};
use jiff::Timestamp;

fn now() -> Timestamp {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

fn policy(yaml: &str) -> GatePolicy {
    GatePolicy::compile(Policy::from_yaml(yaml).unwrap(), |p| Err(format!("no file {p}"))).unwrap()
}

fn falco_only() -> GatePolicy {
    policy("trivy: {mode: off}\nzap: {mode: off}\nmanifest: {mode: off}\n")
}

fn trivy_only() -> GatePolicy {
    policy("zap: {mode: off}\nfalco: {mode: off}\nmanifest: {mode: off}\n")
}

fn manifest_only() -> GatePolicy {
    policy("trivy: {mode: off}\nzap: {mode: off}\nfalco: {mode: off}\n")
}

/// Load one evidence file's bytes the way `aegis gate` does (by content), for `namespace`.
fn gate(gp: &GatePolicy, bytes: &[u8], namespace: Option<&str>) -> aegis_model::SecurityReport {
    let kind = evidence::detect(bytes).unwrap_or_else(|e| panic!("not recognised: {e}"));
    let opts = LoadOptions { namespace: namespace.map(str::to_owned) };
    let run = evidence::load(kind, "evidence", bytes, Side::Candidate, gp, &opts, now());
    evaluate(gp, None, &Evidence::new(vec![run]), now())
}

const HEARTBEAT: &str = r#"{"output":"Falco metrics snapshot","priority":"Informational","rule":"Falco internal: metrics snapshot","source":"internal","time":"2026-11-26T11:59:00Z","output_fields":{"falco.version":"0.39.2"}}"#;
const SHADOW: &str = "aegis-shadow-1a2b3c4d";

fn alert(time: &str, priority: &str, fields: &str) -> String {
    format!(
        r#"{{"output":"shell in container","priority":{priority},"rule":"Terminal shell in container",{time}"output_fields":{fields}}}"#
    )
}

#[test]
fn an_unreadable_falco_alert_in_the_judged_namespace_makes_the_verdict_an_error_naming_the_line() {
    let fields = format!(r#"{{"k8s.ns.name":"{SHADOW}","k8s.pod.name":"api-1","proc.name":"bash"}}"#);
    let good_time = r#""time":"2026-11-26T11:59:30Z","#;
    let cases: Vec<(&str, String)> = vec![
        ("truncated", alert(good_time, r#""Critical""#, &fields)[..60].to_owned()),
        ("no time", alert("", r#""Critical""#, &fields)),
        ("an empty time", alert(r#""time":"","#, r#""Critical""#, &fields)),
        ("an unknown priority", alert(good_time, r#""Severe""#, &fields)),
        ("a numeric priority", alert(good_time, "2", &fields)),
        ("output_fields as a string", alert(good_time, r#""Critical""#, &format!("\"k8s.ns.name={SHADOW}\""))),
    ];
    for (what, line) in cases {
        let file = format!("{HEARTBEAT}\n{line}\n");
        let report = gate(&falco_only(), file.as_bytes(), Some(SHADOW));
        assert_eq!(report.verdict, Verdict::Error, "{what}: {:?}", report.reasons);
        assert_ne!(report.verdict.exit_code(), 0, "{what}");
        let reason = report.reasons.iter().find(|r| r.rule == "falco.evidence").unwrap_or_else(|| panic!("{what}: {:?}", report.reasons));
        assert!(reason.message.contains("line 2"), "{what}: the reason names the line: {}", reason.message);
        assert_eq!(report.scanners[0].status.label(), "incomplete", "{what}");
    }
}

#[test]
fn a_readable_critical_alert_still_blocks_beside_an_unreadable_one() {
    let fields = format!(r#"{{"k8s.ns.name":"{SHADOW}","k8s.pod.name":"api-1","proc.name":"bash"}}"#);
    let readable = alert(r#""time":"2026-11-26T11:59:30Z","#, r#""Critical""#, &fields);
    let unreadable = alert("", r#""Critical""#, &fields);
    let report = gate(&falco_only(), format!("{HEARTBEAT}\n{readable}\n{unreadable}\n").as_bytes(), Some(SHADOW));
    assert_eq!(report.verdict, Verdict::Blocked, "{:?}", report.reasons);
    assert!(report.reasons.iter().any(|r| r.rule == "falco.min_priority"), "{:?}", report.reasons);
    assert!(report.reasons.iter().any(|r| r.rule == "falco.evidence" && r.message.contains("line 3")), "{:?}", report.reasons);
}

#[test]
fn an_unreadable_alert_attributed_to_another_namespace_does_not_hold_up_this_one() {
    let other = r#"{"k8s.ns.name":"billing","k8s.pod.name":"pay-1"}"#;
    let file = format!("{HEARTBEAT}\n{}\n", alert("", r#""Critical""#, other));
    let report = gate(&falco_only(), file.as_bytes(), Some(SHADOW));
    assert_eq!(report.verdict, Verdict::Passed, "{:?}", report.reasons);
    assert!(report.scanners[0].notes.iter().any(|n| n.contains("billing")), "{:?}", report.scanners[0].notes);
    // Judging every namespace, it is this one's problem again.
    let report = gate(&falco_only(), file.as_bytes(), None);
    assert_eq!(report.verdict, Verdict::Error, "{:?}", report.reasons);
}

#[test]
fn log_lines_of_a_capture_are_skipped_and_counted_not_judged() {
    let file = format!("Tue Nov 26 11:58:59 2026: Falco initialized with configuration file /etc/falco/falco.yaml\n{HEARTBEAT}\n");
    let report = gate(&falco_only(), file.as_bytes(), Some(SHADOW));
    assert_eq!(report.verdict, Verdict::Passed, "{:?}", report.reasons);
}

const K8S_OK: &str = r#"{"Namespace":"shop","Kind":"Deployment","Name":"api","Results":[{"Target":"Deployment/api","Class":"config","Type":"kubernetes","Misconfigurations":[{"ID":"KSV-0001","Title":"t","Severity":"LOW","Status":"FAIL"}]}]}"#;
const K8S_CRITICAL: &str = r#"{"Namespace":"shop","Kind":"Deployment","Name":"db","Results":[{"Target":"postgres:16","Class":"os-pkgs","Type":"debian","Vulnerabilities":[{"VulnerabilityID":"CVE-2099-9","PkgName":"libc","Severity":"CRITICAL"}]}]}"#;

fn k8s_error(name: &str) -> String {
    format!(
        r#"{{"Namespace":"shop","Kind":"Deployment","Name":"{name}","Error":"unable to pull image: unauthorized: authentication required"}}"#
    )
}

#[test]
fn a_trivy_k8s_report_whose_every_resource_failed_to_scan_is_an_error() {
    let report_json = format!(r#"{{"ClusterName":"prod","Resources":[{},{}]}}"#, k8s_error("api"), k8s_error("web"));
    let report = gate(&trivy_only(), report_json.as_bytes(), None);
    assert_eq!(report.verdict, Verdict::Error, "{:?}", report.reasons);
    let reason = report.reasons.iter().find(|r| r.rule == "trivy.evidence").expect("trivy.evidence");
    assert!(reason.message.contains("2 of 2") && reason.message.contains("unauthorized"), "{}", reason.message);
}

#[test]
fn a_trivy_k8s_report_with_some_unscanned_resources_judges_the_rest_and_cannot_pass() {
    let with_critical = format!(r#"{{"ClusterName":"prod","Resources":[{K8S_CRITICAL},{}]}}"#, k8s_error("web"));
    let report = gate(&trivy_only(), with_critical.as_bytes(), None);
    assert_eq!(report.verdict, Verdict::Blocked, "the readable CRITICAL still blocks: {:?}", report.reasons);
    let quiet = format!(r#"{{"ClusterName":"prod","Resources":[{K8S_OK},{}]}}"#, k8s_error("web"));
    let report = gate(&trivy_only(), quiet.as_bytes(), None);
    assert_eq!(report.verdict, Verdict::Error, "{:?}", report.reasons);
    assert!(report.reasons.iter().any(|r| r.message.contains("1 of 2") && r.message.contains("Deployment/web")), "{:?}", report.reasons);
}

#[test]
fn a_misconfiguration_with_a_status_trivy_never_writes_is_an_error_not_a_pass() {
    let json = br#"{"SchemaVersion":2,"ArtifactName":"deploy.yaml","ArtifactType":"filesystem","Results":[{"Target":"deploy.yaml","Class":"config","Type":"kubernetes","Misconfigurations":[{"ID":"KSV-0017","Title":"Privileged","Severity":"HIGH","Status":"UNKNOWN-STATE"}]}]}"#;
    let report = gate(&trivy_only(), json, None);
    assert_eq!(report.verdict, Verdict::Error, "{:?}", report.reasons);
}

#[test]
fn a_workload_whose_pod_spec_cannot_be_read_is_not_a_clean_manifest() {
    let cases = [
        (
            "containers as a string",
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api"},"spec":{"template":{"spec":{"containers":"api"}}}}"#,
        ),
        ("no pod spec", r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api"},"spec":{"replicas":1}}"#),
        (
            "a container that is not an object",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":["nginx"]}}"#,
        ),
    ];
    for (what, doc) in cases {
        let report = gate(&manifest_only(), doc.as_bytes(), None);
        assert_eq!(report.verdict, Verdict::Error, "{what}: {:?}", report.reasons);
        assert!(report.reasons.iter().any(|r| r.rule == "manifest.evidence"), "{what}: {:?}", report.reasons);
    }
}

#[test]
fn an_incomplete_baseline_vouches_only_for_what_it_read() {
    let gp = trivy_only();
    let load = |json: &str, side| {
        let bytes = json.as_bytes();
        evidence::load(evidence::detect(bytes).unwrap(), "x", bytes, side, &gp, &LoadOptions::default(), now())
    };
    let base = load(&format!(r#"{{"ClusterName":"prod","Resources":[{K8S_CRITICAL},{}]}}"#, k8s_error("web")), Side::Baseline);
    assert!(matches!(base.status, RunStatus::Incomplete { .. }), "{:?}", base.status);
    let web_critical = K8S_CRITICAL.replace(r#""Name":"db""#, r#""Name":"web""#);
    let cand = load(&format!(r#"{{"ClusterName":"prod","Resources":[{K8S_CRITICAL},{web_critical}]}}"#), Side::Candidate);
    let report = evaluate(&gp, Some(&Evidence::new(vec![base])), &Evidence::new(vec![cand]), now());
    assert_eq!(report.findings.persisting.len(), 1, "what the baseline read is known");
    assert_eq!(report.findings.new.len(), 1, "what it could not read counts as new");
    assert_eq!(report.verdict, Verdict::Blocked);
    assert!(report.warnings.iter().any(|w| w.rule == "trivy.baseline"), "{:?}", report.warnings);
}

/// `aegis falco query -o json` prints the stored alerts as a JSON array: the gate reads its own output.
#[test]
fn the_json_that_falco_query_prints_is_falco_evidence() {
    let alert = aegis_security::falco::parse_body(
        format!(r#"{{"output":"x","priority":"Critical","rule":"Terminal shell in container","time":"2026-11-26T11:59:30Z","output_fields":{{"k8s.ns.name":"{SHADOW}"}}}}"#).as_bytes(),
        now(),
    )
    .unwrap();
    let printed = serde_json::to_string_pretty(&alert).unwrap();
    assert_eq!(evidence::detect(printed.as_bytes()), Ok(evidence::EvidenceKind::Falco));
    let report = gate(&falco_only(), printed.as_bytes(), Some(SHADOW));
    assert_eq!(report.verdict, Verdict::Blocked, "{:?}", report.reasons);
    // An item that is not an alert is unreadable evidence, as in a capture.
    let broken = printed.replacen("\"Critical\"", "\"Severe\"", 1);
    let report = gate(&falco_only(), broken.as_bytes(), Some(SHADOW));
    assert_eq!(report.verdict, Verdict::Error, "{:?}", report.reasons);
    assert!(report.reasons.iter().any(|r| r.message.contains("item 1")), "{:?}", report.reasons);
}
