//! `aegis gate`: judge evidence files.

use aegis_model::Side;
use aegis_security::evidence::{self, LoadOptions};
use aegis_security::{Evidence, evaluate};
use anyhow::{Result, anyhow};
use jiff::Timestamp;

use crate::cli::GateArgs;

pub fn run(args: &GateArgs) -> Result<u8> {
    let policy = super::load_policy(&args.policy, None)?;
    let opts = LoadOptions { namespace: args.namespace.clone() };
    let max = crate::input::mib(args.max_file_mib, "--max-file-mib")?;
    let now = Timestamp::now();
    let load_side = |paths: &[std::path::PathBuf], side: Side| -> Result<Evidence> {
        let mut runs = Vec::new();
        for path in paths {
            let bytes = crate::input::read_limited(path, max)?;
            let kind = evidence::detect(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
            runs.push(evidence::load(kind, &path.display().to_string(), &bytes, side, &policy, &opts, now));
        }
        Ok(Evidence::new(runs))
    };
    let baseline = if args.baseline.is_empty() { None } else { Some(load_side(&args.baseline, Side::Baseline)?) };
    let candidate = load_side(&args.candidate, Side::Candidate)?;
    let report = evaluate(&policy, baseline.as_ref(), &candidate, now);
    super::emit(&report, &args.output)
}
