//! The operator: AEGIS inside the cluster.
//!
//! It closes the pipeline's loop — detect → analyze → verify → decide → apply → watch — as a durable
//! state machine on `Incident` objects (`incidents.aegis.io`). Every step is idempotent and resumable:
//! the state lives in the Incident's status, production patches carry a marker annotation so a patch
//! is never sent twice, and an interrupted verification's shadow is deleted when the step resumes.
//!
//! | module | job |
//! |---|---|
//! | [`crd`] | the Incident resource, its phases and status; deterministic names |
//! | [`machine`] | pure decisions: approvals bound to evidence, expiry, transitions, conditions |
//! | [`reconcile`] | one step of one Incident per reconcile, status written with optimistic concurrency |
//! | [`apply`] | production patches guarded by a resourceVersion precondition and a marker annotation |
//! | [`evidence`] | the full verification result in a ConfigMap owned by the Incident, named by digest |
//! | [`metrics`] | Prometheus metrics |
//! | [`failpoint`] | `AEGIS_FAILPOINT`: crash points for the resume tests |
//! | [`detect`] | watches → dirty namespaces → snapshot + analysis → Incidents under deterministic names |
//! | [`run`] | `aegis operator run`: Lease, controller, detection, shadow collector, Falco receiver, HTTP |

pub mod apply;
pub mod crd;
pub mod detect;
pub mod evidence;
pub mod failpoint;
pub mod machine;
pub mod metrics;
pub mod reconcile;
pub mod run;
pub mod work;

pub use crd::{Incident, IncidentSpec, IncidentStatus, Phase, crd, incident_name};
