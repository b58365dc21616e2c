//! One module per verb. Each returns the process exit code.

pub mod analyze;
pub mod falco;
pub mod gate;
pub mod incident;
pub mod operator;
pub mod probe;
pub mod scan;

use std::path::Path;

use aegis_model::{SecurityReport, Source};
use aegis_security::{GatePolicy, Policy};
use anyhow::{Context, Result};

use crate::cli::{OutputArgs, OutputFormat, PolicyArgs};
use crate::render;

/// Load the policy (defaults without `--policy`), resolving the files it names relative to it.
/// `only`: judge just these scanners (the `scan` verbs run one scanner each).
pub fn load_policy(args: &PolicyArgs, only: Option<&[Source]>) -> Result<GatePolicy> {
    let (policy, base) = match &args.policy {
        Some(path) => {
            let text = crate::input::read_text(path, crate::input::limits::SMALL_FILE)?;
            let policy = Policy::from_yaml(&text).with_context(|| format!("policy {}", path.display()))?;
            (policy, path.parent().map(Path::to_path_buf).unwrap_or_default())
        }
        None => (Policy::default(), std::path::PathBuf::from(".")),
    };
    let policy = match only {
        Some(sources) => policy.only(sources),
        None => policy,
    };
    let mut gp = GatePolicy::compile(policy, |rel| {
        crate::input::read_text(&base.join(rel), crate::input::limits::SMALL_FILE).map_err(|e| format!("{e:#}"))
    })?;
    for f in &args.trivyignore {
        let text = crate::input::read_text(f, crate::input::limits::SMALL_FILE)?;
        gp.add_trivy_ignore(&f.display().to_string(), &text)?;
    }
    Ok(gp)
}

/// Render the report as asked, write it, and return the verdict's exit code.
pub fn emit(report: &SecurityReport, out: &OutputArgs) -> Result<u8> {
    let text = match out.format {
        OutputFormat::Table => render::table::render(report, render::table::use_color(out.output_file.is_none())),
        OutputFormat::Json => serde_json::to_string_pretty(report)? + "\n",
        OutputFormat::Sarif => serde_json::to_string_pretty(&render::sarif::render(report))? + "\n",
        OutputFormat::Junit => render::junit::render(report)?,
    };
    match &out.output_file {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`aegis gate ... | head`) is not an error worth a stack of messages.
            let _ = stdout.write_all(text.as_bytes());
        }
    }
    Ok(report.verdict.exit_code())
}
