//! The pure heart of AEGIS's security gate.
//!
//! Evidence comes in as scanner output (Trivy JSON, ZAP reports and API alerts, Falco alerts, Kubernetes
//! manifests), is normalised into [`aegis_model::Finding`]s, and is judged by [`gate::evaluate`] against
//! a [`policy::Policy`]. Nothing here performs I/O: running scanners, serving HTTP and storing alerts
//! live in `aegis-scanners`, so everything in this crate is testable with plain values.

pub mod evidence;
pub mod falco;
pub mod gate;
pub mod manifest;
pub mod policy;
pub mod trivy;
pub mod zap;

pub use gate::{Evidence, evaluate};
pub use policy::{GatePolicy, Policy};
