//! `aegis`: the CLI and `aegis operator run`.
//!
//! Exit codes: 0 passed (or success), 1 blocked, 2 passed with warnings, 3 could not evaluate or
//! failed to run, 64 bad usage.

mod cli;
mod commands;
mod input;
mod progress;
mod render;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::{Cli, Command, SchemaKind};

const EXIT_ERROR: u8 = 3;
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_tracing(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(dispatch(&cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn dispatch(cli: &Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Gate(a) => commands::gate::run(a),
        Command::Analyze(a) => commands::analyze::run(a).await,
        Command::Snapshot(a) => commands::analyze::snapshot(a).await,
        Command::Shadow(c) => commands::analyze::shadow(c).await,
        Command::Scan(c) => commands::scan::run(c).await,
        Command::Falco(c) => commands::falco::run(c).await,
        Command::Incident(c) => commands::incident::run(c).await,
        Command::Operator(c) => commands::operator::run(c).await,
        Command::Probe(c) => commands::probe::run(c).await,
        Command::Crd { format } => commands::incident::crd(*format),
        Command::Schema { which } => {
            let schema = match which {
                SchemaKind::Report => schemars::schema_for!(aegis_model::SecurityReport),
                SchemaKind::Policy => schemars::schema_for!(aegis_security::Policy),
                SchemaKind::Fix => schemars::schema_for!(aegis_model::FixAction),
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(0)
        }
    }
}

fn init_tracing(cli: &Cli) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cli.log_json { builder.json().init() } else { builder.init() }
}
