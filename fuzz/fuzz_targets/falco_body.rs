//! Any bytes as a Falco receiver request body (one alert, JSON lines, falcosidekick's webhook).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let now: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
    if let Ok(alerts) = aegis_security::falco::parse_body(data, now) {
        for a in &alerts {
            let _ = (a.dedup_key(), a.to_finding(), a.namespace());
        }
    }
});
