//! Incidents on a terminal, in the order an SRE reads them: Root Cause Analysis, Proposed Fix (with
//! the patch), Verification Plan. (The Security Report panel follows once a verification has run.)

use std::fmt::Write;

use aegis_model::{Incident, PatchType};

pub fn render(incidents: &[Incident], verifications: &[Option<aegis_verify::VerificationResult>], color: bool) -> String {
    // Root causes quote events, fixes may come from a model: terminal-safe before the panels' own styling.
    let incidents = &super::safe::sanitized(&incidents.to_vec());
    let verifications = &super::safe::sanitized(&verifications.to_vec());
    let bold = |t: &str| if color { format!("\x1b[1m{t}\x1b[0m") } else { t.to_owned() };
    let mut out = String::new();
    if incidents.is_empty() {
        out.push_str("No incidents found.\n");
        return out;
    }
    for (n, i) in incidents.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}",
            bold(&format!("━━ Incident {}/{}: {} {} ({}) ━━", n + 1, incidents.len(), i.category, i.resource, i.severity))
        );
        let _ = writeln!(out, "{}", bold("Root Cause Analysis"));
        let _ = writeln!(out, "  {}", i.root_cause);
        let _ = writeln!(out, "  confidence {:.0}%", i.confidence * 100.0);
        for e in &i.evidence {
            let _ = writeln!(out, "  • {e}");
        }
        if !i.pods.is_empty() {
            let _ = writeln!(out, "  pods: {}", i.pods.join(", "));
        }
        let _ = writeln!(out, "{}", bold("Proposed Fix"));
        match &i.fix.origin {
            aegis_model::FixOrigin::Model { model } => {
                let _ = writeln!(out, "  from the model {model}: a suggestion, vetted by AEGIS; it needs a human's approval");
            }
            aegis_model::FixOrigin::Human => {
                let _ = writeln!(out, "  written by hand");
            }
            aegis_model::FixOrigin::Rules => {}
        }
        let _ = writeln!(out, "  [{}] {}", i.fix.action.kind(), i.fix.summary);
        if let aegis_model::FixAction::Manual { guidance } = &i.fix.action {
            let _ = writeln!(out, "  {guidance}");
        }
        if let Some(p) = &i.fix.patch {
            let kind = match p.patch_type {
                PatchType::StrategicMerge => "strategic merge",
                PatchType::Json => "JSON patch",
            };
            let _ = writeln!(out, "  patch ({kind}) on {}:", p.target);
            let body = serde_json::to_string_pretty(&p.body).unwrap_or_default();
            // A rollback carries a whole pod template: show its head, the JSON output has all of it.
            for line in body.lines().take(40) {
                let _ = writeln!(out, "    {line}");
            }
            if body.lines().count() > 40 {
                let _ = writeln!(out, "    … ({} more lines; -o json shows the whole patch and its inverse)", body.lines().count() - 40);
            }
        }
        let p = &i.verification_plan;
        let _ = writeln!(out, "{}", bold("Verification Plan"));
        if i.fix.patch.is_none() {
            // A manual fix is never applied by AEGIS, so no shadow proves it (`--verify` skips it, the
            // operator marks the incident Failed with the guidance).
            let _ = writeln!(
                out,
                "  none: nothing for AEGIS to apply or verify; once the change is made, `aegis analyze` shows whether the incident is gone"
            );
        } else {
            let _ = writeln!(
                out,
                "  watch {}s in a shadow; approval {}",
                p.duration_seconds,
                if p.approval_required { "required" } else { "not required" }
            );
            for c in &p.health_criteria {
                let _ = writeln!(out, "  ✓ {c}");
            }
            let checks: Vec<&str> = p.security_checks.iter().map(|s| s.tool_name()).collect();
            let _ = writeln!(out, "  security: {}", checks.join(", "));
            if !p.smoke_paths.is_empty() {
                let _ = writeln!(out, "  smoke checks: GET {}", p.smoke_paths.join(", GET "));
            }
        }
        if let Some(Some(v)) = verifications.get(n) {
            let _ = writeln!(out, "{}", bold("Verification"));
            out.push_str(&verification(v, color));
        }
        out.push('\n');
    }
    out
}

/// One verification's result: verdict, health and what it saw, where the time went, the smoke checks,
/// and the security report (scanners, findings, reasons). For `analyze --verify` and `incident show`.
pub fn verification(v: &aegis_verify::VerificationResult, color: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "  {} in shadow {} ({:.1}s)", v.verdict, v.shadow_namespace, v.timings.total_ms as f64 / 1000.0);
    let _ = writeln!(out, "  health: {}", if v.health.healthy { "healthy".to_owned() } else { v.health.reasons.join("; ") });
    for o in &v.health.observations {
        let _ = writeln!(out, "  • {o}");
    }
    let t = &v.timings;
    let _ = writeln!(
        out,
        "  timings: shadow {}ms, baseline scan {}ms ∥ apply {}ms + health {}ms, candidate scan {}ms",
        t.shadow_create_ms, t.baseline_scan_ms, t.apply_ms, t.health_ms, t.candidate_scan_ms
    );
    for c in &v.smoke_checks {
        let _ = writeln!(out, "  smoke GET {}: {} ({})", c.url, c.outcome, c.detail);
    }
    let _ = writeln!(out, "  isolation: {} ({})", v.isolation.status, v.isolation.detail);
    for p in &v.isolation.probes {
        let what = if p.reached { "reached" } else { "blocked" };
        let _ = writeln!(
            out,
            "    {what} {} at {}{}",
            p.target,
            p.address,
            if p.detail.is_empty() { String::new() } else { format!(": {}", p.detail) }
        );
    }
    if let Some(report) = &v.security {
        out.push_str(&crate::render::table::render(report, color));
    }
    out
}
