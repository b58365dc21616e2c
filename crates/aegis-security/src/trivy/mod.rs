//! Trivy: report parsing, ignore files and status filters. Running the `trivy` binary lives in
//! `aegis-scanners`; everything here is pure.

mod ignore;
mod report;

pub use ignore::{IgnoreEntry, IgnoreList};
pub use report::{ParsedReport, canonical_check_id, parse_report};

use aegis_model::{Finding, FindingKind};
use jiff::civil::Date;

/// Why a Trivy report could not be used. Each variant blocks the gate: no variant means "clean".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrivyError {
    #[error("trivy produced empty output")]
    EmptyOutput,
    #[error("trivy output is not valid JSON (truncated or corrupt): {0}")]
    InvalidJson(String),
    #[error("JSON is not a Trivy report: {0}")]
    NotATrivyReport(String),
    #[error("unsupported Trivy report SchemaVersion {0} (AEGIS reads 2 and the legacy array)")]
    UnsupportedSchema(u32),
    #[error("invalid Trivy report field: {0}")]
    InvalidField(String),
    #[error("invalid ignore file: {0}")]
    IgnoreFile(String),
}

/// Statuses `--ignore-unfixed` drops (Trivy's definition).
pub const UNFIXED_STATUSES: [&str; 4] = ["affected", "will_not_fix", "fix_deferred", "end_of_life"];

/// Which findings to drop before the gate, as Trivy's `--ignorefile`, `--ignore-unfixed` and
/// `--ignore-status` would have.
#[derive(Debug, Clone, Copy)]
pub struct TrivyFilter<'a> {
    pub ignore: &'a IgnoreList,
    pub ignore_unfixed: bool,
    /// Vulnerability statuses to drop (lower case, as Trivy writes them).
    pub ignore_statuses: &'a [String],
}

impl TrivyFilter<'_> {
    /// Apply the filter; returns the findings kept and how many were dropped.
    pub fn apply(&self, findings: Vec<Finding>, today: Date) -> (Vec<Finding>, u64) {
        let before = findings.len();
        let kept: Vec<Finding> = findings.into_iter().filter(|f| !self.drops(f, today)).collect();
        let dropped = (before - kept.len()) as u64;
        (kept, dropped)
    }

    fn drops(&self, f: &Finding, today: Date) -> bool {
        if self.ignore.matching(f, today).is_some() {
            return true;
        }
        if f.kind != FindingKind::Vulnerability {
            return false;
        }
        let Some(pkg) = &f.package else { return false };
        let status = pkg.status.as_deref().map(str::to_ascii_lowercase);
        if let Some(s) = &status
            && self.ignore_statuses.iter().any(|i| i.eq_ignore_ascii_case(s))
        {
            return true;
        }
        if self.ignore_unfixed {
            return match &status {
                Some(s) => UNFIXED_STATUSES.contains(&s.as_str()),
                // Reports before statuses existed: unfixed means no fixed version.
                None => pkg.fixed_version.is_none(),
            };
        }
        false
    }
}
