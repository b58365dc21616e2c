//! TLS set-up shared by every HTTP client in AEGIS.

/// Install ring as rustls' process-wide crypto provider (the same provider kube-rs uses by default).
/// Idempotent: later calls find it installed and do nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
