//! The Falco HTTP receiver: compatible with Falco's `http_output` (one alert per POST) and with
//! falcosidekick's webhook output; also accepts JSON lines in one body.
//!
//! | request                         | answer                                                   |
//! |---------------------------------|----------------------------------------------------------|
//! | `POST /` or `POST /falco`       | 200 `{"stored":n,"duplicates":m}` once durable           |
//! | bad JSON / not an alert         | 400 with the line and what is wrong; no alert stored, the refusal recorded |
//! | missing or wrong bearer token   | 401 with `WWW-Authenticate: Bearer`                       |
//! | body over the limit             | 413 naming the limit; the refusal recorded                |
//! | store failure                   | 503; the sender may retry (alerts are deduplicated)       |
//! | `GET /healthz`, `GET /ping`     | `{"status":"ok"}`, `pong` (as falcosidekick answers)      |
//! | `GET /alerts?namespace=…`       | stored alerts as JSON (query parameters as `AlertQuery`) |

// Handlers return axum's `Response` as their error: the idiomatic shape, built only on a request that
// is refused, so its size never costs anything on the accepting path.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aegis_model::FalcoPriority;
use aegis_security::falco::parse_body;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use super::store::{AlertQuery, FalcoStore};

/// Receiver settings.
#[derive(Clone)]
pub struct ReceiverConfig {
    /// Required `Authorization: Bearer <token>`; `None` accepts unauthenticated senders.
    pub token: Option<String>,
    /// Largest accepted body, in bytes.
    pub max_body: usize,
    /// What the receiver has seen, for metrics (the operator exports them to Prometheus).
    pub counters: Arc<ReceiverCounters>,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig { token: None, max_body: 1024 * 1024, counters: Arc::default() }
    }
}

/// Counts since the receiver started.
#[derive(Debug, Default)]
pub struct ReceiverCounters {
    /// Alerts in accepted bodies (stored or duplicates).
    pub received: AtomicU64,
    /// Alerts newly stored.
    pub stored: AtomicU64,
    /// Requests refused (400, 401, 413, 503).
    pub rejected: AtomicU64,
}

#[derive(Clone)]
struct AppState {
    store: FalcoStore,
    config: Arc<ReceiverConfig>,
}

/// The receiver's routes, ready to serve.
pub fn router(store: FalcoStore, config: ReceiverConfig) -> Router {
    let state = AppState { store, config: Arc::new(config) };
    Router::new()
        .route("/", post(receive))
        .route("/falco", post(receive))
        .route("/healthz", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/ping", get(|| async { "pong\n" }))
        .route("/alerts", get(list_alerts))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

fn authorized(config: &ReceiverConfig, headers: &HeaderMap) -> Result<(), Response> {
    let Some(expected) = &config.token else { return Ok(()) };
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let ok = given.is_some_and(|g| constant_time_eq(g.as_bytes(), expected.as_bytes()));
    if ok {
        return Ok(());
    }
    let message = if given.is_some() { "bearer token rejected" } else { "missing `Authorization: Bearer <token>` header" };
    let mut resp = error(StatusCode::UNAUTHORIZED, message);
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
    Err(resp)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let response = receive_counted(&state, headers, body).await;
    if !response.status().is_success() {
        state.config.counters.rejected.fetch_add(1, Ordering::Relaxed);
    }
    response
}

async fn receive_counted(state: &AppState, headers: HeaderMap, body: Body) -> Response {
    if let Err(resp) = authorized(&state.config, &headers) {
        return resp;
    }
    let limit = state.config.max_body;
    let too_large = || {
        error(StatusCode::PAYLOAD_TOO_LARGE, format!("body exceeds the {limit}-byte limit; send one alert per request or raise --max-body"))
    };
    let received = Timestamp::now();
    let declared_too_large =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok()).is_some_and(|n| n > limit);
    let bytes = match declared_too_large {
        true => None,
        false => to_bytes(body, limit).await.ok(),
    };
    let Some(bytes) = bytes else {
        // The alerts in it are lost to the gate: record that, for every namespace (it cannot be read).
        return refuse(
            state,
            StatusCode::PAYLOAD_TOO_LARGE,
            too_large(),
            format!("a body over the {limit}-byte limit"),
            vec![None],
            received,
        )
        .await;
    };
    // Large bodies are parsed off the async workers, so /healthz and other senders never wait on one.
    let parsed = if bytes.len() > 64 * 1024 {
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || parse_body(&bytes, received))
            .await
            .unwrap_or_else(|e| Err(aegis_security::falco::BodyError { line: 1, message: e.to_string() }))
    } else {
        parse_body(&bytes, received)
    };
    let alerts = match parsed {
        Ok(a) => a,
        Err(e) => {
            let message = format!("not a Falco alert: {e}");
            let namespaces = aegis_security::falco::body_namespaces(&bytes);
            return refuse(state, StatusCode::BAD_REQUEST, error(StatusCode::BAD_REQUEST, &message), message, namespaces, received).await;
        }
    };
    match state.store.insert(alerts, received).await {
        Ok(outcome) => {
            let c = &state.config.counters;
            c.received.fetch_add(outcome.stored + outcome.duplicates, Ordering::Relaxed);
            c.stored.fetch_add(outcome.stored, Ordering::Relaxed);
            axum::Json(outcome).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "storing Falco alerts failed");
            error(StatusCode::SERVICE_UNAVAILABLE, format!("alerts not stored: {e}"))
        }
    }
}

/// Answer a refused request, after storing the refusal durably (the alerts it carried are lost to
/// the gate, so a window it falls in cannot clear the namespaces it may concern). If the refusal
/// cannot be stored, 503: the sender may retry.
async fn refuse(
    state: &AppState,
    status: StatusCode,
    answer: Response,
    reason: String,
    namespaces: Vec<Option<String>>,
    received: Timestamp,
) -> Response {
    match state.store.record_refused(reason, namespaces, received).await {
        Ok(()) => answer,
        Err(e) => {
            tracing::error!(error = %e, %status, "recording a refused Falco request failed");
            error(StatusCode::SERVICE_UNAVAILABLE, format!("request refused ({status}) and the refusal not stored: {e}"))
        }
    }
}

#[derive(Deserialize)]
struct ListParams {
    namespace: Option<String>,
    pod: Option<String>,
    workload: Option<String>,
    since: Option<String>,
    until: Option<String>,
    min_priority: Option<String>,
    #[serde(default)]
    include_unattributed: bool,
    limit: Option<usize>,
}

async fn list_alerts(State(state): State<AppState>, headers: HeaderMap, Query(p): Query<ListParams>) -> Response {
    if let Err(resp) = authorized(&state.config, &headers) {
        return resp;
    }
    let parse_time = |s: &Option<String>, name: &str| -> Result<Option<Timestamp>, Response> {
        s.as_deref().map(|v| v.parse::<Timestamp>().map_err(|e| error(StatusCode::BAD_REQUEST, format!("{name}: {e}")))).transpose()
    };
    let (since, until) = match (parse_time(&p.since, "since"), parse_time(&p.until, "until")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let min_priority = match p.min_priority.as_deref().map(str::parse::<FalcoPriority>).transpose() {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let q = AlertQuery {
        namespace: p.namespace,
        include_unattributed: p.include_unattributed,
        pod: p.pod,
        workload: p.workload,
        since,
        until,
        min_priority,
        include_internal: false,
        limit: p.limit.unwrap_or(1000).min(100_000),
    };
    match state.store.query(&q).await {
        Ok(alerts) => axum::Json(json!({"alerts": alerts})).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Serve the receiver on `listener` until `shutdown` resolves, within `limits` (connections, header,
/// request and shutdown timeouts: see [`crate::http`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: FalcoStore,
    config: ReceiverConfig,
    limits: crate::http::ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::http::serve(listener, router(store, config), limits, shutdown).await
}
