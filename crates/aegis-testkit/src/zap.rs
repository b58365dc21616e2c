//! A loopback STAND-IN for the ZAP daemon API, for tests only (no real ZAP can run here: see
//! docs/testing.md). It answers exactly as ../shared/reference/SCANNER_FORMATS.md documents the daemon:
//! `/JSON/<component>/<view|action>/<name>/`, every scalar a string, `X-ZAP-API-Key` checked with HTTP 400
//! `{"code":"bad_api_key"}`, spider status "0".."100", `recordsToScan`, alerts paged by `start`/`count`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// How the stand-in misbehaves, if at all.
#[derive(Clone, Default)]
pub struct Behaviour {
    pub key: String,
    pub spider_stuck: bool,
    pub passive_never_drains: bool,
}

/// What the stand-in saw.
#[derive(Default)]
pub struct Seen {
    pub spider_polls: u32,
    pub passive_polls: u32,
    /// `(start, count)` of each alerts page requested.
    pub pages: Vec<(usize, usize)>,
    /// `component/kind/name` of every call, in order.
    pub calls: Vec<String>,
    /// `baseurl` of every alerts request.
    pub baseurls: Vec<String>,
}

/// API alert objects for a `baseurl`.
pub type Alerts = Arc<dyn Fn(&str) -> Vec<Value> + Send + Sync>;

#[derive(Clone)]
struct AppState {
    behaviour: Behaviour,
    alerts: Alerts,
    seen: Arc<Mutex<Seen>>,
}

async fn api(
    State(st): State<AppState>,
    Path((_format, component, kind, name)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut seen = st.seen.lock().expect("stand-in state");
    seen.calls.push(format!("{component}/{kind}/{name}"));
    if headers.get("X-ZAP-API-Key").and_then(|v| v.to_str().ok()) != Some(st.behaviour.key.as_str()) {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"code": "bad_api_key", "message": "Invalid or missing API key"})))
            .into_response();
    }
    let body = match (component.as_str(), kind.as_str(), name.as_str()) {
        ("core", "view", "version") => json!({"version": "2.16.1"}),
        ("core", "action", "accessUrl") => json!({"Result": "OK"}),
        ("spider", "action", "scan") => json!({"scan": "0"}),
        ("spider", "view", "status") => {
            seen.spider_polls += 1;
            let pct = if st.behaviour.spider_stuck { 42 } else { (seen.spider_polls * 50).min(100) };
            json!({"status": pct.to_string()})
        }
        ("pscan", "view", "recordsToScan") => {
            seen.passive_polls += 1;
            let left = if st.behaviour.passive_never_drains { 7 } else { 3u32.saturating_sub(seen.passive_polls) };
            json!({"recordsToScan": left.to_string()})
        }
        ("alert", "view", "alerts") => {
            let start: usize = q.get("start").and_then(|v| v.parse().ok()).unwrap_or(0);
            let count: usize = q.get("count").and_then(|v| v.parse().ok()).unwrap_or(usize::MAX);
            let baseurl = q.get("baseurl").cloned().unwrap_or_default();
            seen.pages.push((start, count));
            seen.baseurls.push(baseurl.clone());
            let page: Vec<Value> = (st.alerts)(&baseurl).into_iter().skip(start).take(count).collect();
            json!({"alerts": page})
        }
        _ => return (StatusCode::BAD_REQUEST, axum::Json(json!({"code": "no_implementor", "message": "No implementor"}))).into_response(),
    };
    axum::Json(body).into_response()
}

/// Start the stand-in on 127.0.0.1; returns its address and what it sees.
pub async fn start(behaviour: Behaviour, alerts: Alerts) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let state = AppState { behaviour, alerts, seen: seen.clone() };
    let app = axum::Router::new().route("/{format}/{component}/{kind}/{name}/", get(api)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}
