//! Shadow verification: prove a fix on an isolated copy before production.
//!
//! One plan, one deadline: the shadow is created; the **baseline** scans (production's images and
//! manifest, as it is) start at once and run concurrently with applying the fix in the shadow — through
//! the same `apply_fix` production will use — and watching its health. Once the shadow is healthy the
//! **candidate** is scanned (the shadow's images and manifest after the fix, and Falco alerts attributed
//! to the shadow namespace during the window), and the security gate judges baseline against candidate.
//! The shadow is deleted whatever happened. The result is one [`VerificationResult`].

use std::time::{Duration, Instant};

use aegis_k8s::health::{Health, watch_health_with};
use aegis_k8s::isolation::{Isolation, IsolationStatus, probe_isolation};
use aegis_k8s::shadow::{self, Shadow, ShadowSpec};
use aegis_model::{Digest, Fix, ResourceRef, SecurityReport, Verdict};
use aegis_scanners::{FalcoWindow, ImageRef, ManifestSource, Runner, Targets};
use aegis_security::{Evidence, GatePolicy, evaluate};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::{Api, Client};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    K8s(#[from] aegis_k8s::K8sError),
    #[error("{0}")]
    Invalid(String),
}

/// Where a verification is, for a person watching it (`aegis analyze --verify` on a terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    CreatingShadow,
    /// The fix applied in the shadow; its pods rolling out, the health window running, the baseline
    /// scans beside it.
    WatchingHealth,
    /// The health window as it stands: pods ready, seconds healthy of the window (sent as it
    /// changes, during `WatchingHealth`).
    Health(aegis_k8s::health::HealthProgress),
    /// The shadow was healthy: the candidate scans and smoke checks.
    Scanning,
    /// Deleting the shadow.
    CleaningUp,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::CreatingShadow => "creating the shadow",
            Stage::WatchingHealth => "fix applied in the shadow; pods starting, health window, baseline scans",
            Stage::Scanning => "shadow healthy; candidate scans and smoke checks",
            Stage::CleaningUp => "deleting the shadow",
            Stage::Health(p) => return write!(f, "fix applied in the shadow; {p}; baseline scans beside it"),
        })
    }
}

/// How to verify.
#[derive(Clone)]
pub struct VerifyOptions {
    /// How long the shadow must stay healthy.
    pub window: Duration,
    /// The whole verification's deadline (health included).
    pub deadline: Duration,
    pub policy: GatePolicy,
    pub runner: Runner,
    pub aegis_namespace: String,
    pub runtime_class: Option<String>,
    pub shadow_ttl: Duration,
    /// Probe paths to GET through the shadow's Service once it is healthy (from the verification plan).
    pub smoke_paths: Vec<String>,
    /// Each stage, as it begins, for a progress display (never blocks the verification).
    pub progress: Option<tokio::sync::mpsc::UnboundedSender<Stage>>,
    /// The isolation probe (an image speaking `probe connect`: the AEGIS image). `None`: isolation is
    /// reported as not checked, and blocks when the policy requires it.
    pub isolation_probe: Option<aegis_k8s::isolation::ProbeSpec>,
}

impl VerifyOptions {
    fn stage(&self, stage: Stage) {
        if let Some(p) = &self.progress {
            // A display that went away does not stop the verification.
            let _ = p.send(stage);
        }
    }
}

/// How often a smoke check is tried before it counts: the Service's endpoints and the node's proxy
/// rules follow readiness by a moment, so a refused connection right after it is not yet a verdict.
const SMOKE_ATTEMPTS: u32 = 5;
const SMOKE_RETRY: Duration = Duration::from_millis(700);

/// GET each of `paths` through the shadow's Service at `base`. A Service that cannot be reached is a
/// failed check (the fix's traffic path is broken or cannot be shown to work), never a pass; only a
/// workload that no Service selects has no check to run, and that is reported as skipped.
async fn smoke(base: Option<&str>, paths: &[String]) -> Vec<SmokeCheck> {
    let Some(base) = base else {
        return paths
            .iter()
            .map(|p| SmokeCheck { url: p.clone(), outcome: SmokeOutcome::Skipped, detail: "no Service selects the workload".into() })
            .collect();
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = match reqwest::Client::builder().timeout(Duration::from_secs(3)).build() {
        Ok(h) => h,
        Err(e) => {
            return paths
                .iter()
                .map(|p| SmokeCheck {
                    url: format!("{base}{p}"),
                    outcome: SmokeOutcome::Unreachable,
                    detail: format!("no HTTP client: {e}"),
                })
                .collect();
        }
    };
    let mut out = Vec::new();
    for path in paths {
        let url = format!("{base}{path}");
        let mut attempt = 0;
        let check = loop {
            attempt += 1;
            let check = match http.get(&url).send().await {
                Ok(r) if r.status().is_success() || r.status().is_redirection() => {
                    SmokeCheck { url: url.clone(), outcome: SmokeOutcome::Passed, detail: r.status().to_string() }
                }
                Ok(r) => SmokeCheck { url: url.clone(), outcome: SmokeOutcome::Failed, detail: r.status().to_string() },
                Err(e) => SmokeCheck { url: url.clone(), outcome: SmokeOutcome::Unreachable, detail: error_chain(&e) },
            };
            let transient = check.outcome == SmokeOutcome::Unreachable || check.detail.starts_with('5');
            if !transient || attempt >= SMOKE_ATTEMPTS {
                break check;
            }
            tokio::time::sleep(SMOKE_RETRY).await;
        };
        out.push(check);
    }
    out
}

/// An error with its sources (reqwest's own message is often just "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The health part of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    pub healthy: bool,
    pub reasons: Vec<String>,
    pub observations: Vec<String>,
}

/// Wall-clock milliseconds of each part. `baseline_scan` runs concurrently with `apply` + `health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    pub shadow_create_ms: u64,
    pub baseline_scan_ms: u64,
    pub apply_ms: u64,
    pub health_ms: u64,
    pub candidate_scan_ms: u64,
    pub total_ms: u64,
}

/// One HTTP smoke check on a probe path through the shadow's Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeCheck {
    pub url: String,
    pub outcome: SmokeOutcome,
    pub detail: String,
}

/// What a smoke check found. `failed` and `unreachable` block the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmokeOutcome {
    /// A 2xx or 3xx answer.
    Passed,
    /// Another status (after retries, for a 5xx).
    Failed,
    /// No answer through the Service: refused, timed out, no route (after retries).
    Unreachable,
    /// Nothing to check: no Service selects the workload.
    Skipped,
}

impl SmokeOutcome {
    /// Whether this outcome stops the fix.
    pub fn blocks(self) -> bool {
        matches!(self, SmokeOutcome::Failed | SmokeOutcome::Unreachable)
    }
}

impl std::fmt::Display for SmokeOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SmokeOutcome::Passed => "passed",
            SmokeOutcome::Failed => "failed",
            SmokeOutcome::Unreachable => "unreachable",
            SmokeOutcome::Skipped => "skipped",
        })
    }
}

/// One verification's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationResult {
    /// `passed` / `passed_with_warnings` only when the shadow was healthy and the gate let it through.
    pub verdict: Verdict,
    /// Why it did not pass (health reasons first, then the gate's).
    pub reasons: Vec<String>,
    pub health: HealthReport,
    pub security: Option<SecurityReport>,
    pub smoke_checks: Vec<SmokeCheck>,
    /// Whether a pod inside the shadow could reach production or the API server.
    #[serde(default)]
    pub isolation: Isolation,
    pub timings: Timings,
    pub shadow_namespace: String,
    /// Digest of the fix, the health observations and the security evidence: what an approval binds to.
    pub evidence_digest: Digest,
}

impl VerificationResult {
    /// Whether a signal stopped the verification (its shadow is deleted all the same).
    pub fn was_cancelled(&self) -> bool {
        self.verdict == Verdict::Error && self.health.reasons.iter().any(|r| r == CANCELLED)
    }
}

/// The health reason of a cancelled verification.
const CANCELLED: &str = "cancelled";

fn template_of(t: &PodTemplateSpec) -> Vec<ImageRef> {
    t.spec
        .as_ref()
        .map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()).filter_map(|c| c.image.clone()).map(ImageRef::new).collect())
        .unwrap_or_default()
}

/// Where the first Service selecting the workload's pods answers: its in-cluster name
/// (`http://svc.ns.svc:port`, for ZAP, which runs in the cluster) and the address smoke checks use —
/// its ClusterIP, which kube-proxy routes from any node and pod without cluster DNS (the name, for a
/// headless Service). `None` when no Service selects it.
async fn service_urls(client: &Client, workload: &ResourceRef, template: &PodTemplateSpec) -> Option<(String, String)> {
    let labels = template.metadata.as_ref()?.labels.clone().unwrap_or_default();
    let services =
        Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), &workload.namespace).list(&Default::default()).await.ok()?;
    services.items.into_iter().find_map(|svc| {
        let spec = svc.spec?;
        let selector = spec.selector.as_ref().filter(|s| !s.is_empty())?;
        if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return None;
        }
        let port = spec.ports.as_ref()?.first()?.port;
        let dns = format!("http://{}.{}.svc:{port}", svc.metadata.name?, workload.namespace);
        let direct = aegis_k8s::service_address(&spec).map_or_else(|| dns.clone(), |a| format!("http://{a}"));
        Some((dns, direct))
    })
}

/// A workload as the verification reads it once: the scanners' targets (images, manifest, Service
/// URL), where its Service answers smoke checks, and its pod template (the isolation probe is placed
/// like its pods).
struct ReadWorkload {
    targets: Targets,
    smoke_base: Option<String>,
    template: PodTemplateSpec,
}

/// Read `workload` for a verification.
async fn read_workload(client: &Client, workload: &ResourceRef) -> Result<ReadWorkload, VerifyError> {
    let (value, template) = aegis_k8s::get_workload(client, workload).await.map_err(|e| VerifyError::Invalid(e.to_string()))?;
    let mut images = template_of(&template);
    images.sort_by(|a, b| a.reference.cmp(&b.reference));
    images.dedup();
    let text = serde_json::to_string(&value).map_err(|e| VerifyError::Invalid(e.to_string()))?;
    let (url, smoke_base) = service_urls(client, workload, &template).await.unzip();
    let targets = Targets { images, manifests: vec![ManifestSource { name: workload.to_string(), text }], url, falco: None };
    Ok(ReadWorkload { targets, smoke_base, template })
}

/// Verify `fix` for the production workload `source`.
pub async fn verify(
    client: &Client,
    source: &ResourceRef,
    fix: &Fix,
    incident: Option<String>,
    opts: &VerifyOptions,
) -> Result<VerificationResult, VerifyError> {
    verify_until(client, source, fix, incident, opts, std::future::pending()).await
}

/// [`verify`], stopped early when `cancel` completes (say, on SIGINT or SIGTERM). A cancelled
/// verification still deletes its shadow before returning, and its verdict is `error`: an
/// unfinished proof never passes. Dropping the future instead would skip the cleanup (Rust has no
/// async drop), leaving the shadow to the expiry collector.
pub async fn verify_until(
    client: &Client,
    source: &ResourceRef,
    fix: &Fix,
    incident: Option<String>,
    opts: &VerifyOptions,
    cancel: impl Future<Output = String>,
) -> Result<VerificationResult, VerifyError> {
    let total = Instant::now();
    let mut timings = Timings::default();
    let spec = ShadowSpec {
        source: source.clone(),
        incident,
        ttl: opts.shadow_ttl,
        aegis_namespace: opts.aegis_namespace.clone(),
        runtime_class: opts.runtime_class.clone(),
        fix: Some(fix.clone()),
    };
    let t = Instant::now();
    opts.stage(Stage::CreatingShadow);
    let shadow = match shadow::create_shadow(client, &spec, jiff::Timestamp::now()).await {
        Ok(s) => s,
        // Not a failure to retry: this workload cannot be proven in a shadow. The verdict says so.
        Err(aegis_k8s::K8sError::NotShadowable(why)) => {
            return Ok(VerificationResult {
                verdict: Verdict::Error,
                reasons: vec![why.clone()],
                health: HealthReport { healthy: false, reasons: vec![why.clone()], observations: vec![] },
                security: None,
                smoke_checks: Vec::new(),
                isolation: Isolation::default(),
                timings: Timings { total_ms: total.elapsed().as_millis() as u64, ..Timings::default() },
                shadow_namespace: String::new(),
                evidence_digest: Digest::of_json(&(fix, &why)),
            });
        }
        Err(e) => return Err(e.into()),
    };
    timings.shadow_create_ms = t.elapsed().as_millis() as u64;
    let outcome = tokio::select! {
        r = tokio::time::timeout(opts.deadline, run(client, source, fix, &shadow, opts, &mut timings)) => match r {
            Ok(r) => Ended::Finished(Box::new(r)),
            Err(_) => Ended::Stopped(format!("verification did not finish within its {}s deadline", opts.deadline.as_secs()), "deadline"),
        },
        why = cancel => Ended::Stopped(format!("verification cancelled ({why}) before it finished"), CANCELLED),
    };
    // Cleanup always happens: success, failure, error, deadline or cancellation. The running scans
    // were dropped above, which kills their subprocesses.
    opts.stage(Stage::CleaningUp);
    if let Err(e) = shadow::delete_shadow(client, &shadow).await {
        tracing::error!(error = %e, namespace = %shadow.namespace, "shadow not deleted; the expiry collector will");
    }
    timings.total_ms = total.elapsed().as_millis() as u64;
    let mut result = match outcome {
        Ended::Finished(r) => (*r)?,
        Ended::Stopped(reason, short) => VerificationResult {
            verdict: Verdict::Error,
            reasons: vec![reason],
            health: HealthReport { healthy: false, reasons: vec![short.into()], observations: vec![] },
            security: None,
            smoke_checks: Vec::new(),
            isolation: Isolation::default(),
            timings: Timings::default(),
            shadow_namespace: shadow.namespace.clone(),
            evidence_digest: Digest::of_bytes(short.as_bytes()),
        },
    };
    result.timings = timings;
    Ok(result)
}

/// The health watch's share of what is left of the deadline: three quarters, so that a shadow that
/// never becomes healthy is reported as *blocked* with what the watch saw, and the verification's own
/// deadline (an *error*) stays for what cannot be judged — a hung scanner or API server.
fn health_deadline(deadline: Duration, spent: Duration) -> Duration {
    deadline.saturating_sub(spent) * 3 / 4
}

/// How the verification's work ended.
enum Ended {
    Finished(Box<Result<VerificationResult, VerifyError>>),
    /// Stopped before it finished: the reason, and a one-word health reason.
    Stopped(String, &'static str),
}

async fn run(
    client: &Client,
    source: &ResourceRef,
    fix: &Fix,
    shadow: &Shadow,
    opts: &VerifyOptions,
    timings: &mut Timings,
) -> Result<VerificationResult, VerifyError> {
    let started = Instant::now();
    let baseline_targets = read_workload(client, source).await?.targets;
    let baseline = async {
        let t = Instant::now();
        let e = opts.runner.scan_side(&opts.policy, aegis_model::Side::Baseline, &baseline_targets).await;
        (e, t.elapsed().as_millis() as u64)
    };
    let shadow_fix = shadow::retarget(fix, shadow);
    let apply_and_watch = async {
        let t = Instant::now();
        aegis_k8s::apply_fix(client, &shadow_fix, true, "aegis-shadow").await?;
        aegis_k8s::apply_fix(client, &shadow_fix, false, "aegis-shadow").await?;
        let applied_ms = t.elapsed().as_millis() as u64;
        opts.stage(Stage::WatchingHealth);
        let fixed_at = jiff::Timestamp::now();
        let t = Instant::now();
        let deadline = health_deadline(opts.deadline, started.elapsed());
        let health = watch_health_with(client, &shadow.health_target(), opts.window, deadline, |p| opts.stage(Stage::Health(p))).await?;
        Ok::<_, VerifyError>((health, applied_ms, t.elapsed().as_millis() as u64, fixed_at))
    };
    let ((baseline, baseline_ms), applied) = tokio::join!(baseline, apply_and_watch);
    timings.baseline_scan_ms = baseline_ms;
    let (health, apply_ms, health_ms, fixed_at) = applied?;
    timings.apply_ms = apply_ms;
    timings.health_ms = health_ms;
    let health_report = match &health.health {
        Health::Healthy => HealthReport { healthy: true, reasons: vec![], observations: health.observations.clone() },
        Health::Unhealthy { reasons } => {
            HealthReport { healthy: false, reasons: reasons.clone(), observations: health.observations.clone() }
        }
    };
    if !health_report.healthy {
        let digest = Digest::of_json(&(fix, &health_report));
        return Ok(VerificationResult {
            verdict: Verdict::Blocked,
            reasons: health_report.reasons.iter().map(|r| format!("health: {r}")).collect(),
            health: health_report,
            security: None,
            smoke_checks: Vec::new(),
            isolation: Isolation::default(),
            timings: timings.clone(),
            shadow_namespace: shadow.namespace.clone(),
            evidence_digest: digest,
        });
    }
    let ReadWorkload { targets: mut candidate_targets, smoke_base, template: shadow_template } =
        read_workload(client, &shadow.workload).await?;
    if opts.runner.falco.is_some() {
        candidate_targets.falco = Some(FalcoWindow { namespace: shadow.namespace.clone(), since: fixed_at, until: jiff::Timestamp::now() });
    }
    let t = Instant::now();
    opts.stage(Stage::Scanning);
    let isolation = async {
        match &opts.isolation_probe {
            Some(probe) => probe_isolation(client, shadow, Some(&shadow_template), probe).await,
            None => Isolation::not_checked("no isolation probe is configured (--isolation-probe-image)"),
        }
    };
    let (candidate, smoke_checks, isolation) = tokio::join!(
        opts.runner.scan_side(&opts.policy, aegis_model::Side::Candidate, &candidate_targets),
        smoke(smoke_base.as_deref(), &opts.smoke_paths),
        isolation
    );
    let candidate: Evidence = candidate;
    timings.candidate_scan_ms = t.elapsed().as_millis() as u64;
    let report = evaluate(&opts.policy, Some(&baseline), &candidate, jiff::Timestamp::now());
    let mut reasons: Vec<String> = smoke_checks
        .iter()
        .filter(|c| c.outcome.blocks())
        .map(|c| match c.outcome {
            SmokeOutcome::Unreachable => format!("smoke: GET {} unreachable: {}", c.url, c.detail),
            _ => format!("smoke: GET {} answered {}", c.url, c.detail),
        })
        .collect();
    // Isolation the policy requires (by default: when Secrets were copied into the shadow) must be
    // shown: reached production is a block, a probe that did not run is evidence that cannot be judged.
    let isolation_required = opts.policy.policy.isolation.required(!shadow.secrets.is_empty());
    let (isolation_blocks, isolation_error) = match (isolation.status, isolation_required) {
        (IsolationStatus::NotEnforced, true) => (true, false),
        (IsolationStatus::NotChecked, true) => (false, true),
        _ => (false, false),
    };
    if isolation_blocks || isolation_error {
        let copied = if shadow.secrets.is_empty() { String::new() } else { format!(" (Secrets copied: {})", shadow.secrets.join(", ")) };
        reasons.push(format!("isolation {}{copied}: {}", isolation.status, isolation.detail));
    }
    reasons.extend(report.reasons.iter().map(|r| format!("security [{}]: {}", r.rule, r.message)));
    // A smoke check or isolation that blocks outranks the gate's pass — but not its error: evidence
    // that could not be judged stays an error.
    let smoke_blocks = smoke_checks.iter().any(|c| c.outcome.blocks());
    let verdict = if report.verdict == Verdict::Error || isolation_error {
        Verdict::Error
    } else if smoke_blocks || isolation_blocks {
        Verdict::Blocked
    } else {
        report.verdict
    };
    let digest = Digest::of_json(&(fix, &health_report, report.evidence_digest.as_str(), &smoke_checks, &isolation));
    Ok(VerificationResult {
        verdict,
        reasons,
        health: health_report,
        security: Some(report),
        smoke_checks,
        isolation,
        timings: timings.clone(),
        shadow_namespace: shadow.namespace.clone(),
        evidence_digest: digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An HTTP server on loopback that answers every request with `status`.
    async fn answering(status: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let _ = conn.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes()).await;
            }
        });
        format!("http://{addr}")
    }

    fn paths() -> Vec<String> {
        vec!["/ready".into()]
    }

    #[tokio::test]
    async fn a_service_that_answers_2xx_passes_the_smoke_check() {
        let checks = smoke(Some(&answering("200 OK").await), &paths()).await;
        assert_eq!(checks[0].outcome, SmokeOutcome::Passed, "{checks:?}");
        assert!(!checks[0].outcome.blocks());
    }

    #[tokio::test]
    async fn a_service_that_answers_404_fails_the_smoke_check() {
        let checks = smoke(Some(&answering("404 Not Found").await), &paths()).await;
        assert_eq!(checks[0].outcome, SmokeOutcome::Failed, "{checks:?}");
        assert!(checks[0].outcome.blocks());
    }

    #[tokio::test]
    async fn a_service_that_cannot_be_reached_blocks_instead_of_passing() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let checks = smoke(Some(&format!("http://{closed}")), &paths()).await;
        assert_eq!(checks[0].outcome, SmokeOutcome::Unreachable, "{checks:?}");
        assert!(checks[0].outcome.blocks(), "an unreachable shadow Service is a failed check");
        assert!(checks[0].detail.contains("onnect"), "the cause is named: {}", checks[0].detail);
    }

    #[tokio::test]
    async fn a_workload_without_a_service_has_its_smoke_checks_skipped_not_passed() {
        let checks = smoke(None, &paths()).await;
        assert_eq!(checks[0].outcome, SmokeOutcome::Skipped);
        assert!(!checks[0].outcome.blocks());
    }
}
