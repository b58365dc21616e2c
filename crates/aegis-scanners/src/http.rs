//! Serving HTTP to clients that may be hostile: the Falco receiver and the operator's endpoints.
//!
//! `axum::serve` sets no timer, so hyper's header-read timeout never fires: a client that opens a
//! connection and sends nothing, or trickles its headers or body, holds a task and a file descriptor
//! for ever, and one slow connection holds up a graceful shutdown. This server bounds each of those:
//! - **connections**: at most `max_connections` at once; past that a new connection is closed at once
//!   (a slowloris flood exhausts this budget, not the process' file descriptors);
//! - **headers and idle keep-alive**: hyper's `header_read_timeout`, which runs from the moment the
//!   connection waits for a request (the first, or the next on a kept-alive connection);
//! - **a whole request**, body included: `request_timeout` (408);
//! - **shutdown**: in-flight requests get `shutdown_grace`, then every connection is dropped.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// The bounds of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub max_connections: usize,
    /// From the moment a connection waits for a request until its headers are complete.
    pub header_read_timeout: Duration,
    /// One request from its headers to its response, body included.
    pub request_timeout: Duration,
    /// How long in-flight requests may finish after shutdown begins.
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Serve `app` on `listener` until `shutdown` completes, within `limits`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app =
        app.layer(tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, limits.request_timeout));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections: JoinSet<()> = JoinSet::new();
    tokio::pin!(shutdown);
    let mut refused_since_log = 0u64;
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
            // Reap finished connections so the set does not grow with the server's lifetime.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            // Out of file descriptors and similar: back off instead of spinning.
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused_since_log += 1;
            if refused_since_log.is_power_of_two() {
                tracing::warn!(
                    max = limits.max_connections,
                    refused = refused_since_log,
                    "connection limit reached; closing new connections"
                );
            }
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(Some(limits.header_read_timeout)).keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let stopping = tokio::select! {
                _ = conn.as_mut() => false,
                r = stop.wait_for(|s| *s) => r.is_ok(),
            };
            if stopping {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(left = connections.len(), grace = ?limits.shutdown_grace, "connections still open after the shutdown grace; dropping them");
        connections.abort_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(limits: ServerLimits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new().route("/healthz", get(|| async { "ok" }));
        let done = tokio::spawn(async move {
            serve(listener, app, limits, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        (addr, tx, done)
    }

    /// Read until the peer closes, or give up after `within`; true if it closed.
    async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 1024];
        tokio::time::timeout(within, async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }

    fn quick() -> ServerLimits {
        ServerLimits {
            max_connections: 4,
            header_read_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_millis(500),
            shutdown_grace: Duration::from_millis(300),
        }
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_or_half_its_headers_is_closed_after_the_header_timeout() {
        let (addr, _stop, _done) = start(quick()).await;
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(closed_within(&mut silent, Duration::from_secs(3)).await, "an idle connection is closed");
        let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
        half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        assert!(closed_within(&mut half, Duration::from_secs(3)).await, "a half request is closed");
    }

    #[tokio::test]
    async fn a_kept_alive_connection_that_goes_idle_is_closed_too() {
        let (addr, _stop, _done) = start(quick()).await;
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 256];
        let n = conn.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        assert!(closed_within(&mut conn, Duration::from_secs(3)).await);
    }

    #[tokio::test]
    async fn connections_past_the_limit_are_closed_and_the_server_keeps_answering_once_they_go() {
        let (addr, _stop, _done) = start(ServerLimits { header_read_timeout: Duration::from_secs(2), ..quick() }).await;
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(closed_within(&mut extra, Duration::from_millis(500)).await, "the fifth connection is closed at once");
        drop(held);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    }

    #[tokio::test]
    async fn a_slow_client_does_not_hold_up_shutdown_past_the_grace() {
        let (addr, stop, done) = start(ServerLimits { header_read_timeout: Duration::from_secs(60), ..quick() }).await;
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        // Without the grace the server would wait for the client's 998 missing bytes for ever.
        tokio::time::timeout(Duration::from_secs(10), done).await.expect("shutdown ends after its grace").unwrap();
    }
}
