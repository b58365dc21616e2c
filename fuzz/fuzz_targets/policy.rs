//! Any text as a policy file, compiled (the files it names do not exist: refused, never a panic).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(policy) = aegis_security::Policy::from_yaml(text)
    {
        let _ = aegis_security::GatePolicy::compile(policy, |_| Err("no files while fuzzing".into()));
    }
});
