//! The embedded backend of the Falco alert store: SQLite (WAL) through rusqlite. One replica writes
//! it; it lives on a PersistentVolume in the chart.
//!
//! Writes go through one writer thread that commits in groups: every request waiting while a commit
//! runs joins the next transaction, and each is answered only after its transaction is durable. So a
//! 200 from the receiver means "on disk", and throughput scales with concurrency instead of paying one
//! fsync per alert. The log is synced beside the writer ([`super::wal_sync`]), so the next group
//! commits while the last one's sync runs. Reads use their own connection; WAL lets them run beside
//! the writer.
//!
//! Alerts are deduplicated by falcosidekick's UUID or, without one, by content, so a sender's retry
//! never stores an alert twice. Retention drops alerts older than `max_age` (by time received) and the
//! oldest beyond `max_alerts`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aegis_security::falco::{FalcoAlert, UnreadableAlert};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use super::wal_sync::WalSync;
use super::{AlertQuery, AlertRow, InsertOutcome, StoreConfig, StoreError, ns};

/// 1: alerts. 2: refused requests. 3: deduplication by a unique index led by the alert's time (an
/// older store is upgraded in place when opened for writing).
const SCHEMA_VERSION: i64 = 3;

/// The alerts table. No UNIQUE on `dedup` alone: its values are hashes, and an index of hashes puts
/// every insert on a random page, so each commit wrote about one page per alert. The unique index on
/// `(dedup_at, dedup)` appends instead. `dedup_at` is the time the key was made from, which a re-sent
/// alert repeats: the alert's time, or 0 when its time could not be parsed (then `time_ns` is when it
/// was received, which a retry does not repeat, and the key holds the time as sent).
const ALERTS_TABLE: &str = "(
    id INTEGER PRIMARY KEY,
    dedup TEXT NOT NULL,
    dedup_at INTEGER NOT NULL,
    time_ns INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    rule TEXT NOT NULL,
    namespace TEXT,
    pod TEXT,
    internal INTEGER NOT NULL,
    body TEXT NOT NULL
)";

/// Rebuild a schema-1 or -2 alerts table (dedup UNIQUE on the table, which SQLite cannot drop) in the
/// current layout, in one transaction: a crash leaves the old store whole.
fn upgrade_alerts_table(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    let table: Option<String> =
        conn.query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'alerts'", [], |r| r.get(0)).optional()?;
    if !table.is_some_and(|sql| sql.contains("UNIQUE")) {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(&format!(
        "CREATE TABLE alerts_upgraded {ALERTS_TABLE};
         INSERT INTO alerts_upgraded
           SELECT id, dedup, CASE WHEN json_extract(body, '$.time_unparsed') IS NULL THEN time_ns ELSE 0 END,
                  time_ns, received_ns, priority, rule, namespace, pod, internal, body FROM alerts;
         DROP TABLE alerts;
         ALTER TABLE alerts_upgraded RENAME TO alerts;"
    ))?;
    tx.commit()?;
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "falco store upgraded to schema {SCHEMA_VERSION}");
    Ok(())
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// What the writer thread commits.
enum Write {
    Alerts(Vec<AlertRow>),
    /// A request the receiver refused: the alerts in it are lost to the gate, so the refusal is
    /// evidence. One row per namespace it may concern (`None`: it names none, or cannot be read).
    Refused {
        reason: String,
        namespaces: Vec<Option<String>>,
    },
}

struct WriteRequest {
    write: Write,
    received: Timestamp,
    reply: oneshot::Sender<Result<InsertOutcome, StoreError>>,
}

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: mpsc::Sender<WriteRequest>,
    reader: Mutex<Connection>,
    /// A store of schema 1 (opened read-only, so not upgraded) has no table of refused requests.
    has_refused: bool,
}

fn open(path: &Path, fsync: bool) -> Result<Connection, StoreError> {
    let err = |e: rusqlite::Error| StoreError::Open { path: path.display().to_string(), message: e.to_string() };
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
    conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" }).map_err(err)?;
    Ok(conn)
}

impl SqliteStore {
    /// Open (or create) the store in `config.dir`, starting its writer thread.
    pub fn open(config: StoreConfig) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| StoreError::Open { path: config.dir.display().to_string(), message: e.to_string() })?;
        let path = config.dir.join("falco-alerts.sqlite3");
        // The writer never waits for the disk itself (`synchronous=NORMAL`): with fsync, the log is
        // synced beside it (below).
        let mut writer_conn = open(&path, false)?;
        let version: i64 = writer_conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Open {
                path: path.display().to_string(),
                message: format!("written by a newer AEGIS (schema {version}, this one reads {SCHEMA_VERSION})"),
            });
        }
        upgrade_alerts_table(&mut writer_conn)?;
        writer_conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS alerts {ALERTS_TABLE};
            CREATE UNIQUE INDEX IF NOT EXISTS alerts_dedup ON alerts(dedup_at, dedup);
            CREATE INDEX IF NOT EXISTS alerts_ns_time ON alerts(namespace, time_ns);
            -- Listings are ordered most severe first: served by this index without a sort.
            CREATE INDEX IF NOT EXISTS alerts_ns_priority ON alerts(namespace, priority, time_ns);
            CREATE INDEX IF NOT EXISTS alerts_time ON alerts(time_ns);
            CREATE INDEX IF NOT EXISTS alerts_received ON alerts(received_ns);
            CREATE TABLE IF NOT EXISTS refused (
                id INTEGER PRIMARY KEY,
                received_ns INTEGER NOT NULL,
                namespace TEXT,
                reason TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS refused_received ON refused(received_ns);
            PRAGMA user_version = {SCHEMA_VERSION};"
        ))?;
        let reader = open(&path, config.fsync)?;
        let io_error = |e: std::io::Error| StoreError::Open { path: path.display().to_string(), message: e.to_string() };
        let wal_sync = match config.fsync {
            // The log exists from the first write (the schema above) for as long as a connection is open.
            true => {
                let wal = std::fs::File::open(path.with_extension("sqlite3-wal")).map_err(io_error)?;
                Some(WalSync::start(move || wal.sync_data()).map_err(io_error)?)
            }
            false => None,
        };
        let (tx, rx) = mpsc::channel::<WriteRequest>(4096);
        std::thread::Builder::new()
            .name("falco-store-writer".into())
            .spawn(move || writer_loop(writer_conn, rx, wal_sync, config))
            .map_err(io_error)?;
        Ok(SqliteStore { inner: Arc::new(Inner { path, writer: tx, reader: Mutex::new(reader), has_refused: true }) })
    }

    /// Open an existing store to read it (`aegis falco query`, a verification reading what another
    /// process receives): refuses a directory that holds no store instead of creating an empty one —
    /// a mistyped path must not read as "no alerts" — and works on a read-only file system. Writes to
    /// it fail with [`StoreError::Closed`].
    pub fn open_read_only(dir: impl Into<PathBuf>) -> Result<SqliteStore, StoreError> {
        let dir = dir.into();
        let path = dir.join("falco-alerts.sqlite3");
        let fail = |message: String| StoreError::Open { path: path.display().to_string(), message };
        if !path.is_file() {
            return Err(fail(format!("no alert store here (`aegis falco serve --store {}` creates it)", dir.display())));
        }
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let uri = |extra: &str| format!("file:{}?mode=ro{extra}", path.display());
        // A WAL database on a read-only file system cannot create its shared-memory file: read it as
        // immutable then (no writer can be running there anyway).
        let reader = Connection::open_with_flags(uri(""), flags)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get::<_, i64>(0)).map(|_| c))
            .or_else(|_| Connection::open_with_flags(uri("&immutable=1"), flags))
            .map_err(|e| fail(e.to_string()))?;
        reader.busy_timeout(Duration::from_secs(10)).map_err(|e| fail(e.to_string()))?;
        let version: i64 = reader.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| fail(e.to_string()))?;
        if version > SCHEMA_VERSION {
            return Err(fail(format!("written by a newer AEGIS (schema {version}, this one reads {SCHEMA_VERSION})")));
        }
        // No writer thread: the channel's receiver is gone, so a write answers Closed.
        let (tx, _) = mpsc::channel::<WriteRequest>(1);
        Ok(SqliteStore { inner: Arc::new(Inner { path, writer: tx, reader: Mutex::new(reader), has_refused: version >= 2 }) })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Store alerts; resolves once they are committed (and, with fsync, the commit is on disk).
    pub async fn insert(&self, alerts: Vec<FalcoAlert>, received: Timestamp) -> Result<InsertOutcome, StoreError> {
        self.write(Write::Alerts(AlertRow::all(alerts, received)?), received).await
    }

    /// Record a request the receiver refused (unreadable, too large), durably: a window it falls in
    /// cannot clear the namespaces it may concern.
    pub async fn record_refused(&self, reason: String, namespaces: Vec<Option<String>>, received: Timestamp) -> Result<(), StoreError> {
        self.write(Write::Refused { reason, namespaces }, received).await.map(|_| ())
    }

    async fn write(&self, write: Write, received: Timestamp) -> Result<InsertOutcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.inner.writer.send(WriteRequest { write, received, reply }).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Requests refused between `since` and `until` (by time received) that may concern `namespace`:
    /// those naming it and those naming none.
    pub fn refused(&self, namespace: &str, since: Timestamp, until: Timestamp) -> Result<Vec<UnreadableAlert>, StoreError> {
        if !self.inner.has_refused {
            return Ok(Vec::new());
        }
        let conn = self.inner.reader.lock().map_err(|_| StoreError::Backend("reader lock poisoned".into()))?;
        let mut stmt = conn.prepare_cached(
            "SELECT received_ns, namespace, reason FROM refused
             WHERE received_ns BETWEEN ?1 AND ?2 AND (namespace = ?3 OR namespace IS NULL) ORDER BY received_ns LIMIT 1000",
        )?;
        let rows = stmt.query_map(params![ns(since), ns(until), namespace], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, String>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (at, namespace, reason) = row?;
            let at = Timestamp::from_nanosecond(i128::from(at)).map(|t| t.to_string()).unwrap_or_else(|_| at.to_string());
            out.push(UnreadableAlert { place: format!("request refused by the receiver at {at}"), reason, namespace });
        }
        Ok(out)
    }

    /// Read alerts (blocking: call from `spawn_blocking` in async code).
    pub fn query(&self, q: &AlertQuery) -> Result<Vec<FalcoAlert>, StoreError> {
        let conn = self.inner.reader.lock().map_err(|_| StoreError::Backend("reader lock poisoned".into()))?;
        let mut sql = String::from("SELECT body FROM alerts WHERE 1=1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut bind = |sql: &mut String, clause: &str, v: rusqlite::types::Value| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        match (&q.namespace, q.include_unattributed) {
            (Some(ns), true) => bind(&mut sql, " AND (namespace = ? OR namespace IS NULL)", ns.clone().into()),
            (Some(ns), false) => bind(&mut sql, " AND namespace = ?", ns.clone().into()),
            (None, _) => {}
        }
        if let Some(p) = &q.pod {
            bind(&mut sql, " AND pod = ?", p.clone().into());
        }
        if let Some(w) = &q.workload {
            bind(&mut sql, " AND pod LIKE ?", format!("{w}-%").into());
        }
        if let Some(t) = q.since {
            bind(&mut sql, " AND time_ns >= ?", ns(t).into());
        }
        if let Some(t) = q.until {
            bind(&mut sql, " AND time_ns <= ?", ns(t).into());
        }
        if let Some(p) = q.min_priority {
            bind(&mut sql, " AND priority >= ?", i64::from(p.rank()).into());
        }
        if !q.include_internal {
            sql.push_str(" AND internal = 0");
        }
        sql.push_str(" ORDER BY priority DESC, time_ns DESC");
        if q.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", q.limit));
        }
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in rows {
            let body = body?;
            out.push(serde_json::from_str(&body).map_err(|e| StoreError::Backend(format!("corrupt stored alert: {e}")))?);
        }
        Ok(out)
    }

    /// How many alerts of any kind (internal messages included) Falco sent for the window: zero means
    /// the feed was silent.
    pub fn heartbeat(&self, since: Timestamp, until: Timestamp) -> Result<u64, StoreError> {
        let conn = self.inner.reader.lock().map_err(|_| StoreError::Backend("reader lock poisoned".into()))?;
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM alerts WHERE (time_ns BETWEEN ?1 AND ?2) OR (received_ns BETWEEN ?1 AND ?2)",
            params![ns(since), ns(until)],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    pub fn count(&self) -> Result<u64, StoreError> {
        let conn = self.inner.reader.lock().map_err(|_| StoreError::Backend("reader lock poisoned".into()))?;
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    pub fn latest_received(&self) -> Result<Option<Timestamp>, StoreError> {
        let conn = self.inner.reader.lock().map_err(|_| StoreError::Backend("reader lock poisoned".into()))?;
        let n: Option<i64> = conn.query_row("SELECT MAX(received_ns) FROM alerts", [], |r| r.get(0)).optional()?.flatten();
        Ok(n.and_then(|n| Timestamp::from_nanosecond(i128::from(n)).ok()))
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteRequest>, wal_sync: Option<WalSync>, config: StoreConfig) {
    let mut since_prune = 0u64;
    let mut stats = WriterStats::new();
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let result = match wal_sync.as_ref().and_then(WalSync::failure) {
            Some(failed) => Err(failed),
            None => commit(&mut conn, &batch),
        };
        stats.commits += 1;
        stats.requests += batch.len() as u64;
        stats.busy += started.elapsed();
        match result {
            Ok(outcomes) => {
                since_prune += outcomes.iter().map(|o| o.stored).sum::<u64>();
                let answers = batch.into_iter().map(|req| req.reply).zip(outcomes);
                match &wal_sync {
                    Some(sync) => sync.answer_when_durable(answers.collect()),
                    None => answers.for_each(|(reply, outcome)| {
                        let _ = reply.send(Ok(outcome));
                    }),
                }
            }
            Err(e) => {
                for req in batch {
                    let _ = req.reply.send(Err(e.clone()));
                }
            }
        }
        if since_prune >= 10_000 {
            since_prune = 0;
            stats.log();
            if let Err(e) = prune(&conn, &config, Timestamp::now()) {
                tracing::warn!(error = %e, "falco store retention failed");
            }
        }
    }
}

/// What the writer did since it last said, for `--log-level debug`: how well requests group into
/// commits, and how long a commit holds the writer.
struct WriterStats {
    commits: u64,
    requests: u64,
    busy: Duration,
    since: std::time::Instant,
}

impl WriterStats {
    fn new() -> WriterStats {
        WriterStats { commits: 0, requests: 0, busy: Duration::ZERO, since: std::time::Instant::now() }
    }

    fn log(&mut self) {
        let elapsed = self.since.elapsed();
        let commits = self.commits.max(1);
        tracing::debug!(
            commits = self.commits,
            requests_per_commit = self.requests as f64 / commits as f64,
            commit_us = self.busy.as_micros() as u64 / commits,
            busy_percent = (self.busy.as_secs_f64() * 100.0 / elapsed.as_secs_f64().max(f64::EPSILON)).min(100.0) as u64,
            "falco store writer"
        );
        *self = WriterStats::new();
    }
}

fn commit(conn: &mut Connection, batch: &[WriteRequest]) -> Result<Vec<InsertOutcome>, StoreError> {
    let tx = conn.transaction()?;
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO alerts (dedup, dedup_at, time_ns, received_ns, priority, rule, namespace, pod, internal, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        let mut refused = tx.prepare_cached("INSERT INTO refused (received_ns, namespace, reason) VALUES (?1, ?2, ?3)")?;
        for req in batch {
            let mut o = InsertOutcome::default();
            let alerts = match &req.write {
                Write::Alerts(alerts) => alerts.as_slice(),
                Write::Refused { reason, namespaces } => {
                    for namespace in namespaces {
                        refused.execute(params![ns(req.received), namespace, reason])?;
                    }
                    &[]
                }
            };
            for a in alerts {
                let changed = stmt.execute(params![
                    a.dedup,
                    a.dedup_at,
                    a.time,
                    a.received,
                    a.priority,
                    a.rule,
                    a.namespace,
                    a.pod,
                    a.internal,
                    a.body
                ])?;
                if changed == 1 { o.stored += 1 } else { o.duplicates += 1 }
            }
            outcomes.push(o);
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

/// Retention's statements, in the order they run: by age, then by count. Each finds what it drops
/// through an index or the rowid, never by reading a table (they run in the one writer).
///
/// The count needs no count: SQLite gives each row the largest rowid plus one and `INSERT OR IGNORE`
/// spends none on a duplicate, so the newest `max_alerts` ids are the newest `max_alerts` alerts. (Were
/// an id missing in between — an alert dropped by age out of turn, after a clock jump — fewer are kept,
/// never more.)
const RETENTION: [&str; 3] = [
    "DELETE FROM alerts WHERE received_ns < ?1",
    "DELETE FROM refused WHERE received_ns < ?1",
    "DELETE FROM alerts WHERE id <= (SELECT MAX(id) FROM alerts) - ?1",
];

/// Apply retention now. Also run by the writer every 10,000 stored alerts.
fn prune(conn: &Connection, config: &StoreConfig, now: Timestamp) -> Result<(), StoreError> {
    let cutoff =
        now.checked_sub(jiff::SignedDuration::try_from(config.max_age).unwrap_or(jiff::SignedDuration::MAX)).unwrap_or(Timestamp::MIN);
    conn.execute(RETENTION[0], params![ns(cutoff)])?;
    conn.execute(RETENTION[1], params![ns(cutoff)])?;
    conn.execute(RETENTION[2], params![config.max_alerts as i64])?;
    Ok(())
}

impl SqliteStore {
    /// Apply retention immediately (blocking), with the store's own configuration.
    pub fn prune_now(&self, config: &StoreConfig, now: Timestamp) -> Result<(), StoreError> {
        let conn = open(&self.inner.path, config.fsync)?;
        prune(&conn, config, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_security::falco::parse_body;

    fn alert(i: usize) -> FalcoAlert {
        let body = format!(
            r#"{{"rule":"r","priority":"Warning","time":"2026-01-01T00:00:00.{i:09}Z","output":"x","output_fields":{{"k8s.ns.name":"ns"}}}}"#
        );
        parse_body(body.as_bytes(), Timestamp::now()).unwrap().remove(0)
    }

    #[tokio::test]
    async fn retention_drops_alerts_older_than_max_age_then_the_oldest_beyond_max_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.max_age = Duration::from_secs(3600);
        config.max_alerts = 3;
        let store = SqliteStore::open(config.clone()).unwrap();
        let now = Timestamp::now();
        let two_hours_ago = now.checked_sub(jiff::SignedDuration::from_secs(7200)).unwrap();
        store.insert((0..2).map(alert).collect(), two_hours_ago).await.unwrap();
        store.insert((2..7).map(alert).collect(), now).await.unwrap();
        assert_eq!(store.count().unwrap(), 7);
        store.prune_now(&config, now).unwrap();
        let kept = store.query(&AlertQuery::default()).unwrap();
        assert_eq!(kept.len(), 3, "old ones by age, then the oldest of the rest by count");
        let mut nanos: Vec<i16> = kept.iter().map(|a| a.time.subsec_nanosecond() as i16).collect();
        nanos.sort();
        assert_eq!(nanos, vec![4, 5, 6]);
    }

    /// Retention runs in the one writer, every 10,000 alerts: a statement that read a table in full
    /// would hold every insert behind it for as long as the store is large (0.13 s at 120,000 alerts
    /// measured; seconds at the 5,000,000 cap), and the receiver's p99 with it.
    #[test]
    fn retention_finds_what_it_drops_without_reading_a_table_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(StoreConfig::new(dir.path())).unwrap();
        let conn = open(store.path(), false).unwrap();
        for sql in RETENTION {
            let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let steps: Vec<String> = plan.query_map([0], |r| r.get::<_, String>(3)).unwrap().map(Result::unwrap).collect();
            let scans: Vec<&String> = steps.iter().filter(|s| s.starts_with("SCAN") && s.as_str() != "SCAN CONSTANT ROW").collect();
            assert!(scans.is_empty(), "{sql}\nreads a table in full: {steps:?}");
        }
    }

    /// The schema-2 layout: deduplication by a UNIQUE constraint on the table.
    const SCHEMA_2: &str = "CREATE TABLE alerts (id INTEGER PRIMARY KEY, dedup TEXT NOT NULL UNIQUE, time_ns INTEGER NOT NULL,
            received_ns INTEGER NOT NULL, priority INTEGER NOT NULL, rule TEXT NOT NULL, namespace TEXT, pod TEXT,
            internal INTEGER NOT NULL, body TEXT NOT NULL);
        CREATE INDEX alerts_ns_time ON alerts(namespace, time_ns);
        CREATE INDEX alerts_ns_priority ON alerts(namespace, priority, time_ns);
        CREATE INDEX alerts_time ON alerts(time_ns);
        CREATE INDEX alerts_received ON alerts(received_ns);
        CREATE TABLE refused (id INTEGER PRIMARY KEY, received_ns INTEGER NOT NULL, namespace TEXT, reason TEXT NOT NULL);
        PRAGMA user_version = 2;";

    /// Deduplication keys are hashes: a unique index on them alone puts each insert on a random page,
    /// and every commit wrote a page per alert. Led by the alert's time, inserts append.
    #[tokio::test]
    async fn a_schema_2_store_is_upgraded_in_place_keeping_its_alerts_and_their_deduplication() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("falco-alerts.sqlite3");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_2).unwrap();
        // One alert with a clock Falco got wrong: stored at the time received, keyed by the text sent.
        let bad_clock = |received: Timestamp| {
            let body = r#"{"rule":"r","priority":"Warning","time":"yesterday-ish","output":"x","output_fields":{"k8s.ns.name":"ns"}}"#;
            parse_body(body.as_bytes(), received).unwrap().remove(0)
        };
        let first_received: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
        for a in [alert(1), bad_clock(first_received)] {
            conn.execute(
                "INSERT INTO alerts (dedup, time_ns, received_ns, priority, rule, namespace, pod, internal, body) VALUES (?1, ?2, ?2, ?3, ?4, ?5, NULL, 0, ?6)",
                params![a.dedup_key(), ns(a.time), i64::from(a.priority.rank()), a.rule, a.namespace(), serde_json::to_string(&a).unwrap()],
            )
            .unwrap();
        }
        drop(conn);

        let store = SqliteStore::open(StoreConfig::new(dir.path())).unwrap();
        assert_eq!(store.count().unwrap(), 2, "the alerts survive the upgrade");
        let resent = vec![alert(1), bad_clock(Timestamp::now()), alert(2)];
        let again = store.insert(resent, Timestamp::now()).await.unwrap();
        assert_eq!(again, InsertOutcome { stored: 1, duplicates: 2 }, "the stored alerts are still recognised when re-sent");
        drop(store);
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let table: String = conn.query_row("SELECT sql FROM sqlite_master WHERE name = 'alerts'", [], |r| r.get(0)).unwrap();
        assert!(!table.contains("UNIQUE"), "{table}");
        let first: String = conn.query_row("SELECT name FROM pragma_index_info('alerts_dedup') WHERE seqno = 0", [], |r| r.get(0)).unwrap();
        assert_eq!(first, "dedup_at");
    }

    /// SQLite checkpoints as the WAL grows (every thousand pages): a WAL that only grew would make
    /// every read slower and the next start replay all of it. (A checkpointer thread of its own was
    /// tried and dropped: under sustained load its passive checkpoints never caught up with the writer
    /// and the WAL grew by 10 MB/s.)
    #[tokio::test]
    async fn the_write_ahead_log_is_checkpointed_into_the_database_as_it_grows() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.fsync = false;
        let store = SqliteStore::open(config).unwrap();
        let db = dir.path().join("falco-alerts.sqlite3");
        let initial = std::fs::metadata(&db).unwrap().len();
        for batch in 0..40 {
            store.insert((batch * 100..batch * 100 + 100).map(alert).collect(), Timestamp::now()).await.unwrap();
        }
        let grown = std::fs::metadata(&db).unwrap().len();
        assert!(grown > initial + 1024 * 1024, "the database file stayed at {grown} bytes ({initial} at first): nothing was checkpointed");
    }

    #[tokio::test]
    async fn a_store_written_by_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(StoreConfig::new(dir.path())).unwrap());
        let conn = Connection::open(dir.path().join("falco-alerts.sqlite3")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = SqliteStore::open(StoreConfig::new(dir.path())).err().expect("refused");
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
