//! Any bytes as a ZAP JSON report (current and legacy).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = aegis_security::zap::parse_report(data);
});
