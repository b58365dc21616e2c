//! Any text as a snapshot (a kubectl List in YAML or JSON), then the whole analysis on it: every
//! detector, fix rule and renderer must cope with whatever objects a cluster (or a file) holds.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(snapshot) = aegis_analysis::Snapshot::from_text(text)
    {
        let _ = aegis_analysis::analyze(&snapshot);
    }
});
