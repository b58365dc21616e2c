//! Renderers of a security report: a terminal panel, SARIF 2.1.0, JUnit XML. (JSON is the report's
//! own serialisation.)

pub mod incidents;
pub mod junit;
pub mod safe;
pub mod sarif;
pub mod table;

use std::collections::HashSet;

use aegis_model::{Finding, Fingerprint, SecurityReport};

/// How a finding figures in the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Blocking,
    Warning,
    Informational,
}

/// Classify findings by the reasons that cite them.
pub struct Standings {
    blocking: HashSet<Fingerprint>,
    warning: HashSet<Fingerprint>,
}

impl Standings {
    pub fn of(report: &SecurityReport) -> Self {
        let collect = |rs: &[aegis_model::GateReason]| rs.iter().flat_map(|r| r.findings.iter().cloned()).collect();
        Standings { blocking: collect(&report.reasons), warning: collect(&report.warnings) }
    }

    pub fn get(&self, f: &Finding) -> Standing {
        if self.blocking.contains(&f.fingerprint) {
            Standing::Blocking
        } else if self.warning.contains(&f.fingerprint) {
            Standing::Warning
        } else {
            Standing::Informational
        }
    }
}
