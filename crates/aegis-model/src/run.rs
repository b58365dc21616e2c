//! One scanner's run over one target: the unit of evidence.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Finding, Source};

/// Which side of the comparison a run belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The workload before the fix (production as it is).
    Baseline,
    /// The workload after the fix (the shadow copy).
    Candidate,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Baseline => "baseline",
            Side::Candidate => "candidate",
        }
    }
}

/// How a scanner run ended. Only `Ok` is complete evidence; the gate treats the others as missing
/// evidence. An `Incomplete` run still carries the findings it could read, and they are judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum RunStatus {
    Ok,
    /// Ran, but part of its input could not be read or scanned (an alert line that is not an alert, a
    /// resource Trivy could not pull): what it read is judged, what it could not read cannot be cleared.
    Incomplete {
        reason: String,
    },
    /// Deliberately not run (disabled by policy, nothing to scan). Never counts as clean for a
    /// required scanner.
    Skipped {
        reason: String,
    },
    /// Tried and failed: missing binary, timeout, bad exit, unreadable output.
    Failed {
        reason: String,
    },
}

impl RunStatus {
    /// Complete evidence.
    pub fn is_ok(&self) -> bool {
        matches!(self, RunStatus::Ok)
    }

    /// Whether the run's findings are evidence (complete or not): `Ok` and `Incomplete`.
    pub fn has_findings(&self) -> bool {
        matches!(self, RunStatus::Ok | RunStatus::Incomplete { .. })
    }

    pub fn label(&self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Incomplete { .. } => "incomplete",
            RunStatus::Skipped { .. } => "skipped",
            RunStatus::Failed { .. } => "failed",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            RunStatus::Ok => None,
            RunStatus::Incomplete { reason } | RunStatus::Skipped { reason } | RunStatus::Failed { reason } => Some(reason),
        }
    }
}

/// The record of one scanner run, with its findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ScannerRun {
    pub scanner: Source,
    pub side: Side,
    /// The tool's version as it reported it (`trivy --version`, ZAP `core/view/version`, report headers).
    pub tool_version: Option<String>,
    /// Human-readable description of what was scanned (image reference, path, URL, namespace and window).
    pub target: String,
    pub started: Timestamp,
    pub duration_ms: u64,
    pub status: RunStatus,
    pub findings: Vec<Finding>,
    /// Findings dropped by ignore lists, status filters, rules files or false-positive confidence.
    /// Counted so that nothing disappears silently.
    #[serde(default)]
    pub suppressed: u64,
    /// Free-form notes that matter to a reader ("baseline served from cache", "3 non-JSON lines skipped").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl ScannerRun {
    /// A successful run with no findings yet, to be filled in by the scanner.
    pub fn new(scanner: Source, side: Side, target: impl Into<String>, started: Timestamp) -> Self {
        ScannerRun {
            scanner,
            side,
            tool_version: None,
            target: target.into(),
            started,
            duration_ms: 0,
            status: RunStatus::Ok,
            findings: Vec::new(),
            suppressed: 0,
            notes: Vec::new(),
        }
    }

    /// A run that failed before producing any evidence.
    pub fn failed(scanner: Source, side: Side, target: impl Into<String>, started: Timestamp, reason: impl Into<String>) -> Self {
        ScannerRun { status: RunStatus::Failed { reason: reason.into() }, ..ScannerRun::new(scanner, side, target, started) }
    }

    /// Mark the run incomplete: part of its input could not be read. A failed run stays failed.
    pub fn mark_incomplete(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        self.status = match std::mem::replace(&mut self.status, RunStatus::Ok) {
            RunStatus::Ok => RunStatus::Incomplete { reason },
            RunStatus::Incomplete { reason: before } => RunStatus::Incomplete { reason: format!("{before}; {reason}") },
            other => other,
        };
    }

    /// A run deliberately not made (nothing to scan, scanner not configured).
    pub fn skipped(scanner: Source, side: Side, target: impl Into<String>, started: Timestamp, reason: impl Into<String>) -> Self {
        ScannerRun { status: RunStatus::Skipped { reason: reason.into() }, ..ScannerRun::new(scanner, side, target, started) }
    }

    pub fn summary(&self) -> ScannerRunSummary {
        ScannerRunSummary {
            scanner: self.scanner,
            side: self.side,
            tool_version: self.tool_version.clone(),
            target: self.target.clone(),
            started: self.started,
            duration_ms: self.duration_ms,
            status: self.status.clone(),
            findings: self.findings.len() as u64,
            suppressed: self.suppressed,
            notes: self.notes.clone(),
        }
    }
}

/// A scanner run as it appears in a report: everything but the findings themselves, which the report
/// lists once, classified as new, resolved or persisting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ScannerRunSummary {
    pub scanner: Source,
    pub side: Side,
    pub tool_version: Option<String>,
    pub target: String,
    pub started: Timestamp,
    pub duration_ms: u64,
    pub status: RunStatus,
    pub findings: u64,
    pub suppressed: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
