//! Evidence files: recognise what a file is by its content, and turn it into a scanner run.
//!
//! Recognition looks at the opening of the file only, so a *truncated* Trivy report is still known to
//! be Trivy's, and fails as a Trivy run (blocking the gate) instead of as "unknown file".

use aegis_model::{RunStatus, ScannerRun, Side, Source, Target};
use jiff::Timestamp;

use crate::falco;
use crate::manifest;
use crate::policy::GatePolicy;
use crate::trivy;
use crate::zap;

/// What an evidence file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceKind {
    Trivy,
    Zap,
    /// A `{"alerts": [...]}` body from the ZAP API.
    ZapApi,
    Falco,
    Manifest,
}

impl EvidenceKind {
    pub fn source(self) -> Source {
        match self {
            EvidenceKind::Trivy => Source::Trivy,
            EvidenceKind::Zap | EvidenceKind::ZapApi => Source::Zap,
            EvidenceKind::Falco => Source::Falco,
            EvidenceKind::Manifest => Source::Manifest,
        }
    }
}

/// A file that is none of the known kinds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not recognised as Trivy JSON, a ZAP JSON report, Falco JSON lines or Kubernetes manifests{hint}")]
pub struct UnrecognisedEvidence {
    hint: String,
}

/// Decide what `bytes` hold from their first 64 KiB.
pub fn detect(bytes: &[u8]) -> Result<EvidenceKind, UnrecognisedEvidence> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]);
    let trimmed = head.trim_start();
    if trimmed.is_empty() {
        return Err(UnrecognisedEvidence { hint: " (the file is empty)".into() });
    }
    let has = |k: &str| head.contains(k);
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if has("\"SchemaVersion\"")
            || has("\"ClusterName\"")
            || has("\"VulnerabilityID\"")
            || (has("\"Target\"") && (has("\"Vulnerabilities\"") || has("\"Misconfigurations\"") || has("\"Class\"")))
        {
            return Ok(EvidenceKind::Trivy);
        }
        if has("\"@programName\"") || has("\"@version\"") && has("\"site\"") {
            return Ok(EvidenceKind::Zap);
        }
        if has("\"alerts\"") && has("\"pluginId\"") {
            return Ok(EvidenceKind::ZapApi);
        }
        if has("\"rule\"") && has("\"priority\"") {
            return Ok(EvidenceKind::Falco);
        }
        if has("\"apiVersion\"") && has("\"kind\"") {
            return Ok(EvidenceKind::Manifest);
        }
        return Err(UnrecognisedEvidence { hint: " (JSON without the keys of any of them)".into() });
    }
    // Captured Falco logs start with log lines; find any alert line.
    if head.lines().any(|l| l.trim_start().starts_with('{') && l.contains("\"rule\"") && l.contains("\"priority\"")) {
        return Ok(EvidenceKind::Falco);
    }
    if head.lines().any(|l| l.starts_with("apiVersion:") || l.starts_with("kind:")) {
        return Ok(EvidenceKind::Manifest);
    }
    Err(UnrecognisedEvidence { hint: String::new() })
}

/// Options for reading evidence files.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Falco: keep alerts of this namespace (and unattributed ones); `None` keeps all.
    pub namespace: Option<String>,
}

/// Turn one evidence file into a scanner run. Parse failures become a `failed` run of the recognised
/// scanner, so the gate blocks with the parser's message.
pub fn load(
    kind: EvidenceKind,
    name: &str,
    bytes: &[u8],
    side: Side,
    policy: &GatePolicy,
    opts: &LoadOptions,
    started: Timestamp,
) -> ScannerRun {
    let mut run = ScannerRun::new(kind.source(), side, name, started);
    run.notes.push(format!("read from {name}"));
    let fail = |mut run: ScannerRun, reason: String| {
        run.status = RunStatus::Failed { reason };
        run
    };
    match kind {
        EvidenceKind::Trivy => match trivy::parse_report(bytes) {
            Ok(report) => {
                if let Some(a) = &report.artifact {
                    run.target = a.to_string();
                }
                report.fill(&mut run);
                run
            }
            Err(e) => fail(run, e.to_string()),
        },
        EvidenceKind::Zap => match zap::parse_report(bytes) {
            Ok(report) => {
                run.tool_version = report.version;
                if !report.sites.is_empty() {
                    run.target = report.sites.join(", ");
                }
                let z = zap::to_findings(&report.alerts, &policy.zap_rules);
                run.findings = z.findings;
                run.suppressed = z.suppressed;
                run
            }
            Err(e) => fail(run, e.to_string()),
        },
        EvidenceKind::ZapApi => match zap::parse_api_alerts(bytes).and_then(|a| zap::alerts_from_api(&a, name)) {
            Ok(alerts) => {
                let z = zap::to_findings(&alerts, &policy.zap_rules);
                run.findings = z.findings;
                run.suppressed = z.suppressed;
                run
            }
            Err(e) => fail(run, e.to_string()),
        },
        EvidenceKind::Falco => {
            let text = String::from_utf8_lossy(bytes);
            let parsed = if text.trim_start().starts_with('[') {
                match falco::parse_array(&text, started) {
                    Ok(p) => p,
                    Err(e) => return fail(run, e),
                }
            } else {
                falco::parse_stream(&text, started)
            };
            if !parsed.skipped.is_empty() {
                run.notes.push(format!(
                    "{} line(s) that are not alerts skipped (first: line {}, {})",
                    parsed.skipped.len(),
                    parsed.skipped[0].0,
                    parsed.skipped[0].1
                ));
            }
            // In a captured file, every alert (internal messages included) proves the feed was alive.
            let feed = parsed.alerts.len() as u64;
            falco_run(run, &parsed.alerts, &parsed.unreadable, opts.namespace.as_deref(), feed)
        }
        EvidenceKind::Manifest => match std::str::from_utf8(bytes) {
            Ok(text) => match manifest::check_text(text) {
                Ok(checked) => {
                    run.tool_version = Some(concat!("aegis ", env!("CARGO_PKG_VERSION")).to_owned());
                    run.findings = checked.findings;
                    if !checked.unreadable.is_empty() {
                        run.mark_incomplete(format!(
                            "{} workload(s) could not be checked: {}",
                            checked.unreadable.len(),
                            checked.unreadable.join("; ")
                        ));
                    }
                    run
                }
                Err(e) => fail(run, e.to_string()),
            },
            Err(e) => fail(run, format!("manifest is not UTF-8: {e}")),
        },
    }
}

/// Build a Falco run from the alerts seen for a namespace. `feed_messages` counts everything Falco
/// sent in the window (any namespace, internal messages too): zero means the feed was silent, which is
/// missing evidence, not a clean namespace. `unreadable` alerts that may concern the namespace (they
/// name it, or name none) make the run incomplete: they cannot be judged, so they cannot be cleared.
pub fn falco_run(
    mut run: ScannerRun,
    alerts: &[falco::FalcoAlert],
    unreadable: &[falco::UnreadableAlert],
    namespace: Option<&str>,
    feed_messages: u64,
) -> ScannerRun {
    if feed_messages == 0 && unreadable.is_empty() {
        run.status = RunStatus::Failed {
            reason: "no Falco alert or internal message in the window: the feed is silent, so the namespace cannot be cleared".into(),
        };
        return run;
    }
    let heartbeats = alerts.iter().filter(|a| a.is_internal()).count();
    // Falco's metrics snapshots carry its version.
    if run.tool_version.is_none() {
        run.tool_version = alerts
            .iter()
            .filter(|a| a.is_internal())
            .find_map(|a| a.output_fields.get("falco.version").and_then(|v| v.as_str()).map(str::to_owned));
    }
    let elsewhere = |got: Option<&str>| matches!((namespace, got), (Some(want), Some(got)) if want != got);
    let mut other_namespaces = 0u64;
    for a in alerts.iter().filter(|a| !a.is_internal()) {
        if elsewhere(a.namespace()) {
            other_namespaces += 1;
        } else {
            run.findings.push(a.to_finding());
        }
    }
    let unattributed = run.findings.iter().filter(|f| matches!(f.target, Target::Pod { namespace: None, .. })).count();
    run.notes.push(format!(
        "{} alert(s) considered ({unattributed} without namespace), {other_namespaces} from other namespaces, {heartbeats} internal message(s)",
        run.findings.len()
    ));
    let (theirs, ours): (Vec<&falco::UnreadableAlert>, Vec<&falco::UnreadableAlert>) =
        unreadable.iter().partition(|u| elsewhere(u.namespace.as_deref()));
    if !theirs.is_empty() {
        let mut names: Vec<&str> = theirs.iter().filter_map(|u| u.namespace.as_deref()).collect();
        names.sort_unstable();
        names.dedup();
        run.notes.push(format!("{} unreadable alert(s) of other namespaces ({}) not judged", theirs.len(), names.join(", ")));
    }
    if !ours.is_empty() {
        let shown: Vec<String> = ours.iter().take(3).map(ToString::to_string).collect();
        let more = if ours.len() > 3 { format!(" (+{} more)", ours.len() - 3) } else { String::new() };
        run.mark_incomplete(format!(
            "{} alert(s) could not be read and may concern this namespace, so it cannot be cleared: {}{more}",
            ours.len(),
            shown.join("; ")
        ));
    }
    run
}
