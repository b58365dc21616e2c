//! The I/O edge of AEGIS's security gate: running Trivy, driving a ZAP daemon, receiving and storing
//! Falco alerts, and the runner that schedules them. Everything it produces is a plain
//! [`aegis_model::ScannerRun`]; the decision itself is `aegis_security::evaluate`, which does no I/O.

pub mod cache;
pub mod falco;
pub mod http;
pub mod process;
pub mod runner;
pub mod tls;
pub mod trivy;
pub mod zap;

pub use runner::{Deadlines, FalcoWindow, ImageRef, ManifestSource, ProgressSender, Runner, ScanProgress, Targets};
