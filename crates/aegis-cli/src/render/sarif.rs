//! SARIF 2.1.0, as code-scanning UIs (GitHub, GitLab, Azure DevOps) read it.
//!
//! One run per source (Trivy, ZAP, Falco, AEGIS manifest checks). Candidate findings are results with
//! `baselineState` `new` or `unchanged`; resolved ones are `absent`. `level` follows the verdict:
//! `error` for findings that block, `warning` for those that warn, `note` otherwise. Severity is
//! also given as `security-severity` (the CVSS-like number GitHub sorts by) and the finding's
//! fingerprint as a partial fingerprint, so alerts stay stable across uploads.

use std::collections::BTreeMap;

use aegis_model::{Finding, SecurityReport, Severity, Source, Target};
use serde_json::{Value, json};

use super::{Standing, Standings};

pub const SARIF_SCHEMA: &str = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Unknown => "0.0",
    }
}

fn information_uri(s: Source) -> &'static str {
    match s {
        Source::Trivy => "https://trivy.dev",
        Source::Zap => "https://www.zaproxy.org",
        Source::Falco => "https://falco.org",
        Source::Manifest => "https://kubernetes.io/docs/concepts/security/pod-security-standards/",
    }
}

/// A location SARIF viewers can show: a file and line where there is one, else the target itself.
fn location(f: &Finding) -> Value {
    let (uri, line) = match (&f.target, f.location.as_deref()) {
        (Target::Path { .. }, Some(loc)) | (Target::Resource { .. }, Some(loc)) if loc.contains(':') && !loc.contains(' ') => {
            let (file, line) = loc.rsplit_once(':').unwrap_or((loc, ""));
            (file.to_owned(), line.parse::<u64>().ok())
        }
        (Target::Path { path }, _) => (path.clone(), None),
        (Target::Image { reference, .. }, _) => (reference.clone(), None),
        (Target::Resource { kind, namespace, name }, _) => {
            (format!("k8s/{}/{}/{}", namespace.as_deref().unwrap_or("_"), kind.to_lowercase(), name), None)
        }
        (Target::Url { url }, _) => (url.clone(), None),
        (Target::Pod { namespace, name, .. }, _) => {
            (format!("k8s/{}/pod/{}", namespace.as_deref().unwrap_or("_unattributed"), name.as_deref().unwrap_or("_")), None)
        }
    };
    let mut physical = json!({ "artifactLocation": { "uri": uri.replace(' ', "%20") } });
    if let Some(l) = line.filter(|l| *l > 0) {
        physical["region"] = json!({ "startLine": l });
    }
    json!({
        "physicalLocation": physical,
        "logicalLocations": [{ "name": f.target.to_string(), "kind": "resource" }]
    })
}

pub fn render(r: &SecurityReport) -> Value {
    let standings = Standings::of(r);
    let mut by_source: BTreeMap<Source, Vec<(&Finding, &'static str)>> = BTreeMap::new();
    for (list, state) in [(&r.findings.new, "new"), (&r.findings.persisting, "unchanged"), (&r.findings.resolved, "absent")] {
        for f in list {
            by_source.entry(f.source).or_default().push((f, state));
        }
    }
    let runs: Vec<Value> = Source::ALL
        .iter()
        .filter(|s| by_source.contains_key(s) || r.scanners.iter().any(|run| run.scanner == **s))
        .map(|source| {
            let findings = by_source.get(source).cloned().unwrap_or_default();
            let mut rule_index: BTreeMap<&str, usize> = BTreeMap::new();
            let mut rules: Vec<Value> = Vec::new();
            for (f, _) in &findings {
                if !rule_index.contains_key(f.id.as_str()) {
                    rule_index.insert(&f.id, rules.len());
                    let mut rule = json!({
                        "id": f.id,
                        "name": f.id,
                        "shortDescription": { "text": f.title },
                        "properties": { "security-severity": security_severity(f.severity), "tags": ["security", f.kind.as_str()] }
                    });
                    if let Some(help) = f.references.iter().find(|u| u.starts_with("http")) {
                        rule["helpUri"] = json!(help);
                    }
                    rules.push(rule);
                }
            }
            let results: Vec<Value> = findings
                .iter()
                .map(|(f, state)| {
                    // SARIF §3.27.9: a result whose kind is not `fail` has level `none`.
                    let level = if *state == "absent" {
                        "none"
                    } else {
                        match standings.get(f) {
                            Standing::Blocking => "error",
                            Standing::Warning => "warning",
                            Standing::Informational => "note",
                        }
                    };
                    let mut text = format!("{} ({}) in {}", f.title, f.severity, f.target);
                    if let Some(p) = &f.package {
                        text.push_str(&format!(": {} {}", p.name, p.installed_version.as_deref().unwrap_or("")));
                        if let Some(fix) = &p.fixed_version {
                            text.push_str(&format!(", fixed in {fix}"));
                        }
                    }
                    json!({
                        "ruleId": f.id,
                        "ruleIndex": rule_index[f.id.as_str()],
                        "level": level,
                        "kind": if *state == "absent" { "pass" } else { "fail" },
                        "baselineState": state,
                        "message": { "text": text },
                        "locations": [location(f)],
                        "partialFingerprints": { "aegisFingerprint/v1": f.fingerprint.as_str() },
                        "properties": { "severity": f.severity.as_str(), "kind": f.kind.as_str(), "target": f.target.to_string() }
                    })
                })
                .collect();
            let runs_of: Vec<_> = r.scanners.iter().filter(|run| run.scanner == *source).collect();
            let version = runs_of.iter().find_map(|run| run.tool_version.clone());
            let notifications: Vec<Value> = runs_of
                .iter()
                .filter_map(|run| run.status.reason().map(|reason| json!({
                    "level": "error",
                    "message": { "text": format!("{} {} on {}: {reason}", run.side.as_str(), run.status.label(), run.target) }
                })))
                .collect();
            let mut driver = json!({ "name": source.tool_name(), "informationUri": information_uri(*source), "rules": rules });
            if let Some(v) = version {
                driver["version"] = json!(v);
            }
            json!({
                "tool": { "driver": driver },
                "automationDetails": { "id": format!("aegis/security-gate/{}/", source.as_str()) },
                "invocations": [{ "executionSuccessful": notifications.is_empty(), "toolExecutionNotifications": notifications }],
                "results": results,
                "properties": { "verdict": r.verdict.as_str(), "policyDigest": r.policy_digest.as_str(), "evidenceDigest": r.evidence_digest.as_str() }
            })
        })
        .collect();
    json!({ "$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": runs })
}
