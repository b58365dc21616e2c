//! The nouns every AEGIS stage shares.
//!
//! This crate is pure data: no I/O, no async, no knowledge of any scanner's wire format or API server. Parsers in
//! `aegis-security` translate Trivy, ZAP, Falco and manifest checks *into* these types; the gate, the
//! shadow runner, the operator and the CLI all speak them. Every type derives `serde` and `schemars` so
//! the JSON a user sees is the schema we publish (`aegis schema report`).

mod digest;
mod finding;
mod incident;
mod report;
mod run;
mod severity;

pub use digest::{Digest, Fingerprint};
pub use finding::{Finding, FindingKind, Package, Source, Target};
pub use incident::{Category, Fix, FixAction, FixOrigin, Incident, Patch, PatchType, ProbeKind, ResourceRef, VerificationPlan};
pub use report::{DeltaFindings, GateReason, REPORT_SCHEMA_VERSION, SecurityReport, SeverityCounts, SourceCounts, Summary, Verdict};
pub use run::{RunStatus, ScannerRun, ScannerRunSummary, Side};
pub use severity::{FalcoPriority, ParseEnumError, Severity, ZapConfidence, ZapRisk};
