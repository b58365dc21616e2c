//! The Falco store's two backends behave alike: each behaviour below runs on the embedded SQLite store
//! and on a real PostgreSQL (the harness' `scripts/harness/postgres.sh`, `AEGIS_POSTGRES_DSN`), each
//! test in a database of its own. PostgreSQL also shows what it is for: two replicas writing one store.

use std::time::Duration;

use aegis_model::{FalcoPriority, RunStatus, Side};
use aegis_scanners::falco::{AlertQuery, FalcoStore, StoreConfig, window_evidence};
use aegis_security::falco::{FalcoAlert, parse_body};
use jiff::Timestamp;

/// Both backends, empty: `(label, store, keep-alive)` — the temp dir lives as long as the SQLite store.
async fn backends(test: &str, config: impl Fn() -> StoreConfig) -> Vec<(&'static str, FalcoStore, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = FalcoStore::open(StoreConfig { dir: dir.path().to_owned(), ..config() }).unwrap();
    let postgres = FalcoStore::connect(&aegis_testkit::postgres_database(&format!("t_{test}")).await, config()).await.unwrap();
    vec![("sqlite", sqlite, Some(dir)), ("postgres", postgres, None)]
}

fn alert(namespace: Option<&str>, pod: &str, priority: &str, at: Timestamp, uuid: Option<&str>) -> FalcoAlert {
    let ns = namespace.map(|n| format!(r#","k8s.ns.name":"{n}""#)).unwrap_or_default();
    let uuid = uuid.map(|u| format!(r#","uuid":"{u}""#)).unwrap_or_default();
    let body = format!(
        r#"{{"rule":"Terminal shell in container","priority":"{priority}","time":"{at}","output":"shell in {pod}","output_fields":{{"k8s.pod.name":"{pod}"{ns}}}{uuid}}}"#
    );
    parse_body(body.as_bytes(), at).unwrap().remove(0)
}

fn ago(secs: i64) -> Timestamp {
    Timestamp::now().checked_sub(jiff::SignedDuration::from_secs(secs)).unwrap()
}

#[tokio::test]
async fn a_retried_alert_is_stored_once_within_a_request_and_across_requests() {
    for (backend, store, _dir) in backends("dedup", || StoreConfig::new("")).await {
        let now = Timestamp::now();
        let a = alert(Some("shop"), "api-1", "Warning", now, Some("u-1"));
        let b = alert(Some("shop"), "api-1", "Warning", now, None);
        let first = store.insert(vec![a.clone(), b.clone(), a.clone()], now).await.unwrap();
        assert_eq!((first.stored, first.duplicates), (2, 1), "{backend}");
        let retry = store.insert(vec![a, b], now).await.unwrap();
        assert_eq!((retry.stored, retry.duplicates), (0, 2), "{backend}");
        assert_eq!(store.count().await.unwrap(), 2, "{backend}");
    }
}

#[tokio::test]
async fn alerts_are_read_by_namespace_pod_workload_window_and_priority_most_severe_first() {
    for (backend, store, _dir) in backends("query", || StoreConfig::new("")).await {
        let now = Timestamp::now();
        let alerts = vec![
            alert(Some("shop"), "api-7d9f-x", "Warning", ago(30), None),
            alert(Some("shop"), "api-7d9f-y", "Critical", ago(20), None),
            alert(Some("shop"), "worker-1", "Notice", ago(10), None),
            alert(Some("billing"), "api-1", "Emergency", ago(10), None),
            alert(None, "unknown", "Error", ago(10), None),
            alert(Some("shop"), "api-old", "Critical", ago(3600), None),
        ];
        store.insert(alerts, now).await.unwrap();
        let read = |q: AlertQuery| {
            let store = store.clone();
            async move { store.query(&q).await.unwrap().into_iter().map(|a| a.pod().unwrap_or("").to_owned()).collect::<Vec<_>>() }
        };
        let window = AlertQuery { namespace: Some("shop".into()), since: Some(ago(60)), until: Some(now), ..Default::default() };
        assert_eq!(read(window.clone()).await, ["api-7d9f-y", "api-7d9f-x", "worker-1"], "{backend}: most severe first");
        let with_unattributed = AlertQuery { include_unattributed: true, ..window.clone() };
        assert_eq!(read(with_unattributed).await.len(), 4, "{backend}");
        let workload = AlertQuery { workload: Some("api".into()), ..window.clone() };
        assert_eq!(read(workload).await, ["api-7d9f-y", "api-7d9f-x"], "{backend}");
        let pod = AlertQuery { pod: Some("worker-1".into()), ..window.clone() };
        assert_eq!(read(pod).await, ["worker-1"], "{backend}");
        let severe = AlertQuery { min_priority: Some(FalcoPriority::Warning), ..window.clone() };
        assert_eq!(read(severe).await.len(), 2, "{backend}");
        let limited = AlertQuery { limit: 1, ..window };
        assert_eq!(read(limited).await, ["api-7d9f-y"], "{backend}");
    }
}

#[tokio::test]
async fn a_window_is_silent_without_any_message_and_incomplete_after_a_refused_request() {
    for (backend, store, _dir) in backends("window", || StoreConfig::new("")).await {
        let since = ago(60);
        let silent = window_evidence(&store, "shadow-1", since, Timestamp::now(), Side::Candidate).await;
        assert!(matches!(silent.status, RunStatus::Failed { ref reason } if reason.contains("silent")), "{backend}: {:?}", silent.status);

        let heartbeat = format!(
            r#"{{"rule":"Falco internal: metrics snapshot","priority":"Informational","source":"internal","time":"{}","output_fields":{{}}}}"#,
            Timestamp::now()
        );
        store.insert(parse_body(heartbeat.as_bytes(), Timestamp::now()).unwrap(), Timestamp::now()).await.unwrap();
        let quiet = window_evidence(&store, "shadow-1", since, Timestamp::now(), Side::Candidate).await;
        assert_eq!(quiet.status, RunStatus::Ok, "{backend}");

        store.record_refused("not a Falco alert: line 1".into(), vec![Some("shadow-1".into())], Timestamp::now()).await.unwrap();
        let held = window_evidence(&store, "shadow-1", since, Timestamp::now(), Side::Candidate).await;
        assert!(matches!(held.status, RunStatus::Incomplete { .. }), "{backend}: {:?}", held.status);
        let other = window_evidence(&store, "billing", since, Timestamp::now(), Side::Candidate).await;
        assert_eq!(other.status, RunStatus::Ok, "{backend}: a refusal naming another namespace does not hold this one up");
    }
}

#[tokio::test]
async fn retention_drops_alerts_older_than_max_age_then_the_oldest_beyond_max_alerts() {
    let config = || StoreConfig { max_age: Duration::from_secs(3600), max_alerts: 3, ..StoreConfig::new("") };
    for (backend, store, _dir) in backends("retention", config).await {
        let now = Timestamp::now();
        store.insert((0..2).map(|i| alert(Some("ns"), &format!("p-{i}"), "Warning", now, None)).collect(), ago(7200)).await.unwrap();
        store.insert((2..7).map(|i| alert(Some("ns"), &format!("p-{i}"), "Warning", now, None)).collect(), now).await.unwrap();
        assert_eq!(store.count().await.unwrap(), 7, "{backend}");
        store.prune_now(&config(), now).await.unwrap();
        let mut kept: Vec<String> =
            store.query(&AlertQuery::default()).await.unwrap().iter().map(|a| a.pod().unwrap_or("").to_owned()).collect();
        kept.sort();
        assert_eq!(kept, ["p-4", "p-5", "p-6"], "{backend}: old ones by age, then the oldest of the rest by count");
    }
}

/// The point of PostgreSQL: two replicas' receivers write one store, a sender's retry to the other
/// replica is a duplicate, and either replica reads everything both acknowledged.
#[tokio::test]
async fn two_replicas_share_one_postgresql_store_without_duplicates() {
    let dsn = aegis_testkit::postgres_database("t_replicas").await;
    let (one, two) = tokio::join!(FalcoStore::connect(&dsn, StoreConfig::new("")), FalcoStore::connect(&dsn, StoreConfig::new("")));
    let (one, two) = (one.expect("the first replica creates the tables"), two.expect("the second starts at the same time"));
    let now = Timestamp::now();
    let batch: Vec<FalcoAlert> =
        (0..100).map(|i| alert(Some("shop"), &format!("api-{i}"), "Warning", now, Some(&format!("u-{i}")))).collect();
    let (a, b) = tokio::join!(one.insert(batch[..60].to_vec(), now), two.insert(batch[40..].to_vec(), now));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.stored + b.stored, 100, "{a:?} {b:?}");
    assert_eq!(a.duplicates + b.duplicates, 20);
    for store in [&one, &two] {
        assert_eq!(store.query(&AlertQuery { namespace: Some("shop".into()), ..Default::default() }).await.unwrap().len(), 100);
    }
}

#[tokio::test]
async fn a_postgresql_store_written_by_a_newer_schema_is_refused() {
    let dsn = aegis_testkit::postgres_database("t_schema").await;
    drop(FalcoStore::connect(&dsn, StoreConfig::new("")).await.unwrap());
    let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client.execute("INSERT INTO aegis_falco_schema (version) VALUES (99)", &[]).await.unwrap();
    let err = FalcoStore::connect(&dsn, StoreConfig::new("")).await.err().expect("refused");
    assert!(err.to_string().contains("newer"), "{err}");
    assert!(!err.to_string().contains(dsn.split(':').nth(2).unwrap().split('@').next().unwrap()), "no password in: {err}");
}

#[tokio::test]
async fn an_unreachable_postgresql_is_an_error_that_names_it_without_its_password() {
    let err = FalcoStore::connect("postgres://aegis:s3cret@127.0.0.1:9/aegis", StoreConfig::new("")).await.err().expect("refused");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:9") && !text.contains("s3cret"), "{text}");
}
