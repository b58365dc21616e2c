//! The Kubernetes client every AEGIS command and the operator use: kube's default stack plus one
//! layer that gives every call a deadline for the API server's answer and reports how each call went.
//!
//! The deadline covers the answer's headers. An API server that accepted the connection and then
//! hangs would otherwise hold a write (a status update, a production patch) forever; a watch answers
//! its headers at once and then streams, so watches keep working. Per-call deadlines for writes that
//! must never be left in doubt sit on top of this one (`apply::WRITE_TIMEOUT`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower::{BoxError, Layer, Service};

/// How long any API call may wait for its answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One finished API call.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The HTTP method, or `WATCH` for a watch.
    pub verb: &'a str,
    /// The answer's status; `None` when there was none (timeout, connection error).
    pub status: Option<u16>,
    pub elapsed: Duration,
}

/// What hears about every call (the operator's metrics).
pub type Observer = Arc<dyn Fn(Call<'_>) + Send + Sync>;

/// A client from `config` with the deadline and, if given, the observer.
pub fn build(config: kube::Config, observer: Option<Observer>) -> Result<kube::Client, kube::Error> {
    let layer = CallLayer { observer, timeout: CALL_TIMEOUT };
    Ok(kube::client::ClientBuilder::try_from(config)?.with_layer(&layer).build())
}

#[derive(Clone)]
struct CallLayer {
    observer: Option<Observer>,
    timeout: Duration,
}

impl<S> Layer<S> for CallLayer {
    type Service = CallService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallService { inner, observer: self.observer.clone(), timeout: self.timeout }
    }
}

#[derive(Clone)]
pub struct CallService<S> {
    inner: S,
    observer: Option<Observer>,
    timeout: Duration,
}

fn verb<B>(req: &http::Request<B>) -> &'static str {
    let watch = req.uri().query().is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    if watch {
        return "WATCH";
    }
    match *req.method() {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

impl<S, B, R> Service<http::Request<B>> for CallService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let verb = verb(&req);
        let path = req.uri().path().to_owned();
        let (observer, timeout) = (self.observer.clone(), self.timeout);
        let answer = self.inner.call(req);
        let started = Instant::now();
        Box::pin(async move {
            let result = match tokio::time::timeout(timeout, answer).await {
                Ok(r) => r.map_err(Into::into),
                Err(_) => Err(format!("the API server did not answer {verb} {path} within {}s", timeout.as_secs()).into()),
            };
            let status = result.as_ref().ok().map(|r| r.status().as_u16());
            // Which calls a process makes, one by one (`RUST_LOG=aegis_k8s::client=trace`): what
            // the metrics count by verb, here by path.
            tracing::trace!(verb, path = %path, status, elapsed_ms = started.elapsed().as_millis() as u64, "api call");
            if let Some(observe) = observer {
                observe(Call { verb, status, elapsed: started.elapsed() });
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An inner service that answers after `delay` with `status`.
    #[derive(Clone)]
    struct Slow {
        delay: Duration,
        status: u16,
    }

    impl Service<http::Request<()>> for Slow {
        type Response = http::Response<()>;
        type Error = BoxError;
        type Future = Pin<Box<dyn Future<Output = Result<http::Response<()>, BoxError>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            let (delay, status) = (self.delay, self.status);
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(http::Response::builder().status(status).body(()).unwrap())
            })
        }
    }

    /// The calls an observer heard: verb and status.
    type Seen = Arc<Mutex<Vec<(String, Option<u16>)>>>;

    fn service(delay: Duration, status: u16, seen: Seen) -> CallService<Slow> {
        let observer: Observer = Arc::new(move |c: Call<'_>| seen.lock().unwrap().push((c.verb.to_owned(), c.status)));
        CallLayer { observer: Some(observer), timeout: Duration::from_millis(200) }.layer(Slow { delay, status })
    }

    #[tokio::test]
    async fn a_call_the_api_server_does_not_answer_fails_at_the_deadline_and_is_reported_without_a_status() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut svc = service(Duration::from_secs(60), 200, seen.clone());
        let req =
            http::Request::builder().method("PUT").uri("/apis/aegis.io/v1alpha1/namespaces/shop/incidents/i/status").body(()).unwrap();
        let err = svc.call(req).await.expect_err("a hung answer is an error");
        assert!(err.to_string().contains("did not answer PUT"), "{err}");
        assert_eq!(*seen.lock().unwrap(), vec![("PUT".to_owned(), None)]);
    }

    #[tokio::test]
    async fn an_answered_call_is_reported_with_its_verb_and_status_and_a_watch_as_watch() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut svc = service(Duration::ZERO, 409, seen.clone());
        let put = http::Request::builder().method("PUT").uri("/api/v1/namespaces/shop/configmaps/x").body(()).unwrap();
        assert_eq!(svc.call(put).await.unwrap().status(), 409);
        let watch = http::Request::builder().uri("/api/v1/pods?watch=true&resourceVersion=1").body(()).unwrap();
        svc.call(watch).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![("PUT".to_owned(), Some(409)), ("WATCH".to_owned(), Some(409))]);
    }
}
