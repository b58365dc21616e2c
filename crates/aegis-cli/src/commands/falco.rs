//! `aegis falco serve|query`.

use aegis_model::FalcoPriority;
use aegis_scanners::falco::{AlertQuery, FalcoStore, ReceiverConfig, StoreConfig, serve as serve_receiver};
use anyhow::{Context, Result};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use jiff::Timestamp;

use crate::cli::{FalcoCommand, FalcoQueryArgs, FalcoServeArgs};
use crate::input;

pub async fn run(cmd: &FalcoCommand) -> Result<u8> {
    match cmd {
        FalcoCommand::Serve(a) => serve(a).await,
        FalcoCommand::Query(a) => query(a).await,
    }
}

async fn serve(a: &FalcoServeArgs) -> Result<u8> {
    let mut config = StoreConfig::new("");
    config.max_age = input::duration(&a.retention, "--retention")?;
    config.max_alerts = a.max_alerts;
    config.fsync = !a.no_fsync;
    let store = FalcoStore::open_at(&a.store, config.clone()).await?;
    // Retention also runs every minute, so a quiet receiver still forgets old alerts.
    let pruner = store.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = pruner.prune_now(&config, Timestamp::now()).await {
                tracing::warn!(error = %e, "retention failed");
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(a.listen).await.with_context(|| format!("cannot listen on {}", a.listen))?;
    let addr = listener.local_addr()?;
    let path = store.location();
    tracing::info!(%addr, store = %path, auth = a.token.is_some(), "falco receiver listening");
    eprintln!("aegis falco receiver listening on http://{addr} (store {path})");
    let config = ReceiverConfig { token: a.token.clone(), max_body: a.max_body, ..Default::default() };
    let limits = aegis_scanners::http::ServerLimits { max_connections: a.max_connections, ..Default::default() };
    serve_receiver(listener, store, config, limits, shutdown_signal()).await.context("receiver failed")?;
    eprintln!("aegis falco receiver stopped");
    Ok(0)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = ctrl_c => {},
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {},
    }
}

async fn query(a: &FalcoQueryArgs) -> Result<u8> {
    let store = FalcoStore::open_to_read(&a.store).await?;
    let since = Timestamp::now()
        .checked_sub(jiff::SignedDuration::try_from(input::duration(&a.since, "--since")?)?)
        .context("--since reaches before the epoch")?;
    let min_priority = a.min_priority.as_deref().map(str::parse::<FalcoPriority>).transpose()?;
    let alerts = store
        .query(&AlertQuery {
            namespace: a.namespace.clone(),
            include_unattributed: a.include_unattributed,
            pod: a.pod.clone(),
            workload: a.workload.clone(),
            since: Some(since),
            until: None,
            min_priority,
            include_internal: false,
            limit: if a.count { 0 } else { a.limit },
        })
        .await?;
    if a.count {
        println!("{}", alerts.len());
        return Ok(0);
    }
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&alerts)?);
        return Ok(0);
    }
    // Alert fields are written by whoever can reach the receiver: terminal-safe first.
    let alerts = crate::render::safe::sanitized(&alerts);
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    t.set_header(["TIME", "PRIORITY", "RULE", "NAMESPACE", "POD", "OUTPUT"]);
    for al in &alerts {
        let output: String = al.output.chars().take(80).collect();
        t.add_row([
            al.time.to_string(),
            al.priority.to_string(),
            al.rule.clone(),
            al.namespace().unwrap_or("<none>").to_owned(),
            al.pod().unwrap_or("").to_owned(),
            output,
        ]);
    }
    println!("{t}");
    println!("{} alert(s)", alerts.len());
    Ok(0)
}
