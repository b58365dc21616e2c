//! Falco: the HTTP receiver, the durable alert store, and window evidence for the gate.

mod receiver;
mod store;

pub use receiver::{ReceiverConfig, ReceiverCounters, router, serve};
pub use store::{AlertQuery, FalcoStore, InsertOutcome, PostgresStore, SqliteStore, StoreConfig, StoreError, StoreLocation};

use aegis_model::{ScannerRun, Side, Source};
use aegis_security::evidence::falco_run;
use jiff::Timestamp;

/// Falco evidence for a namespace over a window: its alerts, the unattributed ones, and whether the
/// feed was alive at all (no alert and no internal message means missing evidence, not a clean result).
pub async fn window_evidence(store: &FalcoStore, namespace: &str, since: Timestamp, until: Timestamp, side: Side) -> ScannerRun {
    let started = Timestamp::now();
    let clock = std::time::Instant::now();
    let target = format!("namespace {namespace}, {since} .. {until}");
    let mut run = ScannerRun::new(Source::Falco, side, target.clone(), started);
    let q = AlertQuery {
        namespace: Some(namespace.to_owned()),
        include_unattributed: true,
        since: Some(since),
        until: Some(until),
        include_internal: true,
        limit: 100_000,
        ..Default::default()
    };
    let result = async {
        Ok::<_, StoreError>((store.query(&q).await?, store.heartbeat(since, until).await?, store.refused(namespace, since, until).await?))
    }
    .await;
    run.duration_ms = clock.elapsed().as_millis() as u64;
    match result {
        Err(e) => ScannerRun::failed(Source::Falco, side, target, started, e.to_string()),
        Ok((alerts, heartbeat, refused)) => {
            if alerts.len() >= q.limit {
                run.notes.push(format!("more than {} alerts in the window; the most severe {} were judged", q.limit, q.limit));
            }
            falco_run(run, &alerts, &refused, Some(namespace), heartbeat)
        }
    }
}
