//! The markers production patches carry (the guarded patch itself is `aegis_k8s::apply`, the one path
//! shadows and production share).

/// The annotation that marks a production object as patched by an incident's fix.
pub const APPLIED_ANNOTATION: &str = "aegis.io/applied-fix";
/// The annotation that marks a production object as rolled back by an incident.
pub const ROLLED_BACK_ANNOTATION: &str = "aegis.io/rolled-back-fix";
