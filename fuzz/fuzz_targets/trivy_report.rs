//! Any bytes as a Trivy JSON report (every layout: legacy array, SchemaVersion 2, `trivy k8s`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = aegis_security::trivy::parse_report(data);
});
