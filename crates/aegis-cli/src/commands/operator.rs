//! `aegis operator run`.

use std::sync::Arc;

use aegis_model::Severity;
use aegis_operator::detect::Scope;
use aegis_operator::machine::ApprovalPolicy;
use aegis_operator::reconcile::Settings;
use aegis_operator::run::{FalcoConfig, LeaseConfig, OperatorConfig};
use anyhow::{Context, Result, bail};

use crate::cli::{OperatorCommand, OperatorRunArgs};
use crate::commands::analyze::{observed_client_for, runner_for, verify_options};
use crate::input::duration;

pub async fn run(cmd: &OperatorCommand) -> Result<u8> {
    match cmd {
        OperatorCommand::Run(a) => operator(a).await,
    }
}

/// The namespaces an operator never watches, besides shadows and its own.
const ALWAYS_EXCLUDED: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

async fn operator(a: &OperatorRunArgs) -> Result<u8> {
    let api_calls = aegis_operator::metrics::ApiCalls::default();
    let client = observed_client_for(a.cluster.kubeconfig.as_ref(), a.cluster.context.clone(), Some(api_calls.observer())).await?.0;
    let auto_approve_max_severity = match &a.auto_approve_max_severity {
        Some(s) => Some(Severity::try_from(s.to_ascii_uppercase()).map_err(|e| anyhow::anyhow!("--auto-approve-max-severity: {e}"))?),
        None => None,
    };
    let settings = Settings {
        approval: ApprovalPolicy { auto_approve_max_severity, timeout: duration(&a.approval_timeout, "--approval-timeout")? },
        monitor_window: duration(&a.monitor_window, "--monitor-window")?,
        rollout_timeout: duration(&a.rollout_timeout, "--rollout-timeout")?,
        field_manager: "aegis-operator".into(),
    };
    let v = &a.verification;
    let falco = match (a.falco_listen, &v.falco_store) {
        (Some(listen), Some(dir)) => {
            let token = match (&a.falco_token, &a.falco_token_secret) {
                (Some(t), _) => Some(t.clone()),
                (None, Some(secret)) => Some(aegis_operator::run::falco_token(&client, &a.lease_namespace, secret).await?),
                (None, None) => {
                    tracing::warn!("the Falco receiver accepts unauthenticated senders: give --falco-token or --falco-token-secret");
                    None
                }
            };
            Some(FalcoConfig { listen, store: dir.clone(), token })
        }
        (Some(_), None) => bail!("--falco-listen needs --falco-store (where the receiver writes and verifications read)"),
        (None, _) => None,
    };
    // The receiver (when served) opens the store itself; the runner gets it from there.
    let mut runner = runner_for(&crate::cli::VerifyArgs { falco_store: None, ..v.clone() }).await?;
    if falco.is_none()
        && let Some(location) = &v.falco_store
    {
        runner.falco = Some(aegis_scanners::falco::FalcoStore::open_to_read(location).await?);
    }
    let verify = verify_options(v, runner, &[])?;
    let policy_path = v.verify_policy.clone();
    // Checked now, so a bad policy file stops the operator at start rather than every verification.
    crate::commands::load_policy(&crate::cli::PolicyArgs { policy: policy_path.clone(), trivyignore: Vec::new() }, None)
        .context("--verify-policy")?;
    let policy_for: aegis_operator::run::PolicyFor = Arc::new(move |checks| {
        crate::commands::load_policy(&crate::cli::PolicyArgs { policy: policy_path.clone(), trivyignore: Vec::new() }, Some(checks))
            .map_err(|e| format!("{e:#}"))
    });
    let mut exclude: Vec<String> = ALWAYS_EXCLUDED.iter().map(|s| s.to_string()).collect();
    exclude.push(a.lease_namespace.clone());
    exclude.extend(a.exclude_namespaces.iter().cloned());
    let identity = a.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "aegis".into());
        format!("{host}-{}", std::process::id())
    });
    let config = OperatorConfig {
        scope: Scope { namespaces: a.watch_namespaces.clone(), opt_in: a.opt_in, label_selector: a.selector.clone(), exclude },
        settings,
        verify,
        policy_for,
        listen: a.listen,
        falco,
        lease: LeaseConfig {
            namespace: a.lease_namespace.clone(),
            name: a.lease_name.clone(),
            identity,
            duration: duration(&a.lease_duration, "--lease-duration")?,
            pod: a.pod_name.clone(),
        },
        concurrency: a.concurrency,
        debounce: duration(&a.debounce, "--debounce")?,
        resync: duration(&a.resync, "--resync")?,
        gc_interval: std::time::Duration::from_secs(60),
        api_calls,
    };
    aegis_operator::run::run(client, config, terminated()).await?;
    Ok(0)
}

/// SIGINT or SIGTERM: stop, release the Lease, exit 0.
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
    }
}
