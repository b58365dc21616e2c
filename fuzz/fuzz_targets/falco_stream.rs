//! Any text as a Falco output stream (alerts mixed with log lines).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let now: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let _ = aegis_security::falco::parse_stream(text, now);
    }
});
