//! The HA backend of the Falco alert store: PostgreSQL through tokio-postgres and a deadpool pool.
//!
//! Every replica's receiver inserts into the same tables; a request is answered only after its
//! transaction committed (the server's durability settings apply: `synchronous_commit` on by default).
//! One request is one statement — the alerts as arrays, `UNNEST`ed — with `ON CONFLICT (dedup) DO
//! NOTHING`, so a retry sent to another replica after a failover is a duplicate, never a second row.
//! Times are nanoseconds since the epoch, as in the embedded store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aegis_security::falco::{FalcoAlert, UnreadableAlert};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use jiff::Timestamp;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use super::{AlertQuery, AlertRow, InsertOutcome, StoreConfig, StoreError, ns};

/// The schema this AEGIS writes; a database marked newer is refused.
const SCHEMA_VERSION: i32 = 1;

/// Serializes schema creation between replicas starting at once (`pg_advisory_xact_lock`).
const SCHEMA_LOCK: i64 = 0x0AE6_15FA_1C00;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS aegis_falco_alerts (
        id BIGSERIAL PRIMARY KEY,
        dedup TEXT NOT NULL UNIQUE,
        time_ns BIGINT NOT NULL,
        received_ns BIGINT NOT NULL,
        priority SMALLINT NOT NULL,
        rule TEXT NOT NULL,
        namespace TEXT,
        pod TEXT,
        internal BOOLEAN NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS aegis_falco_alerts_ns_time ON aegis_falco_alerts(namespace, time_ns);
    CREATE INDEX IF NOT EXISTS aegis_falco_alerts_ns_priority ON aegis_falco_alerts(namespace, priority, time_ns);
    CREATE INDEX IF NOT EXISTS aegis_falco_alerts_time ON aegis_falco_alerts(time_ns);
    CREATE INDEX IF NOT EXISTS aegis_falco_alerts_received ON aegis_falco_alerts(received_ns);
    CREATE TABLE IF NOT EXISTS aegis_falco_refused (
        id BIGSERIAL PRIMARY KEY,
        received_ns BIGINT NOT NULL,
        namespace TEXT,
        reason TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS aegis_falco_refused_received ON aegis_falco_refused(received_ns);
    CREATE TABLE IF NOT EXISTS aegis_falco_schema (version INTEGER NOT NULL);
";

/// How long a statement, a connection and a wait for a pooled connection may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Retention runs after this many stored alerts (per process), as in the embedded store.
const PRUNE_EVERY: u64 = 10_000;

#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    location: Arc<str>,
    config: Arc<StoreConfig>,
    since_prune: Arc<AtomicU64>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl PostgresStore {
    pub async fn connect(dsn: &str, config: StoreConfig) -> Result<PostgresStore, StoreError> {
        let mut pg: tokio_postgres::Config = dsn
            .parse()
            .map_err(|e| StoreError::Open { path: "postgres".into(), message: format!("not a PostgreSQL connection string: {e}") })?;
        let location = location(&pg);
        let open = |message: String| StoreError::Open { path: location.clone(), message };
        pg.connect_timeout(TIMEOUT);
        pg.options(format!("-c statement_timeout={}", TIMEOUT.as_millis()));
        pg.application_name("aegis-falco-store");
        let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(TIMEOUT))
            .create_timeout(Some(TIMEOUT))
            .build()
            .map_err(|e| open(e.to_string()))?;
        let mut client = pool.get().await.map_err(|e| open(format!("cannot connect: {e}")))?;
        let tx = client.transaction().await.map_err(|e| open(e.to_string()))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK]).await.map_err(|e| open(e.to_string()))?;
        tx.batch_execute(SCHEMA).await.map_err(|e| open(format!("cannot create the tables: {e}")))?;
        let version: Option<i32> =
            tx.query_opt("SELECT MAX(version) FROM aegis_falco_schema", &[]).await.map_err(|e| open(e.to_string()))?.and_then(|r| r.get(0));
        match version {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(open(format!("written by a newer AEGIS (schema {v}, this one reads {SCHEMA_VERSION})")));
            }
            Some(_) => {}
            None => {
                tx.execute("INSERT INTO aegis_falco_schema (version) VALUES ($1)", &[&SCHEMA_VERSION])
                    .await
                    .map_err(|e| open(e.to_string()))?;
            }
        }
        tx.commit().await.map_err(|e| open(e.to_string()))?;
        Ok(PostgresStore { pool, location: location.into(), config: Arc::new(config), since_prune: Arc::new(AtomicU64::new(0)) })
    }

    pub fn location(&self) -> String {
        self.location.to_string()
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Backend(format!("{}: no connection: {e}", self.location)))
    }

    pub async fn insert(&self, alerts: Vec<FalcoAlert>, received: Timestamp) -> Result<InsertOutcome, StoreError> {
        if alerts.is_empty() {
            return Ok(InsertOutcome::default());
        }
        let n = alerts.len();
        let cols = Columns::of(AlertRow::all(alerts, received)?);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO aegis_falco_alerts (dedup, time_ns, received_ns, priority, rule, namespace, pod, internal, body)
                 SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int2[], $5::text[], $6::text[], $7::text[], $8::bool[], $9::text[])
                 ON CONFLICT (dedup) DO NOTHING",
            )
            .await
            .map_err(backend)?;
        let stored = client
            .execute(
                &stmt,
                &[
                    &cols.dedup,
                    &cols.time,
                    &cols.received,
                    &cols.priority,
                    &cols.rule,
                    &cols.namespace,
                    &cols.pod,
                    &cols.internal,
                    &cols.body,
                ],
            )
            .await
            .map_err(backend)?;
        drop(client);
        if self.since_prune.fetch_add(stored, Ordering::Relaxed) + stored >= PRUNE_EVERY {
            self.since_prune.store(0, Ordering::Relaxed);
            let store = self.clone();
            tokio::spawn(async move {
                if let Err(e) = store.prune(&store.config, Timestamp::now()).await {
                    tracing::warn!(error = %e, "falco store retention failed");
                }
            });
        }
        Ok(InsertOutcome { stored, duplicates: n as u64 - stored })
    }

    pub async fn record_refused(&self, reason: String, namespaces: Vec<Option<String>>, received: Timestamp) -> Result<(), StoreError> {
        let client = self.client().await?;
        let received = vec![ns(received); namespaces.len()];
        let reasons = vec![reason; namespaces.len()];
        client
            .execute(
                "INSERT INTO aegis_falco_refused (received_ns, namespace, reason) SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[])",
                &[&received, &namespaces, &reasons],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    pub async fn refused(&self, namespace: &str, since: Timestamp, until: Timestamp) -> Result<Vec<UnreadableAlert>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT received_ns, namespace, reason FROM aegis_falco_refused
                 WHERE received_ns BETWEEN $1 AND $2 AND (namespace = $3 OR namespace IS NULL) ORDER BY received_ns LIMIT 1000",
                &[&ns(since), &ns(until), &namespace],
            )
            .await
            .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|r| {
                let at: i64 = r.get(0);
                let at = Timestamp::from_nanosecond(i128::from(at)).map(|t| t.to_string()).unwrap_or_else(|_| at.to_string());
                UnreadableAlert { place: format!("request refused by the receiver at {at}"), reason: r.get(2), namespace: r.get(1) }
            })
            .collect())
    }

    pub async fn query(&self, q: &AlertQuery) -> Result<Vec<FalcoAlert>, StoreError> {
        let mut sql = String::from("SELECT body FROM aegis_falco_alerts WHERE TRUE");
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut bind = |sql: &mut String, clause: &str, v: Box<dyn ToSql + Sync + Send>| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("${}", args.len())));
        };
        match (&q.namespace, q.include_unattributed) {
            (Some(ns), true) => bind(&mut sql, " AND (namespace = ? OR namespace IS NULL)", Box::new(ns.clone())),
            (Some(ns), false) => bind(&mut sql, " AND namespace = ?", Box::new(ns.clone())),
            (None, _) => {}
        }
        if let Some(p) = &q.pod {
            bind(&mut sql, " AND pod = ?", Box::new(p.clone()));
        }
        if let Some(w) = &q.workload {
            // LIKE's own wildcards in a workload name are matched literally.
            let escaped = w.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            bind(&mut sql, " AND pod LIKE ?", Box::new(format!("{escaped}-%")));
        }
        if let Some(t) = q.since {
            bind(&mut sql, " AND time_ns >= ?", Box::new(ns(t)));
        }
        if let Some(t) = q.until {
            bind(&mut sql, " AND time_ns <= ?", Box::new(ns(t)));
        }
        if let Some(p) = q.min_priority {
            bind(&mut sql, " AND priority >= ?", Box::new(i16::from(p.rank())));
        }
        if !q.include_internal {
            sql.push_str(" AND NOT internal");
        }
        sql.push_str(" ORDER BY priority DESC, time_ns DESC");
        if q.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", q.limit));
        }
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
        let client = self.client().await?;
        let rows = client.query(&sql, &params).await.map_err(backend)?;
        rows.iter()
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| StoreError::Backend(format!("corrupt stored alert: {e}"))))
            .collect()
    }

    pub async fn heartbeat(&self, since: Timestamp, until: Timestamp) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT COUNT(*) FROM aegis_falco_alerts WHERE (time_ns BETWEEN $1 AND $2) OR (received_ns BETWEEN $1 AND $2)",
                &[&ns(since), &ns(until)],
            )
            .await
            .map_err(backend)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    pub async fn count(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client.query_one("SELECT COUNT(*) FROM aegis_falco_alerts", &[]).await.map_err(backend)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    pub async fn latest_received(&self) -> Result<Option<Timestamp>, StoreError> {
        let client = self.client().await?;
        let row = client.query_one("SELECT MAX(received_ns) FROM aegis_falco_alerts", &[]).await.map_err(backend)?;
        Ok(row.get::<_, Option<i64>>(0).and_then(|n| Timestamp::from_nanosecond(i128::from(n)).ok()))
    }

    /// Drop alerts (and refusals) received before `max_age`, then the oldest beyond `max_alerts`.
    pub async fn prune(&self, config: &StoreConfig, now: Timestamp) -> Result<(), StoreError> {
        let cutoff =
            now.checked_sub(jiff::SignedDuration::try_from(config.max_age).unwrap_or(jiff::SignedDuration::MAX)).unwrap_or(Timestamp::MIN);
        let client = self.client().await?;
        client.execute("DELETE FROM aegis_falco_alerts WHERE received_ns < $1", &[&ns(cutoff)]).await.map_err(backend)?;
        client.execute("DELETE FROM aegis_falco_refused WHERE received_ns < $1", &[&ns(cutoff)]).await.map_err(backend)?;
        let keep = i64::try_from(config.max_alerts).unwrap_or(i64::MAX);
        // Counting walks the whole id index; the span of ids is read from its two ends. Ids have gaps
        // (a duplicate spends one), so a span over the limit only says a count may be: only then count.
        let span: Option<i64> =
            client.query_one("SELECT MAX(id) - MIN(id) + 1 FROM aegis_falco_alerts", &[]).await.map_err(backend)?.get(0);
        if span.is_some_and(|span| span > keep) {
            client
                .execute(
                    "DELETE FROM aegis_falco_alerts WHERE id <= (SELECT id FROM aegis_falco_alerts ORDER BY id DESC LIMIT 1 OFFSET $1)",
                    &[&keep],
                )
                .await
                .map_err(backend)?;
        }
        Ok(())
    }
}

/// One request's alerts as columns, for `UNNEST`.
struct Columns {
    dedup: Vec<String>,
    time: Vec<i64>,
    received: Vec<i64>,
    priority: Vec<i16>,
    rule: Vec<String>,
    namespace: Vec<Option<String>>,
    pod: Vec<Option<String>>,
    internal: Vec<bool>,
    body: Vec<String>,
}

impl Columns {
    fn of(rows: Vec<AlertRow>) -> Self {
        let n = rows.len();
        let mut cols = Columns {
            dedup: Vec::with_capacity(n),
            time: Vec::with_capacity(n),
            received: Vec::with_capacity(n),
            priority: Vec::with_capacity(n),
            rule: Vec::with_capacity(n),
            namespace: Vec::with_capacity(n),
            pod: Vec::with_capacity(n),
            internal: Vec::with_capacity(n),
            body: Vec::with_capacity(n),
        };
        for row in rows {
            cols.dedup.push(row.dedup);
            cols.time.push(row.time);
            cols.received.push(row.received);
            cols.priority.push(row.priority);
            cols.rule.push(row.rule);
            cols.namespace.push(row.namespace);
            cols.pod.push(row.pod);
            cols.internal.push(row.internal);
            cols.body.push(row.body);
        }
        cols
    }
}

/// `postgres://user@host:port/db` — never the password.
pub(super) fn location(pg: &tokio_postgres::Config) -> String {
    let host = pg
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!("postgres://{}@{host}:{port}/{}", pg.get_user().unwrap_or(""), pg.get_dbname().unwrap_or(""))
}
