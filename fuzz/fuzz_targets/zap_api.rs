//! Any bytes as a ZAP daemon API answer (`/JSON/alert/view/alerts`), then turned into alerts.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(api) = aegis_security::zap::parse_api_alerts(data) {
        let _ = aegis_security::zap::alerts_from_api(&api, "http://api.shop.svc:8080");
    }
});
