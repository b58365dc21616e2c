//! Any bytes as an evidence file, as `aegis gate` reads it: recognised by content, loaded, then
//! judged by the gate against itself as baseline and alone.
#![no_main]
use aegis_model::Side;
use aegis_security::evidence::{LoadOptions, detect, load};
use aegis_security::{Evidence, GatePolicy, Policy, evaluate};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(kind) = detect(data) else { return };
    let now: jiff::Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
    let Ok(policy) = GatePolicy::compile(Policy::default(), |_| Err("none".into())) else { return };
    let candidate = Evidence::new(vec![load(kind, "fuzz", data, Side::Candidate, &policy, &LoadOptions::default(), now)]);
    let baseline = Evidence::new(vec![load(kind, "fuzz", data, Side::Baseline, &policy, &LoadOptions::default(), now)]);
    let _ = evaluate(&policy, Some(&baseline), &candidate, now);
    let _ = evaluate(&policy, None, &candidate, now);
});
