//! Any text as a `.trivyignore` / `.trivyignore.yaml` and as a zap-baseline rules file.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = aegis_security::trivy::IgnoreList::parse_any(text);
        if let Ok(rules) = aegis_security::zap::ZapRules::parse(text) {
            let _ = rules.in_scope("10021", "http://api.shop.svc/");
        }
    }
});
