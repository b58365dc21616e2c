//! The gate: a pure function of (policy, baseline evidence, candidate evidence) → security report.
//!
//! No I/O and no clock: the caller passes `now`, so the same inputs always give the same report (bar
//! `generated_at`), and the CLI, the shadow runner and the operator share this one decision.
//!
//! Decision order, per scanner that the policy does not switch off:
//! 1. Evidence: no candidate run, or a candidate run that failed, was skipped or is incomplete, is an
//!    *error* for a required scanner and a warning for an advisory one (an incomplete run's findings are
//!    still judged). A failed baseline makes every candidate finding of that scanner count as new; an
//!    incomplete one vouches only for what it read (never fewer findings for less evidence).
//! 2. Filters: exceptions and ignore files (with expiry), Trivy status filters, Falco allowlists and
//!    attribution. Dropped findings are counted, expired exceptions are warned about.
//! 3. Delta by fingerprint: new, resolved, persisting.
//! 4. Thresholds on the judged findings (new ones in `delta: new`, all in `delta: absolute`): blocking
//!    findings block (warn in advisory mode); warning ones warn.
//!
//! Verdict: `blocked` if any finding blocks; else `error` if required evidence is missing; else
//! `passed_with_warnings` if anything warned; else `passed`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use aegis_model::{
    DeltaFindings, Digest, FalcoPriority, Finding, Fingerprint, GateReason, REPORT_SCHEMA_VERSION, RunStatus, ScannerRun,
    ScannerRunSummary, SecurityReport, Severity, SeverityCounts, Side, Source, Summary, Target, Verdict,
};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::policy::{Delta, GatePolicy, Mode};
use crate::trivy::TrivyFilter;
use crate::zap::RuleLevel;

/// The evidence of one side: every scanner run for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    pub runs: Vec<ScannerRun>,
}

impl Evidence {
    pub fn new(runs: Vec<ScannerRun>) -> Self {
        Evidence { runs }
    }

    fn of(&self, source: Source) -> impl Iterator<Item = &ScannerRun> {
        self.runs.iter().filter(move |r| r.scanner == source)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Warn,
    Fail,
}

/// Evaluate the gate.
pub fn evaluate(policy: &GatePolicy, baseline: Option<&Evidence>, candidate: &Evidence, now: Timestamp) -> SecurityReport {
    let today = now.to_zoned(TimeZone::UTC).date();
    let mut blocking: Vec<GateReason> = Vec::new();
    let mut errors: Vec<GateReason> = Vec::new();
    let mut warnings: Vec<GateReason> = Vec::new();
    let mut delta = DeltaFindings::default();
    let mut suppressed_total = 0u64;

    for source in Source::ALL {
        let mode = policy.policy.mode(source);
        if mode == Mode::Off {
            continue;
        }
        let judged_delta = policy.policy.delta(source);

        // 1. Evidence.
        let cand_runs: Vec<&ScannerRun> = candidate.of(source).collect();
        let mut problems = Vec::new();
        if cand_runs.is_empty() {
            problems.push(format!("no candidate evidence from {} (absent evidence is not a clean result)", source.tool_name()));
        }
        for r in cand_runs.iter().filter(|r| !r.status.is_ok()) {
            problems.push(format!("{} {} on {}: {}", source.tool_name(), r.status.label(), r.target, r.status.reason().unwrap_or("")));
        }
        for p in problems {
            let reason = GateReason { rule: format!("{source}.evidence"), scanner: Some(source), message: p, findings: vec![] };
            match mode {
                Mode::Required => errors.push(reason),
                _ => warnings.push(reason),
            }
        }
        let base_runs: Vec<&ScannerRun> = baseline.map(|b| b.of(source).collect()).unwrap_or_default();
        // An incomplete baseline still vouches for what it read: what it could not read only makes
        // more candidate findings new, never fewer.
        let baseline_usable = !base_runs.is_empty() && base_runs.iter().all(|r| r.status.has_findings());
        let baseline_complete = baseline_usable && base_runs.iter().all(|r| r.status.is_ok());
        if baseline.is_some() && !baseline_complete && judged_delta == Delta::New {
            let message = if baseline_usable {
                format!(
                    "baseline evidence from {} is incomplete ({}); candidate findings it could not vouch for count as new",
                    source.tool_name(),
                    base_runs.iter().filter_map(|r| r.status.reason()).collect::<Vec<_>>().join("; ")
                )
            } else {
                format!("baseline evidence from {} is missing or failed; every candidate finding counts as new", source.tool_name())
            };
            warnings.push(GateReason { rule: format!("{source}.baseline"), scanner: Some(source), message, findings: vec![] });
        }

        // 2. Filters.
        let ok_findings = |runs: &[&ScannerRun]| -> Vec<Finding> {
            runs.iter().filter(|r| r.status.has_findings()).flat_map(|r| r.findings.iter().cloned()).collect()
        };
        let (cand, dropped) = filter(policy, source, ok_findings(&cand_runs), today, &mut warnings, true);
        suppressed_total += dropped + cand_runs.iter().map(|r| r.suppressed).sum::<u64>();
        let base =
            if baseline_usable { filter(policy, source, ok_findings(&base_runs), today, &mut Vec::new(), false).0 } else { Vec::new() };

        // 3. Delta.
        let base_fps: HashSet<&Fingerprint> = base.iter().map(|f| &f.fingerprint).collect();
        let cand_fps: HashSet<&Fingerprint> = cand.iter().map(|f| &f.fingerprint).collect();
        let resolved: Vec<Finding> = dedup(base.iter().filter(|f| !cand_fps.contains(&f.fingerprint)).cloned().collect());
        let (persisting, new): (Vec<Finding>, Vec<Finding>) =
            dedup(cand.clone()).into_iter().partition(|f| base_fps.contains(&f.fingerprint));

        // 4. Thresholds.
        let judged: Vec<&Finding> = match judged_delta {
            Delta::New => new.iter().collect(),
            Delta::Absolute => new.iter().chain(persisting.iter()).collect(),
        };
        let mut grouped: BTreeMap<(String, Level), Vec<&Finding>> = BTreeMap::new();
        for f in judged {
            if let Some((rule, level)) = classify(policy, f) {
                let level = if mode == Mode::Advisory { Level::Warn } else { level };
                grouped.entry((rule, level)).or_default().push(f);
            }
        }
        for ((rule, level), findings) in grouped {
            let reason = GateReason {
                message: describe(&rule, judged_delta, &findings),
                rule,
                scanner: Some(source),
                findings: findings.iter().map(|f| f.fingerprint.clone()).collect(),
            };
            match level {
                Level::Fail => blocking.push(reason),
                Level::Warn => warnings.push(reason),
            }
        }

        delta.new.extend(new);
        delta.persisting.extend(persisting);
        delta.resolved.extend(resolved);
    }

    for list in [&mut delta.new, &mut delta.persisting, &mut delta.resolved] {
        list.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.source.cmp(&b.source)).then_with(|| a.id.cmp(&b.id)));
    }

    let verdict = if !blocking.is_empty() {
        Verdict::Blocked
    } else if !errors.is_empty() {
        Verdict::Error
    } else if !warnings.is_empty() {
        Verdict::PassedWithWarnings
    } else {
        Verdict::Passed
    };
    let mut reasons = blocking;
    reasons.extend(errors);

    let mut scanners: Vec<_> =
        baseline.into_iter().flat_map(|b| b.runs.iter()).chain(candidate.runs.iter()).map(ScannerRun::summary).collect();
    for s in &mut scanners {
        if policy.policy.mode(s.scanner) == Mode::Off {
            s.notes.push("not judged: off in the policy".into());
        }
    }
    // A scanner the policy turned off is listed as such, never left out: a reader of the report sees
    // what was not looked at.
    for source in Source::ALL {
        if policy.policy.mode(source) == Mode::Off && !scanners.iter().any(|s| s.scanner == source) {
            scanners.push(ScannerRunSummary {
                scanner: source,
                side: Side::Candidate,
                tool_version: None,
                target: String::new(),
                started: now,
                duration_ms: 0,
                status: RunStatus::Skipped { reason: "off in the policy: not run, not judged".into() },
                findings: 0,
                suppressed: 0,
                notes: Vec::new(),
            });
        }
    }

    SecurityReport {
        schema_version: REPORT_SCHEMA_VERSION.to_owned(),
        verdict,
        reasons,
        warnings,
        summary: summarize(&delta, suppressed_total),
        findings: delta,
        scanners,
        policy_digest: policy.digest(),
        evidence_digest: Digest::of_json(&(baseline.map(|b| &b.runs), &candidate.runs)),
        has_baseline: baseline.is_some(),
        generated_at: now,
    }
}

/// Drop findings the policy accepts. Returns the kept findings and how many were dropped.
fn filter(
    policy: &GatePolicy,
    source: Source,
    findings: Vec<Finding>,
    today: Date,
    warnings: &mut Vec<GateReason>,
    warn_expired: bool,
) -> (Vec<Finding>, u64) {
    let before = findings.len() as u64;
    let ignore = match source {
        Source::Trivy => Some(&policy.trivy_ignore),
        Source::Manifest => Some(&policy.manifest_ignore),
        _ => None,
    };
    if warn_expired && let Some(list) = ignore {
        for e in list.entries().iter().filter(|e| e.is_expired(today)) {
            let matched: Vec<&Finding> = findings.iter().filter(|f| f.is_named(&e.id)).collect();
            if !matched.is_empty() {
                warnings.push(GateReason {
                    rule: format!("{source}.exception_expired"),
                    scanner: Some(source),
                    message: format!(
                        "exception for {} expired on {}; its {} finding(s) count again",
                        e.id,
                        e.expires.map(|d| d.to_string()).unwrap_or_default(),
                        matched.len()
                    ),
                    findings: matched.iter().map(|f| f.fingerprint.clone()).collect(),
                });
            }
        }
    }
    let kept: Vec<Finding> = match source {
        Source::Trivy => {
            let t = &policy.policy.trivy;
            let f = TrivyFilter { ignore: &policy.trivy_ignore, ignore_unfixed: t.ignore_unfixed, ignore_statuses: &t.ignore_statuses };
            f.apply(findings, today).0
        }
        Source::Manifest => findings.into_iter().filter(|f| policy.manifest_ignore.matching(f, today).is_none()).collect(),
        Source::Falco => {
            let p = &policy.policy.falco;
            findings
                .into_iter()
                .filter(|f| !p.allow_rules.iter().any(|r| r == &f.id))
                .filter(|f| p.require_attribution || is_attributed(f))
                .collect()
        }
        Source::Zap => findings,
    };
    let dropped = before - kept.len() as u64;
    (kept, dropped)
}

fn is_attributed(f: &Finding) -> bool {
    !matches!(f.target, Target::Pod { namespace: None, .. })
}

/// Keep one finding per fingerprint (the most severe): the same CVE in two layers is one problem.
fn dedup(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint).then_with(|| b.severity.cmp(&a.severity)));
    findings.dedup_by(|a, b| a.fingerprint == b.fingerprint);
    findings
}

/// Which rule a finding trips, and how hard.
fn classify(policy: &GatePolicy, f: &Finding) -> Option<(String, Level)> {
    let p = &policy.policy;
    match f.source {
        Source::Trivy => {
            if p.trivy.fail_on.contains(&f.severity) {
                Some(("trivy.fail_on".into(), Level::Fail))
            } else if p.trivy.warn_on.contains(&f.severity) {
                Some(("trivy.warn_on".into(), Level::Warn))
            } else {
                None
            }
        }
        Source::Zap => match policy.zap_rules.level(&f.id) {
            Some(RuleLevel::Fail) => Some(("zap.rules_file".into(), Level::Fail)),
            Some(RuleLevel::Warn) => Some(("zap.rules_file".into(), Level::Warn)),
            Some(RuleLevel::Info | RuleLevel::Ignore) => None,
            None => {
                let at = |risk| Severity::from_zap(risk, aegis_model::ZapConfidence::Medium).unwrap_or(Severity::Unknown);
                if f.severity >= at(p.zap.fail_risk) && f.severity > Severity::Unknown {
                    Some(("zap.fail_risk".into(), Level::Fail))
                } else if f.severity >= at(p.zap.warn_risk) && f.severity > Severity::Unknown {
                    Some(("zap.warn_risk".into(), Level::Warn))
                } else {
                    None
                }
            }
        },
        Source::Falco => {
            // The Falco priority is exact in native_severity; the severity mapping is coarser.
            let priority = f.native_severity.as_deref().and_then(|s| s.parse::<FalcoPriority>().ok()).unwrap_or(FalcoPriority::Emergency);
            if priority < p.falco.min_priority {
                None
            } else if is_attributed(f) {
                Some(("falco.min_priority".into(), Level::Fail))
            } else {
                Some(("falco.attribution".into(), Level::Fail))
            }
        }
        Source::Manifest => {
            if f.severity >= p.manifest.fail_severity {
                Some(("manifest.fail_severity".into(), Level::Fail))
            } else if f.severity >= p.manifest.warn_severity {
                Some(("manifest.warn_severity".into(), Level::Warn))
            } else {
                None
            }
        }
    }
}

fn describe(rule: &str, delta: Delta, findings: &[&Finding]) -> String {
    let which = match delta {
        Delta::New => "new",
        Delta::Absolute => "",
    };
    let severities: BTreeSet<Severity> = findings.iter().map(|f| f.severity).collect();
    let sev = severities.iter().rev().map(|s| s.as_str()).collect::<Vec<_>>().join("/");
    let mut names: Vec<String> = findings
        .iter()
        .take(5)
        .map(|f| match (&f.package, &f.target) {
            (Some(p), _) => format!("{} ({})", f.id, p.name),
            (None, Target::Resource { kind, name, .. }) => format!("{} ({kind}/{name})", f.id),
            _ => f.id.clone(),
        })
        .collect();
    if findings.len() > 5 {
        names.push(format!("+{} more", findings.len() - 5));
    }
    let what = match rule {
        "falco.attribution" => "alert(s) without a namespace (cannot be ruled out for the candidate)".to_owned(),
        // Falco users think in priorities, not in the mapped severities.
        "falco.min_priority" => {
            let priorities: BTreeSet<&str> = findings.iter().filter_map(|f| f.native_severity.as_deref()).collect();
            format!("Falco alert(s) at {}", priorities.into_iter().collect::<Vec<_>>().join("/"))
        }
        _ => format!("{sev} finding(s)"),
    };
    format!("{} {}{}{}: {}", findings.len(), which, if which.is_empty() { "" } else { " " }, what, names.join(", "))
}

fn summarize(delta: &DeltaFindings, suppressed: u64) -> Summary {
    let mut by_severity: BTreeMap<Severity, SeverityCounts> = Severity::ALL.iter().map(|s| (*s, SeverityCounts::default())).collect();
    let mut by_source: BTreeMap<Source, SeverityCounts> = Source::ALL.iter().map(|s| (*s, SeverityCounts::default())).collect();
    for (f, is_new) in delta.new.iter().map(|f| (f, true)).chain(delta.persisting.iter().map(|f| (f, false))) {
        for counts in [by_severity.entry(f.severity).or_default(), by_source.entry(f.source).or_default()] {
            counts.total += 1;
            if is_new {
                counts.new += 1;
            }
        }
    }
    Summary {
        new: delta.new.len() as u64,
        resolved: delta.resolved.len() as u64,
        persisting: delta.persisting.len() as u64,
        by_severity,
        by_source,
        suppressed,
    }
}
