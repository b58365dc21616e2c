//! Shadow verification: prove a fix on an isolated copy before production.
//!
//! One plan, one deadline: the shadow is created; the **baseline** scans (production's images and
//! manifest, as it is) start at once and run concurrently with applying the fix in the shadow — through
//! the same `apply_fix` production will use — and watching its health. Once the shadow is healthy the
//! **candidate** is scanned (the shadow's images and manifest after the fix, and Falco alerts attributed
//! to the shadow namespace during the window), and the security gate judges baseline against candidate.
//! The shadow is deleted whatever happened. The result is one [`VerificationResult`].

use std::time::{Duration, Instant};

use aegis_k8s::health::{Health, watch_health};
use aegis_k8s::shadow::{self, Shadow, ShadowSpec};
use aegis_model::{Digest, Fix, ResourceRef, SecurityReport, Verdict};
use aegis_scanners::{FalcoWindow, ImageRef, ManifestSource, Runner, Targets};
use aegis_security::{Evidence, GatePolicy, evaluate};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
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
}

impl VerifyOptions {
    fn stage(&self, stage: Stage) {
        if let Some(p) = &self.progress {
            // A display that went away does not stop the verification.
            let _ = p.send(stage);
        }
    }
}

async fn smoke(url: Option<&str>, paths: &[String]) -> Vec<SmokeCheck> {
    let Some(base) = url else {
        return paths
            .iter()
            .map(|p| SmokeCheck { url: p.clone(), outcome: "unreachable".into(), detail: "no Service selects the workload".into() })
            .collect();
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Ok(http) = reqwest::Client::builder().timeout(Duration::from_secs(3)).build() else { return Vec::new() };
    let mut out = Vec::new();
    for path in paths {
        let url = format!("{base}{path}");
        let check = match http.get(&url).send().await {
            Ok(r) if r.status().is_success() || r.status().is_redirection() => {
                SmokeCheck { url, outcome: "passed".into(), detail: r.status().to_string() }
            }
            Ok(r) => SmokeCheck { url, outcome: "failed".into(), detail: r.status().to_string() },
            Err(e) => SmokeCheck { url, outcome: "unreachable".into(), detail: e.to_string() },
        };
        out.push(check);
    }
    out
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
    /// `passed` (2xx/3xx), `failed` (another status), or `unreachable` (no Service, or it cannot be
    /// reached from where AEGIS runs — e.g. fake Service IPs in a test cluster). Only `failed` blocks.
    pub outcome: String,
    pub detail: String,
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

fn template_of(obj: Option<&PodTemplateSpec>) -> Vec<ImageRef> {
    obj.and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()).filter_map(|c| c.image.clone()).map(ImageRef::new).collect())
        .unwrap_or_default()
}

/// The in-cluster URL of the first Service selecting the workload's pods (`http://svc.ns.svc:port`),
/// for ZAP and smoke checks. `None` when no Service selects it.
async fn service_url(client: &Client, workload: &ResourceRef, template: Option<&PodTemplateSpec>) -> Option<String> {
    let labels = template?.metadata.as_ref()?.labels.clone().unwrap_or_default();
    let services =
        Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), &workload.namespace).list(&Default::default()).await.ok()?;
    services.items.into_iter().find_map(|svc| {
        let spec = svc.spec?;
        let selector = spec.selector.filter(|s| !s.is_empty())?;
        if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return None;
        }
        let port = spec.ports?.first()?.port;
        Some(format!("http://{}.{}.svc:{port}", svc.metadata.name?, workload.namespace))
    })
}

/// The images and manifest of a workload, as targets for the scanners.
async fn targets_of(client: &Client, workload: &ResourceRef) -> Result<Targets, VerifyError> {
    let (images, manifest) = match workload.kind.as_str() {
        "Deployment" => {
            let d = Api::<Deployment>::namespaced(client.clone(), &workload.namespace)
                .get(&workload.name)
                .await
                .map_err(|e| VerifyError::Invalid(format!("{workload}: {e}")))?;
            (template_of(d.spec.as_ref().map(|s| &s.template)), serde_json::to_string(&d))
        }
        "StatefulSet" => {
            let s = Api::<StatefulSet>::namespaced(client.clone(), &workload.namespace)
                .get(&workload.name)
                .await
                .map_err(|e| VerifyError::Invalid(format!("{workload}: {e}")))?;
            (template_of(s.spec.as_ref().map(|s| &s.template)), serde_json::to_string(&s))
        }
        other => return Err(VerifyError::Invalid(format!("cannot verify a {other}"))),
    };
    let mut images = images;
    images.sort_by(|a, b| a.reference.cmp(&b.reference));
    images.dedup();
    let text = manifest.map_err(|e| VerifyError::Invalid(e.to_string()))?;
    let template: Option<PodTemplateSpec> = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.pointer("/spec/template").cloned())
        .and_then(|t| serde_json::from_value(t).ok());
    let url = service_url(client, workload, template.as_ref()).await;
    Ok(Targets { images, manifests: vec![ManifestSource { name: workload.to_string(), text }], url, falco: None })
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
    let baseline_targets = targets_of(client, source).await?;
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
        let health = watch_health(client, &shadow.health_target(), opts.window, health_deadline(opts.deadline, started.elapsed())).await?;
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
            timings: timings.clone(),
            shadow_namespace: shadow.namespace.clone(),
            evidence_digest: digest,
        });
    }
    let mut candidate_targets = targets_of(client, &shadow.workload).await?;
    if opts.runner.falco.is_some() {
        candidate_targets.falco = Some(FalcoWindow { namespace: shadow.namespace.clone(), since: fixed_at, until: jiff::Timestamp::now() });
    }
    let t = Instant::now();
    opts.stage(Stage::Scanning);
    let (candidate, smoke_checks) = tokio::join!(
        opts.runner.scan_side(&opts.policy, aegis_model::Side::Candidate, &candidate_targets),
        smoke(candidate_targets.url.as_deref(), &opts.smoke_paths)
    );
    let candidate: Evidence = candidate;
    timings.candidate_scan_ms = t.elapsed().as_millis() as u64;
    let report = evaluate(&opts.policy, Some(&baseline), &candidate, jiff::Timestamp::now());
    let mut reasons: Vec<String> =
        smoke_checks.iter().filter(|c| c.outcome == "failed").map(|c| format!("smoke: GET {} answered {}", c.url, c.detail)).collect();
    reasons.extend(report.reasons.iter().map(|r| format!("security [{}]: {}", r.rule, r.message)));
    let verdict = if smoke_checks.iter().any(|c| c.outcome == "failed") { Verdict::Blocked } else { report.verdict };
    let digest = Digest::of_json(&(fix, &health_report, report.evidence_digest.as_str()));
    Ok(VerificationResult {
        verdict,
        reasons,
        health: health_report,
        security: Some(report),
        smoke_checks,
        timings: timings.clone(),
        shadow_namespace: shadow.namespace.clone(),
        evidence_digest: digest,
    })
}
