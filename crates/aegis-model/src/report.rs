//! The security report: the gate's one output.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Digest, Finding, Fingerprint, ScannerRunSummary, Severity, Source};

/// Version of the report's JSON shape. Bump the suffix on any incompatible change.
pub const REPORT_SCHEMA_VERSION: &str = "aegis.io/security-report/v1";

/// The gate's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Passed,
    PassedWithWarnings,
    Blocked,
    /// The gate could not evaluate (a required scanner gave no evidence). Treated as blocked.
    Error,
}

impl Verdict {
    /// Whether production may proceed. Only the two passing verdicts allow it.
    pub fn allows_production(self) -> bool {
        matches!(self, Verdict::Passed | Verdict::PassedWithWarnings)
    }

    /// The CLI's exit code: 0 passed, 1 blocked, 2 passed with warnings, 3 could not evaluate.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Passed => 0,
            Verdict::Blocked => 1,
            Verdict::PassedWithWarnings => 2,
            Verdict::Error => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::PassedWithWarnings => "passed_with_warnings",
            Verdict::Blocked => "blocked",
            Verdict::Error => "error",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the gate blocked, warned, or could not evaluate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GateReason {
    /// The policy rule that fired, e.g. `trivy.fail_on`, `scanner.required`, `falco.attribution`.
    pub rule: String,
    pub scanner: Option<Source>,
    pub message: String,
    /// Fingerprints of the findings this reason rests on (empty for scanner failures).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Fingerprint>,
}

/// Counts of new and total (candidate) findings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SeverityCounts {
    pub new: u64,
    pub total: u64,
}

/// The same counts, per source.
pub type SourceCounts = SeverityCounts;

/// Headline numbers of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub new: u64,
    pub resolved: u64,
    pub persisting: u64,
    /// Candidate findings by severity; every severity is present.
    pub by_severity: BTreeMap<Severity, SeverityCounts>,
    /// Candidate findings by source; every source is present.
    pub by_source: BTreeMap<Source, SourceCounts>,
    /// Findings dropped by exceptions, ignore files, status filters, rules files and allowlists.
    pub suppressed: u64,
}

/// Candidate findings compared with the baseline, by fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeltaFindings {
    /// In the candidate, not in the baseline: introduced by the fix (or everything, without a baseline).
    pub new: Vec<Finding>,
    /// In the baseline, not in the candidate: removed by the fix.
    pub resolved: Vec<Finding>,
    /// In both (listed as the candidate has them).
    pub persisting: Vec<Finding>,
}

/// The typed security report: verdict, reasons, findings and the evidence behind them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecurityReport {
    pub schema_version: String,
    pub verdict: Verdict,
    /// What blocked the verdict (empty when it passed).
    pub reasons: Vec<GateReason>,
    /// What did not block but should be read.
    pub warnings: Vec<GateReason>,
    pub summary: Summary,
    pub findings: DeltaFindings,
    pub scanners: Vec<ScannerRunSummary>,
    /// Digest of the effective policy (defaults applied), so the verdict names the rules it used.
    pub policy_digest: Digest,
    /// Digest of all baseline and candidate evidence the verdict was computed from.
    pub evidence_digest: Digest,
    /// Whether baseline evidence was given at all; without it every finding is new.
    pub has_baseline: bool,
    pub generated_at: Timestamp,
}
