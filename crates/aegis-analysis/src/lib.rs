//! Incident analysis: a typed snapshot of a namespace in; incidents out, each with a root cause backed
//! by evidence, a typed fix that renders to its patch and inverse, and a verification plan.
//!
//! Pure and deterministic: the same snapshot always gives the same incidents. Reading a live cluster is
//! the caller's job (kube-rs lists objects; [`Snapshot::from_objects`] takes them).

pub mod analyze;
mod daemonsets;
pub mod diff;
pub mod external;
pub mod gateway;
pub mod lint;
mod objects;
pub mod render;
pub mod signals;
pub mod snapshot;
pub mod workload;

pub use analyze::{analyze, plan_for, render_fix};
pub use external::propose_model_fix;
pub use snapshot::{Snapshot, SnapshotError};
