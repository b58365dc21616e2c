//! Every real report and alert in shared/testdata parses, and the parsers' counts equal an
//! independent walk of the raw JSON.

use aegis_testkit as common;

use std::collections::BTreeMap;

use aegis_model::{FindingKind, Severity};
use aegis_security::{falco, trivy, zap};
use serde_json::Value;

fn now() -> jiff::Timestamp {
    "2026-11-26T00:00:00Z".parse().unwrap()
}

/// Count Trivy findings by (kind, severity) by walking the JSON for the arrays Trivy names, whatever
/// the report's shape. Misconfigurations that passed are not findings.
fn walk_trivy(v: &Value, counts: &mut BTreeMap<(String, String), usize>) {
    match v {
        Value::Object(map) => {
            for (key, child) in map {
                if let Value::Array(items) = child {
                    for item in items {
                        let sev = item.get("Severity").and_then(Value::as_str).unwrap_or("UNKNOWN").to_uppercase();
                        let counted = match key.as_str() {
                            "Vulnerabilities" if item.get("VulnerabilityID").is_some() => Some("vulnerability"),
                            "Misconfigurations" if item.get("ID").is_some() || item.get("AVDID").is_some() => {
                                let status = item.get("Status").and_then(Value::as_str).unwrap_or("FAIL");
                                (status == "FAIL").then_some("misconfiguration")
                            }
                            "Secrets" if item.get("RuleID").is_some() => Some("secret"),
                            _ => None,
                        };
                        match counted {
                            Some(kind) => *counts.entry((kind.to_owned(), sev)).or_default() += 1,
                            None => walk_trivy(item, counts),
                        }
                    }
                } else {
                    walk_trivy(child, counts);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| walk_trivy(i, counts)),
        _ => {}
    }
}

#[test]
fn every_trivy_report_parses_and_counts_match_an_independent_walk() {
    let mut total = 0;
    for path in common::files("trivy", &[".json"]) {
        let bytes = std::fs::read(&path).unwrap();
        let report = trivy::parse_report(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut expected = BTreeMap::new();
        walk_trivy(&serde_json::from_slice(&bytes).unwrap(), &mut expected);
        let mut got: BTreeMap<(String, String), usize> = BTreeMap::new();
        for f in &report.findings {
            *got.entry((f.kind.as_str().to_owned(), f.severity.as_str().to_owned())).or_default() += 1;
        }
        assert_eq!(got, expected, "{}", path.display());
        assert!(!report.findings.is_empty(), "{} has findings", path.display());
        total += report.findings.len();
    }
    assert!(total > 4000, "expected thousands of findings across the corpus, got {total}");
}

#[test]
fn known_reports_have_the_counts_their_provenance_states() {
    let count = |file: &str, kind: FindingKind| {
        let bytes = std::fs::read(common::testdata().join("trivy").join(file)).unwrap();
        trivy::parse_report(&bytes).unwrap().findings.iter().filter(|f| f.kind == kind).count()
    };
    // Figures from testdata/SOURCES.md.
    assert_eq!(count("securecodebox-mediawiki-1.27.3.legacy.json", FindingKind::Vulnerability), 2871);
    assert_eq!(count("backline-juice-shop-repo-trivy-0.69.3.json", FindingKind::Vulnerability), 79);
    assert_eq!(count("securecodebox-trivy--k8s-scan-results.json", FindingKind::Vulnerability), 454);
    assert_eq!(count("securecodebox-trivy--k8s-scan-results.json", FindingKind::Misconfiguration), 218);
    assert_eq!(count("defectdojo-misconfigurations_and_secrets.json", FindingKind::Secret), 2);
    assert_eq!(count("defectdojo-issue_10991.json", FindingKind::Misconfiguration), 37);
}

#[test]
fn old_and_new_misconfiguration_ids_give_the_same_findings() {
    for (new, old) in [
        ("trivy-golden-dockerfile.json", "trivy-golden-dockerfile.v0.67.0.json"),
        ("trivy-golden-helm.json", "trivy-golden-helm.v0.67.0.json"),
    ] {
        let ids = |file: &str| {
            let bytes = std::fs::read(common::testdata().join("trivy").join(file)).unwrap();
            let mut v: Vec<(String, String)> =
                trivy::parse_report(&bytes).unwrap().findings.into_iter().map(|f| (f.id, f.fingerprint.to_string())).collect();
            v.sort();
            v
        };
        assert_eq!(ids(new), ids(old), "{new} vs {old}");
    }
}

#[test]
fn vulnerability_statuses_survive_parsing_and_drive_ignore_unfixed() {
    let bytes = std::fs::read(common::testdata().join("trivy/defectdojo-all_statuses.json")).unwrap();
    let report = trivy::parse_report(&bytes).unwrap();
    let statuses: Vec<String> = report.findings.iter().filter_map(|f| f.package.as_ref()?.status.clone()).collect();
    for s in ["unknown", "not_affected", "affected", "fixed", "under_investigation", "will_not_fix", "fix_deferred", "end_of_life"] {
        assert!(statuses.iter().any(|x| x == s), "status {s} missing: {statuses:?}");
    }
    let ignore = trivy::IgnoreList::default();
    let filter = trivy::TrivyFilter { ignore: &ignore, ignore_unfixed: true, ignore_statuses: &[] };
    let today = "2026-11-26".parse().unwrap();
    let (kept, dropped) = filter.apply(report.findings.clone(), today);
    let unfixed = report
        .findings
        .iter()
        .filter(|f| trivy::UNFIXED_STATUSES.contains(&f.package.as_ref().unwrap().status.as_deref().unwrap_or("")))
        .count();
    assert_eq!(dropped as usize, unfixed);
    assert!(kept.iter().all(|f| !trivy::UNFIXED_STATUSES.contains(&f.package.as_ref().unwrap().status.as_deref().unwrap())));
}

#[test]
fn the_shared_ignore_files_parse_with_their_expiries() {
    let dir = common::testdata().join("trivy");
    let plain = trivy::IgnoreList::parse_any(&std::fs::read_to_string(dir.join("trivy-testdata.trivyignore")).unwrap()).unwrap();
    let yaml = trivy::IgnoreList::parse_any(&std::fs::read_to_string(dir.join("trivy-testdata.trivyignore.yaml")).unwrap()).unwrap();
    let today = "2026-11-26".parse().unwrap();
    let expired = |l: &trivy::IgnoreList| l.entries().iter().filter(|e| e.is_expired(today)).map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(plain.entries().len(), 9);
    assert_eq!(expired(&plain), vec!["CVE-2019-0004"]);
    assert_eq!(expired(&yaml), vec!["CVE-2019-0005", "CVE-2019-0006"]);
}

#[test]
fn every_zap_report_parses_and_alert_counts_match_the_json() {
    for path in common::files("zap", &[".json"]) {
        let bytes = std::fs::read(&path).unwrap();
        let report = zap::parse_report(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let raw: Value = serde_json::from_slice(&bytes).unwrap();
        let sites: Vec<&Value> = match &raw["site"] {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let alerts: Vec<&Value> = sites.iter().flat_map(|s| s["alerts"].as_array().unwrap().iter()).collect();
        assert_eq!(report.alerts.len(), alerts.len(), "{}", path.display());
        let instances: usize = alerts.iter().map(|a| a["instances"].as_array().map_or(0, Vec::len)).sum();
        assert_eq!(report.alerts.iter().map(|a| a.instances.len()).sum::<usize>(), instances, "{}", path.display());
        let false_positives = alerts.iter().filter(|a| a["confidence"] == "0").count();
        let z = zap::to_findings(&report.alerts, &zap::ZapRules::default());
        assert_eq!(z.findings.len(), alerts.len() - false_positives, "{}", path.display());
        let high = alerts.iter().filter(|a| a["riskcode"] == "3" && a["confidence"] != "1" && a["confidence"] != "0").count();
        assert_eq!(z.findings.iter().filter(|f| f.severity == Severity::High).count(), high, "{}", path.display());
    }
}

#[test]
fn zap_rules_files_apply_ignore_and_out_of_scope_like_zap_baseline() {
    let dir = common::testdata().join("zap");
    let rules = zap::ZapRules::parse(&std::fs::read_to_string(dir.join("zaproxy-integration-baseline3.conf")).unwrap()).unwrap();
    assert_eq!(rules.level("10021"), Some(zap::RuleLevel::Fail));
    let report = zap::parse_report(&std::fs::read(dir.join("bcgov-pipeline-templates-report_json-zap-2.14.0.json")).unwrap()).unwrap();
    let all = zap::to_findings(&report.alerts, &zap::ZapRules::default());
    let ruled = zap::to_findings(&report.alerts, &rules);
    let ignored = report.alerts.iter().filter(|a| a.plugin_id == "10049").count();
    let robots_only = report
        .alerts
        .iter()
        .filter(|a| a.plugin_id != "10049" && !a.instances.is_empty() && a.instances.iter().all(|i| i.uri.ends_with("/robots.txt")))
        .count();
    assert_eq!(all.findings.len() - ruled.findings.len(), ignored + robots_only);
    assert_eq!(ruled.suppressed - all.suppressed, (ignored + robots_only) as u64);
}

#[test]
fn every_falco_capture_parses_and_log_lines_are_skipped_not_lost() {
    let mut total_jsonl = 0;
    for path in common::files("falco", &[".jsonl", ".txt"]) {
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = falco::parse_stream(&text, now());
        let objects = text.lines().filter(|l| serde_json::from_str::<Value>(l.trim()).is_ok_and(|v| v.is_object())).count();
        let non_json = text.lines().filter(|l| !l.trim().is_empty() && serde_json::from_str::<Value>(l.trim()).is_err()).count();
        assert_eq!(parsed.alerts.len(), objects, "{}: every JSON object is an alert", path.display());
        assert_eq!(parsed.skipped.len(), non_json, "{}", path.display());
        if path.extension().is_some_and(|e| e == "jsonl") {
            total_jsonl += parsed.alerts.len();
        }
    }
    assert_eq!(total_jsonl, 243, "SOURCES.md counts 243 alert objects across the .jsonl files");
    let capture =
        falco::parse_stream(&std::fs::read_to_string(common::testdata().join("falco/josevnz-falco_json_lines.txt")).unwrap(), now());
    assert_eq!((capture.alerts.len(), capture.skipped.len()), (215, 22));
}

#[test]
fn falco_internal_messages_and_attribution_are_recognised_in_real_alerts() {
    let text = std::fs::read_to_string(common::testdata().join("falco/falco-website-doc-examples.jsonl")).unwrap();
    let alerts = falco::parse_stream(&text, now()).alerts;
    assert_eq!(alerts.iter().filter(|a| a.is_internal()).count(), 5);
    assert!(alerts.iter().any(|a| a.namespace().is_some()));
    assert!(alerts.iter().any(|a| a.namespace().is_none() && !a.is_internal()));
    // The doc example with time "…Z+2" is kept, stamped with the read time, its text preserved.
    let odd: Vec<_> = alerts.iter().filter(|a| a.time_unparsed.is_some()).collect();
    assert_eq!(odd.len(), 1);
    assert_eq!(odd[0].rule, "Fake rule");
    // Every alert parses to a body the receiver accepts, one line each.
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        assert_eq!(falco::parse_body(line.as_bytes(), now()).unwrap().len(), 1);
    }
}
