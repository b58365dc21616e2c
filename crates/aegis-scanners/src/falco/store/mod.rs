//! The Falco alert store: one interface, two backends.
//!
//! - **SQLite** (embedded, the default): one process writes it — a single operator replica, with the
//!   file on a PersistentVolume so a restart keeps the evidence.
//! - **PostgreSQL** (HA): every replica's receiver writes the same database, and whichever replica
//!   leads reads every alert any of them acknowledged. A failover loses nothing a sender was told was
//!   stored.
//!
//! Both acknowledge an insert only once it is durable, deduplicate by falcosidekick's UUID (or, without
//! one, by content) so a sender's retry never stores an alert twice, record refused requests as
//! evidence, and apply the same retention.

mod postgres;
mod sqlite;
mod wal_sync;

use std::path::PathBuf;
use std::time::Duration;

use aegis_model::FalcoPriority;
use aegis_security::falco::{FalcoAlert, UnreadableAlert};
use jiff::Timestamp;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("alert store {path}: {message}")]
    Open { path: String, message: String },
    #[error("alert store: {0}")]
    Backend(String),
    #[error("alert store is shut down")]
    Closed,
}

/// Where (for SQLite) and how long alerts are kept.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub dir: PathBuf,
    pub max_age: Duration,
    pub max_alerts: u64,
    /// SQLite: `synchronous=FULL` (fsync per commit, survives power loss) rather than NORMAL
    /// (survives a process crash). PostgreSQL commits as its server is configured.
    pub fsync: bool,
}

impl StoreConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StoreConfig { dir: dir.into(), max_age: Duration::from_secs(7 * 24 * 3600), max_alerts: 5_000_000, fsync: true }
    }
}

/// How an insert went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct InsertOutcome {
    pub stored: u64,
    pub duplicates: u64,
}

/// Which alerts to read.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    pub namespace: Option<String>,
    /// Also return alerts with no namespace (they cannot be ruled out for any namespace).
    pub include_unattributed: bool,
    pub pod: Option<String>,
    /// Pods of a workload: names `<workload>-...` (Deployment, StatefulSet, DaemonSet, Job pods).
    pub workload: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub min_priority: Option<FalcoPriority>,
    pub include_internal: bool,
    /// At most this many, most severe first (0: no limit).
    pub limit: usize,
}

/// Where the store is: a directory (SQLite) or a PostgreSQL URL (`postgres://…`, `postgresql://…`).
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Dir(PathBuf),
    Postgres(String),
}

impl std::str::FromStr for StoreLocation {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            StoreLocation::Postgres(s.to_owned())
        } else {
            StoreLocation::Dir(PathBuf::from(s))
        })
    }
}

/// Never prints a PostgreSQL password.
impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Dir(d) => write!(f, "{}", d.display()),
            StoreLocation::Postgres(dsn) => match dsn.parse::<tokio_postgres::Config>() {
                Ok(pg) => f.write_str(&postgres::location(&pg)),
                Err(_) => f.write_str("postgres://<unreadable>"),
            },
        }
    }
}

/// Nanoseconds since the epoch, as both backends store times.
fn ns(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX)
}

/// One alert as both backends store it: the columns queries filter on, and the alert as JSON. Built
/// by the request's own task (the deduplication hash and the JSON are most of an insert's CPU), so
/// the embedded store's one writer only inserts.
struct AlertRow {
    dedup: String,
    /// The time the dedup key stands with ([`FalcoAlert::dedup_at`]), 0 when there is none.
    dedup_at: i64,
    time: i64,
    received: i64,
    priority: i16,
    rule: String,
    namespace: Option<String>,
    pod: Option<String>,
    internal: bool,
    body: String,
}

impl AlertRow {
    fn new(alert: FalcoAlert, received: Timestamp) -> Result<AlertRow, StoreError> {
        Ok(AlertRow {
            dedup: alert.dedup_key(),
            dedup_at: alert.dedup_at().map_or(0, ns),
            time: ns(alert.time),
            received: ns(received),
            priority: i16::from(alert.priority.rank()),
            namespace: alert.namespace().map(str::to_owned),
            pod: alert.pod().map(str::to_owned),
            internal: alert.is_internal(),
            body: serde_json::to_string(&alert).map_err(|e| StoreError::Backend(format!("alert not serialisable: {e}")))?,
            rule: alert.rule,
        })
    }

    fn all(alerts: Vec<FalcoAlert>, received: Timestamp) -> Result<Vec<AlertRow>, StoreError> {
        alerts.into_iter().map(|a| AlertRow::new(a, received)).collect()
    }
}

/// A handle on the store, whichever backend holds it. Cheap to clone.
#[derive(Clone)]
pub enum FalcoStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// Run a blocking SQLite read off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
}

impl FalcoStore {
    /// Open (or create) the embedded store in `config.dir`.
    pub fn open(config: StoreConfig) -> Result<FalcoStore, StoreError> {
        SqliteStore::open(config).map(FalcoStore::Sqlite)
    }

    /// Open an existing embedded store to read it (see [`SqliteStore::open_read_only`]).
    pub fn open_read_only(dir: impl Into<PathBuf>) -> Result<FalcoStore, StoreError> {
        SqliteStore::open_read_only(dir).map(FalcoStore::Sqlite)
    }

    /// Connect to a PostgreSQL store (`postgres://user:password@host:port/db` or `host=... user=...`),
    /// creating its tables if they are missing.
    pub async fn connect(dsn: &str, config: StoreConfig) -> Result<FalcoStore, StoreError> {
        PostgresStore::connect(dsn, config).await.map(FalcoStore::Postgres)
    }

    /// Open the store at `location` to receive into: SQLite is created in its directory, PostgreSQL
    /// gets its tables.
    pub async fn open_at(location: &StoreLocation, config: StoreConfig) -> Result<FalcoStore, StoreError> {
        match location {
            StoreLocation::Dir(dir) => FalcoStore::open(StoreConfig { dir: dir.clone(), ..config }),
            StoreLocation::Postgres(dsn) => FalcoStore::connect(dsn, config).await,
        }
    }

    /// Open the store at `location` to read what another process receives: an SQLite directory must
    /// already hold a store (see [`SqliteStore::open_read_only`]).
    pub async fn open_to_read(location: &StoreLocation) -> Result<FalcoStore, StoreError> {
        match location {
            StoreLocation::Dir(dir) => FalcoStore::open_read_only(dir.clone()),
            StoreLocation::Postgres(dsn) => FalcoStore::connect(dsn, StoreConfig::new("")).await,
        }
    }

    /// Where the alerts live, for logs: a file, or a database without its password.
    pub fn location(&self) -> String {
        match self {
            FalcoStore::Sqlite(s) => s.path().display().to_string(),
            FalcoStore::Postgres(s) => s.location(),
        }
    }

    /// Store alerts; resolves once they are durable.
    pub async fn insert(&self, alerts: Vec<FalcoAlert>, received: Timestamp) -> Result<InsertOutcome, StoreError> {
        match self {
            FalcoStore::Sqlite(s) => s.insert(alerts, received).await,
            FalcoStore::Postgres(s) => s.insert(alerts, received).await,
        }
    }

    /// Record a request the receiver refused (unreadable, too large), durably: a window it falls in
    /// cannot clear the namespaces it may concern.
    pub async fn record_refused(&self, reason: String, namespaces: Vec<Option<String>>, received: Timestamp) -> Result<(), StoreError> {
        match self {
            FalcoStore::Sqlite(s) => s.record_refused(reason, namespaces, received).await,
            FalcoStore::Postgres(s) => s.record_refused(reason, namespaces, received).await,
        }
    }

    /// Read alerts, most severe first.
    pub async fn query(&self, q: &AlertQuery) -> Result<Vec<FalcoAlert>, StoreError> {
        match self {
            FalcoStore::Sqlite(s) => {
                let (s, q) = (s.clone(), q.clone());
                blocking(move || s.query(&q)).await
            }
            FalcoStore::Postgres(s) => s.query(q).await,
        }
    }

    /// How many alerts of any kind (internal messages included) Falco sent for the window: zero means
    /// the feed was silent.
    pub async fn heartbeat(&self, since: Timestamp, until: Timestamp) -> Result<u64, StoreError> {
        match self {
            FalcoStore::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.heartbeat(since, until)).await
            }
            FalcoStore::Postgres(s) => s.heartbeat(since, until).await,
        }
    }

    /// Requests refused between `since` and `until` (by time received) that may concern `namespace`.
    pub async fn refused(&self, namespace: &str, since: Timestamp, until: Timestamp) -> Result<Vec<UnreadableAlert>, StoreError> {
        match self {
            FalcoStore::Sqlite(s) => {
                let (s, namespace) = (s.clone(), namespace.to_owned());
                blocking(move || s.refused(&namespace, since, until)).await
            }
            FalcoStore::Postgres(s) => s.refused(namespace, since, until).await,
        }
    }

    pub async fn count(&self) -> Result<u64, StoreError> {
        match self {
            FalcoStore::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.count()).await
            }
            FalcoStore::Postgres(s) => s.count().await,
        }
    }

    pub async fn latest_received(&self) -> Result<Option<Timestamp>, StoreError> {
        match self {
            FalcoStore::Sqlite(s) => {
                let s = s.clone();
                blocking(move || s.latest_received()).await
            }
            FalcoStore::Postgres(s) => s.latest_received().await,
        }
    }

    /// Apply retention now (also applied as alerts arrive).
    pub async fn prune_now(&self, config: &StoreConfig, now: Timestamp) -> Result<(), StoreError> {
        match self {
            FalcoStore::Sqlite(s) => {
                let (s, config) = (s.clone(), config.clone());
                blocking(move || s.prune_now(&config, now)).await
            }
            FalcoStore::Postgres(s) => s.prune(config, now).await,
        }
    }
}
