//! The terminal "Security Report" panel.

use std::fmt::Write;
use std::io::IsTerminal;

use aegis_model::{RunStatus, SecurityReport, Severity, Verdict};
use comfy_table::{Cell, Color, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use super::{Standing, Standings};

/// Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org).
pub fn use_color(to_stdout: bool) -> bool {
    to_stdout && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

const TOP_FINDINGS: usize = 10;

fn severity_color(s: Severity) -> Color {
    match s {
        Severity::Critical => Color::Magenta,
        Severity::High => Color::Red,
        Severity::Medium => Color::Yellow,
        Severity::Low => Color::Blue,
        Severity::Unknown => Color::Grey,
    }
}

fn table(color: bool) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    if !color {
        t.force_no_tty();
    }
    t
}

fn cell(text: impl ToString, color: Option<Color>, use_color: bool) -> Cell {
    let c = Cell::new(text);
    match (color, use_color) {
        (Some(col), true) => c.fg(col),
        _ => c,
    }
}

pub fn render(r: &SecurityReport, color: bool) -> String {
    // Every string in a report may come from outside (titles, messages, targets): made terminal-safe
    // before the panel adds its own colours.
    let r = &super::safe::sanitized(r);
    let mut out = String::new();
    let verdict = match r.verdict {
        Verdict::Passed => "PASSED",
        Verdict::PassedWithWarnings => "PASSED WITH WARNINGS",
        Verdict::Blocked => "BLOCKED",
        Verdict::Error => "ERROR (could not evaluate: treated as blocked)",
    };
    let paint = |text: &str, code: &str| if color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() };
    let verdict_code = match r.verdict {
        Verdict::Passed => "1;32",
        Verdict::PassedWithWarnings => "1;33",
        Verdict::Blocked | Verdict::Error => "1;31",
    };
    let _ = writeln!(out, "{}", paint("━━ Security Report ━━", "1"));
    let _ = writeln!(out, "Verdict:   {}", paint(verdict, verdict_code));
    let s = &r.summary;
    let _ = writeln!(
        out,
        "Findings:  {} new · {} resolved · {} persisting · {} suppressed{}",
        s.new,
        s.resolved,
        s.persisting,
        s.suppressed,
        if r.has_baseline { "" } else { "  (no baseline: every finding counts as new)" }
    );
    for reason in &r.reasons {
        let _ = writeln!(out, "  {} [{}] {}", paint("✗", "31"), reason.rule, reason.message);
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  {} [{}] {}", paint("!", "33"), w.rule, w.message);
    }
    out.push('\n');

    let mut counts = table(color);
    counts.set_header(["", "CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]);
    let by_sev = |new: bool| -> Vec<Cell> {
        Severity::ALL
            .iter()
            .rev()
            .map(|sev| {
                let c = s.by_severity.get(sev).copied().unwrap_or_default();
                let n = if new { c.new } else { c.total };
                cell(n, (n > 0).then(|| severity_color(*sev)), color)
            })
            .collect()
    };
    counts.add_row(std::iter::once(Cell::new("new")).chain(by_sev(true)));
    counts.add_row(std::iter::once(Cell::new("total")).chain(by_sev(false)));
    let _ = writeln!(out, "{counts}");

    let mut sources = table(color);
    sources.set_header(["SOURCE", "NEW", "TOTAL"]);
    for (src, c) in &s.by_source {
        sources.add_row([src.tool_name().to_owned(), c.new.to_string(), c.total.to_string()]);
    }
    let _ = writeln!(out, "{sources}");

    if !r.findings.new.is_empty() {
        let standings = Standings::of(r);
        let mut t = table(color);
        t.set_header(["", "SEVERITY", "SOURCE", "ID", "TITLE", "WHERE", "FIX"]);
        for f in r.findings.new.iter().take(TOP_FINDINGS) {
            let mark = match standings.get(f) {
                Standing::Blocking => cell("✗", Some(Color::Red), color),
                Standing::Warning => cell("!", Some(Color::Yellow), color),
                Standing::Informational => Cell::new(""),
            };
            let place = match &f.location {
                Some(l) => format!("{}\n{l}", f.target),
                None => f.target.to_string(),
            };
            let fix = f.package.as_ref().and_then(|p| p.fixed_version.clone()).unwrap_or_default();
            t.add_row(vec![
                mark,
                cell(f.severity, Some(severity_color(f.severity)), color),
                Cell::new(f.source),
                Cell::new(&f.id),
                Cell::new(truncate(&f.title, 60)),
                Cell::new(truncate(&place, 80)),
                Cell::new(fix),
            ]);
        }
        let _ = writeln!(out, "Most severe new findings ({} of {}):", r.findings.new.len().min(TOP_FINDINGS), r.findings.new.len());
        let _ = writeln!(out, "{t}");
    }

    let mut scanners = table(color);
    scanners.set_header(["SIDE", "SCANNER", "STATUS", "VERSION", "TARGET", "TIME", "FINDINGS"]);
    for run in &r.scanners {
        let status_color = match run.status {
            RunStatus::Ok => Color::Green,
            RunStatus::Skipped { .. } => Color::Yellow,
            RunStatus::Incomplete { .. } | RunStatus::Failed { .. } => Color::Red,
        };
        let status = match run.status.reason() {
            Some(reason) => format!("{}: {}", run.status.label(), truncate(reason, 70)),
            None => run.status.label().to_owned(),
        };
        scanners.add_row(vec![
            Cell::new(run.side.as_str()),
            Cell::new(run.scanner.tool_name()),
            cell(status, Some(status_color), color),
            Cell::new(run.tool_version.as_deref().unwrap_or("-")),
            Cell::new(truncate(&run.target, 50)),
            Cell::new(format!("{:.1}s", run.duration_ms as f64 / 1000.0)),
            Cell::new(run.findings),
        ]);
    }
    let _ = writeln!(out, "Scanners:\n{scanners}");
    let _ = writeln!(out, "policy {}  evidence {}", r.policy_digest, r.evidence_digest);
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}
