//! OWASP ZAP: JSON reports (current `traditional-json` and the legacy 2.8-era report), the daemon
//! API's alert objects, and zap-baseline rules files. The HTTP client for the daemon lives in
//! `aegis-scanners`; these are the pure conversions it and the CLI share.
//!
//! A ZAP finding is one *rule* (plugin) firing on a site, with its instances as locations. That is how
//! zap-baseline counts, and it keeps the baseline/candidate delta stable when the spider finds a few
//! more or fewer URLs between two runs.

mod report;
mod rules;

pub use report::{ApiAlert, ZapAlert, ZapInstance, alerts_from_api, parse_api_alerts, parse_report};
pub use rules::{RuleLevel, ZapRules};

use aegis_model::{Finding, FindingKind, Fingerprint, Severity, Source, Target};

/// Why ZAP evidence could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZapError {
    #[error("ZAP output is empty")]
    Empty,
    #[error("ZAP output is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("JSON is not a ZAP report: {0}")]
    NotAZapReport(String),
    #[error("invalid ZAP field: {0}")]
    InvalidField(String),
    #[error("invalid zap-baseline rules file, line {line}: {message}")]
    RulesFile { line: usize, message: String },
}

/// ZAP evidence converted to findings.
#[derive(Debug, Clone, PartialEq)]
pub struct ZapFindings {
    pub findings: Vec<Finding>,
    /// Alerts dropped: IGNORE rules, out-of-scope instances, false positives.
    pub suppressed: u64,
}

/// Convert alerts to findings, applying the rules file's IGNORE and OUTOFSCOPE lines the way
/// zap-baseline does (an alert whose every instance is out of scope disappears).
pub fn to_findings(alerts: &[ZapAlert], rules: &ZapRules) -> ZapFindings {
    let mut findings = Vec::new();
    let mut suppressed = 0u64;
    for alert in alerts {
        if rules.level(&alert.plugin_id) == Some(RuleLevel::Ignore) {
            suppressed += 1;
            continue;
        }
        let in_scope: Vec<&ZapInstance> = alert.instances.iter().filter(|i| rules.in_scope(&alert.plugin_id, &i.uri)).collect();
        if in_scope.is_empty() && !alert.instances.is_empty() {
            suppressed += 1;
            continue;
        }
        let Some(severity) = Severity::from_zap(alert.risk, alert.confidence) else {
            suppressed += 1;
            continue;
        };
        let first_url = in_scope.first().map(|i| i.uri.clone()).unwrap_or_else(|| alert.site.clone());
        let mut location = in_scope
            .iter()
            .take(3)
            .map(|i| match (&i.method, &i.param) {
                (Some(m), Some(p)) if !p.is_empty() => format!("{m} {} [{p}]", i.uri),
                (Some(m), _) => format!("{m} {}", i.uri),
                _ => i.uri.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        if in_scope.len() > 3 {
            location.push_str(&format!(" (+{} more)", in_scope.len() - 3));
        }
        let identity = alert.alert_ref.as_deref().unwrap_or(&alert.plugin_id);
        findings.push(Finding {
            source: Source::Zap,
            kind: FindingKind::DastAlert,
            id: alert.plugin_id.clone(),
            title: alert.name.clone(),
            severity,
            target: Target::Url { url: first_url },
            location: (!location.is_empty()).then_some(location),
            package: None,
            references: alert.references.clone(),
            native_severity: Some(format!("{} ({} confidence)", alert.risk, alert.confidence)),
            aliases: alert.alert_ref.iter().filter(|r| **r != alert.plugin_id).cloned().collect(),
            fingerprint: Fingerprint::of(&["zap", identity]),
        });
    }
    ZapFindings { findings, suppressed }
}
