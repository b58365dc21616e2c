//! An async client for the ZAP daemon API, and the baseline scan AEGIS runs with it: spider (and
//! optionally the AJAX spider), wait for the passive scanner to drain, optionally an active scan, then
//! page through the alerts for the target.
//!
//! Every wait has a deadline; every failure — daemon unreachable, key rejected, a phase that does not
//! finish — becomes a failed run, never an empty alert list.

use std::time::{Duration, Instant};

use aegis_model::{RunStatus, ScannerRun, Side, Source};
use aegis_security::zap::{ApiAlert, ZapRules, alerts_from_api, to_findings};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a ZAP scan failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZapError {
    #[error("ZAP daemon at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("ZAP rejected the API key (bad_api_key); set the key the daemon was started with")]
    BadApiKey,
    #[error(
        "ZAP at {url} accepted the connection but closed it without a reply: a daemon started without `-config api.reportpermerrors=true` does this when the API key is wrong or this client's address is not in its `api.addrs`; check both ({message})"
    )]
    NoReply { url: String, message: String },
    #[error("ZAP API error {code}: {message}")]
    Api { code: String, message: String },
    #[error("ZAP {phase} did not finish within {seconds}s")]
    Timeout { phase: &'static str, seconds: u64 },
    #[error("unexpected ZAP response from {endpoint}: {message}")]
    Protocol { endpoint: String, message: String },
}

/// What the baseline scan does and how long each phase may take.
#[derive(Debug, Clone)]
pub struct ZapScanOptions {
    pub spider: bool,
    /// 0: ZAP's default.
    pub spider_max_children: u32,
    pub ajax_spider: bool,
    pub active_scan: bool,
    pub spider_timeout: Duration,
    pub passive_timeout: Duration,
    pub active_timeout: Duration,
    pub poll_interval: Duration,
    pub page_size: u32,
    /// Where to report each phase's percentage (a terminal's progress display).
    pub progress: Option<crate::runner::ProgressSender>,
}

impl Default for ZapScanOptions {
    fn default() -> Self {
        ZapScanOptions {
            spider: true,
            spider_max_children: 0,
            ajax_spider: false,
            active_scan: false,
            spider_timeout: Duration::from_secs(120),
            passive_timeout: Duration::from_secs(120),
            active_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_millis(500),
            page_size: 500,
            progress: None,
        }
    }
}

/// An error with its sources, which carry the reason (reqwest's own message is "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[derive(Debug, Clone)]
pub struct ZapClient {
    base: String,
    api_key: Option<String>,
    http: reqwest::Client,
}

impl ZapClient {
    /// `base` is the daemon's address, e.g. `http://127.0.0.1:8090`. `request_timeout` bounds every
    /// single API call.
    pub fn new(base: &str, api_key: Option<String>, request_timeout: Duration) -> Result<ZapClient, ZapError> {
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(request_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ZapError::Protocol { endpoint: base.into(), message: e.to_string() })?;
        Ok(ZapClient { base: base.trim_end_matches('/').to_owned(), api_key, http })
    }

    async fn call<T: DeserializeOwned>(&self, path: &str, params: &[(&str, String)]) -> Result<T, ZapError> {
        let url = format!("{}/JSON/{path}/", self.base);
        let mut req = self.http.get(&url).query(params);
        if let Some(k) = &self.api_key {
            req = req.header("X-ZAP-API-Key", k);
        }
        let resp = req.send().await.map_err(|e| {
            // Connected, then closed without an answer: a permission error the daemon does not report.
            let message = error_chain(&e);
            if !e.is_connect() && !e.is_timeout() && (message.contains("closed") || message.contains("IncompleteMessage")) {
                ZapError::NoReply { url: self.base.clone(), message }
            } else {
                ZapError::Unreachable { url: self.base.clone(), message }
            }
        })?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| ZapError::Unreachable { url: self.base.clone(), message: e.to_string() })?;
        if !status.is_success() {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let code = v.get("code").and_then(Value::as_str).unwrap_or("").to_owned();
            if code == "bad_api_key" {
                return Err(ZapError::BadApiKey);
            }
            let message = v.get("message").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| format!("HTTP {status}"));
            return Err(ZapError::Api { code: if code.is_empty() { status.as_str().to_owned() } else { code }, message });
        }
        serde_json::from_slice(&body).map_err(|e| ZapError::Protocol { endpoint: path.into(), message: e.to_string() })
    }

    async fn field(&self, path: &str, params: &[(&str, String)], key: &str) -> Result<String, ZapError> {
        let v: Value = self.call(path, params).await?;
        v.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ZapError::Protocol { endpoint: path.into(), message: format!("no `{key}` in {v}") })
    }

    pub async fn version(&self) -> Result<String, ZapError> {
        self.field("core/view/version", &[], "version").await
    }

    pub async fn access_url(&self, url: &str) -> Result<(), ZapError> {
        let _: Value = self.call("core/action/accessUrl", &[("url", url.into()), ("followRedirects", "true".into())]).await?;
        Ok(())
    }

    async fn poll_percent(
        &self,
        status_path: &str,
        scan_id: &str,
        phase: &'static str,
        deadline: Duration,
        every: Duration,
        progress: Option<&crate::runner::ProgressSender>,
    ) -> Result<(), ZapError> {
        let start = Instant::now();
        loop {
            let status = self.field(status_path, &[("scanId", scan_id.into())], "status").await?;
            let pct: u32 =
                status.parse().map_err(|_| ZapError::Protocol { endpoint: status_path.into(), message: format!("status {status:?}") })?;
            crate::runner::report(
                progress,
                crate::runner::ScanProgress::Phase { scanner: aegis_model::Source::Zap, phase, percent: Some(pct.min(100)) },
            );
            if pct >= 100 {
                return Ok(());
            }
            if start.elapsed() >= deadline {
                return Err(ZapError::Timeout { phase, seconds: deadline.as_secs() });
            }
            tokio::time::sleep(every).await;
        }
    }

    pub async fn spider(&self, url: &str, opts: &ZapScanOptions) -> Result<(), ZapError> {
        let id = self
            .field(
                "spider/action/scan",
                &[
                    ("url", url.into()),
                    ("recurse", "true".into()),
                    ("maxChildren", opts.spider_max_children.to_string()),
                    ("subtreeOnly", "false".into()),
                ],
                "scan",
            )
            .await?;
        self.poll_percent("spider/view/status", &id, "spider", opts.spider_timeout, opts.poll_interval, opts.progress.as_ref()).await
    }

    pub async fn ajax_spider(&self, url: &str, opts: &ZapScanOptions) -> Result<(), ZapError> {
        let _: Value = self.call("ajaxSpider/action/scan", &[("url", url.into())]).await.map_err(|e| match e {
            ZapError::Api { code, .. } if code == "no_implementor" => ZapError::Api {
                code,
                message: "this ZAP has no AJAX spider (the spiderAjax add-on is not installed); drop --ajax-spider or install it".into(),
            },
            other => other,
        })?;
        let start = Instant::now();
        loop {
            if self.field("ajaxSpider/view/status", &[], "status").await? != "running" {
                return Ok(());
            }
            if start.elapsed() >= opts.spider_timeout {
                let _: Result<Value, _> = self.call("ajaxSpider/action/stop", &[]).await;
                return Err(ZapError::Timeout { phase: "AJAX spider", seconds: opts.spider_timeout.as_secs() });
            }
            tokio::time::sleep(opts.poll_interval).await;
        }
    }

    /// Wait until the passive scanner's queue is empty: alerts read before then are incomplete.
    pub async fn wait_passive(&self, opts: &ZapScanOptions) -> Result<(), ZapError> {
        let start = Instant::now();
        loop {
            let left = self.field("pscan/view/recordsToScan", &[], "recordsToScan").await?;
            crate::runner::report(
                opts.progress.as_ref(),
                crate::runner::ScanProgress::Phase { scanner: aegis_model::Source::Zap, phase: "passive scan", percent: None },
            );
            if left.trim() == "0" {
                return Ok(());
            }
            if start.elapsed() >= opts.passive_timeout {
                return Err(ZapError::Timeout { phase: "passive scan", seconds: opts.passive_timeout.as_secs() });
            }
            tokio::time::sleep(opts.poll_interval).await;
        }
    }

    pub async fn active_scan(&self, url: &str, opts: &ZapScanOptions) -> Result<(), ZapError> {
        let id = self.field("ascan/action/scan", &[("url", url.into()), ("recurse", "true".into())], "scan").await?;
        self.poll_percent("ascan/view/status", &id, "active scan", opts.active_timeout, opts.poll_interval, opts.progress.as_ref()).await
    }

    /// Every alert for `baseurl`, page by page.
    pub async fn alerts(&self, baseurl: &str, page_size: u32) -> Result<Vec<ApiAlert>, ZapError> {
        let mut all = Vec::new();
        loop {
            let body: Value = self
                .call(
                    "alert/view/alerts",
                    &[("baseurl", baseurl.into()), ("start", all.len().to_string()), ("count", page_size.to_string())],
                )
                .await?;
            let page: Vec<ApiAlert> = serde_json::from_value(body.get("alerts").cloned().unwrap_or(Value::Null))
                .map_err(|e| ZapError::Protocol { endpoint: "alert/view/alerts".into(), message: e.to_string() })?;
            let n = page.len();
            all.extend(page);
            if n < page_size as usize {
                return Ok(all);
            }
        }
    }

    /// The whole baseline scan of `target`, as a scanner run.
    pub async fn scan(&self, target: &str, opts: &ZapScanOptions, rules: &ZapRules, side: Side) -> ScannerRun {
        let started = Timestamp::now();
        let clock = Instant::now();
        let mut run = ScannerRun::new(Source::Zap, side, target, started);
        let result: Result<(String, Vec<ApiAlert>), ZapError> = async {
            let version = self.version().await?;
            self.access_url(target).await?;
            if opts.spider {
                self.spider(target, opts).await?;
            }
            if opts.ajax_spider {
                self.ajax_spider(target, opts).await?;
            }
            self.wait_passive(opts).await?;
            if opts.active_scan {
                self.active_scan(target, opts).await?;
            }
            Ok((version, self.alerts(target, opts.page_size.max(1)).await?))
        }
        .await;
        run.duration_ms = clock.elapsed().as_millis() as u64;
        match result.and_then(|(v, api)| {
            alerts_from_api(&api, target)
                .map(|a| (v, a, api.len()))
                .map_err(|e| ZapError::Protocol { endpoint: "alert/view/alerts".into(), message: e.to_string() })
        }) {
            Ok((version, alerts, raw)) => {
                let z = to_findings(&alerts, rules);
                run.tool_version = Some(version);
                run.findings = z.findings;
                run.suppressed = z.suppressed;
                run.notes.push(format!("{raw} alert instance(s) from the daemon, {} rule(s)", alerts.len()));
            }
            Err(e) => run.status = RunStatus::Failed { reason: e.to_string() },
        }
        run
    }
}
