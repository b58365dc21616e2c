//! One reconcile = one step of one Incident's state machine.
//!
//! Each step reads the Incident, does its work, and writes the next status with a PUT on the status
//! subresource carrying the `resourceVersion` it read: if anything else wrote the Incident meanwhile
//! (another replica, a human), the write fails with 409 and the step runs again on fresh state. The
//! status write triggers the next reconcile. A crash at any point resumes at the recorded phase:
//! - Verifying deletes the shadows an interrupted verification of this incident left, then verifies
//!   again;
//! - Applying records the inverse patch *before* sending the fix, and the fix carries a marker
//!   annotation, so a resumed step sees the marker instead of sending it twice;
//! - Monitoring watches again from the start.
//!
//! The two long steps — the shadow verification and production's monitoring window — run as tasks
//! beside reconcile ([`crate::work`]): their reconcile starts the task, looks at it on each pass and
//! records its outcome once it has finished, so no reconcile holds a controller slot for minutes.

use std::sync::Arc;
use std::time::Duration;

use aegis_k8s::health::{Health, HealthSummary, HealthTarget, watch_health};
use aegis_model::{ResourceRef, Severity};
use aegis_verify::{VerificationResult, VerifyOptions};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};

use aegis_k8s::apply::{Guarded, Precondition, apply_guarded};

use crate::apply::{APPLIED_ANNOTATION, ROLLED_BACK_ANNOTATION};
use crate::crd::{Analysis, AppliedRecord, Incident, IncidentStatus, Phase, RollbackRecord, VerificationSummary};
use crate::machine::{ApprovalOutcome, ApprovalPolicy, decide_approval, phase_since, set_condition, transition};
use crate::metrics::Metrics;
use crate::work::{Attempt, Poll, Tasks};

/// How often a reconcile looks at its running task again (an in-memory check).
const POLL: Duration = Duration::from_secs(1);

/// What a verification task hands back.
pub struct Verified {
    result: Result<Box<VerificationResult>, aegis_verify::VerifyError>,
    /// The workload's generation the fix was verified against (production's guard at apply).
    workload_generation: i64,
}

/// What a monitoring task hands back.
pub type Monitored = Result<HealthSummary, aegis_k8s::K8sError>;

/// How the operator behaves.
#[derive(Clone)]
pub struct Settings {
    pub approval: ApprovalPolicy,
    /// How long production must stay healthy after an apply before the incident is resolved.
    pub monitor_window: Duration,
    /// How long production may take to roll the fix out before the monitoring gives up (and rolls back).
    pub rollout_timeout: Duration,
    /// The field manager of production patches.
    pub field_manager: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            approval: ApprovalPolicy { auto_approve_max_severity: None, timeout: Duration::from_secs(24 * 3600) },
            monitor_window: Duration::from_secs(60),
            rollout_timeout: Duration::from_secs(300),
            field_manager: "aegis-operator".into(),
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub verify: VerifyOptions,
    /// The gate policy for a plan's scanners.
    pub policy_for: crate::run::PolicyFor,
    /// Incidents outside it belong to another operator (or none): never touched.
    pub scope: crate::detect::Scope,
    pub recorder: Recorder,
    pub metrics: Metrics,
    /// Verifications in flight, by incident.
    pub verifications: Tasks<Verified>,
    /// Production monitoring windows in flight, by incident.
    pub monitors: Tasks<Monitored>,
    /// Consecutive failed steps, by incident: how long the next retry waits.
    pub failures: Failures,
    /// The leader's watch-fed caches; `None`: the analysis lists what it reads.
    pub caches: Option<Arc<aegis_k8s::cache::Caches>>,
    /// The controllers' own caches of Incidents, read for earlier incidents about a resource instead
    /// of a list per waiting incident per minute. Empty, or not listed yet: the step lists them.
    pub incidents: Vec<kube::runtime::reflector::Store<Incident>>,
}

/// Consecutive failed steps per incident.
#[derive(Default)]
pub struct Failures(std::sync::Mutex<std::collections::HashMap<String, u32>>);

impl Failures {
    /// Count one more failure of `incident`; how many in a row now.
    fn failed(&self, incident: &str) -> u32 {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(incident.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    fn succeeded(&self, incident: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(incident);
    }
}

/// How long to wait before retrying a step that failed `failures` times in a row: 0.5 s, doubling,
/// at most a minute. A 409 (someone wrote the Incident meanwhile) is retried almost at once; an API
/// server that keeps failing is not hammered.
pub fn retry_after(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(7);
    (Duration::from_millis(500) * 2u32.pow(exp)).min(Duration::from_secs(60))
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    K8s(#[from] aegis_k8s::K8sError),
    #[error(transparent)]
    Verify(#[from] aegis_verify::VerifyError),
    /// The API server did not answer a write within its deadline.
    #[error("{0}")]
    NoAnswer(String),
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The metric label of a failed step.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(e)) if e.code == 409 => "conflict",
            Error::Kube(_) => "api",
            Error::K8s(_) => "api",
            Error::Verify(_) => "verification",
            Error::NoAnswer(_) => "timeout",
            Error::Invalid(_) => "invalid",
        }
    }
}

/// The kube-runtime reconciler.
pub async fn reconcile(incident: Arc<Incident>, ctx: Arc<Context>) -> Result<Action, Error> {
    let phase = incident.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if phase.is_terminal() || !ctx.scope.admits(&incident.namespace().unwrap_or_default()) {
        let id = format!("{}/{}", incident.namespace().unwrap_or_default(), incident.name_any());
        ctx.verifications.forget(&id);
        ctx.monitors.forget(&id);
        return Ok(Action::await_change());
    }
    // Every log line of the step carries the incident and its phase.
    let span =
        tracing::info_span!("reconcile", namespace = %incident.namespace().unwrap_or_default(), incident = %incident.name_any(), %phase);
    let started = std::time::Instant::now();
    let result = tracing::Instrument::instrument(step(&incident, &ctx, phase), span).await;
    ctx.metrics.reconciled(phase, started.elapsed());
    match &result {
        Err(e) => ctx.metrics.reconcile_error(phase, e.kind()),
        Ok(_) => ctx.failures.succeeded(&format!("{}/{}", incident.namespace().unwrap_or_default(), incident.name_any())),
    }
    result
}

/// The step of the incident's current phase.
async fn step(incident: &Arc<Incident>, ctx: &Arc<Context>, phase: Phase) -> Result<Action, Error> {
    let step = Step { ctx, incident, status: incident.status.clone().unwrap_or_default(), now: Timestamp::now() };
    if let Some(refusal) = crate::machine::foreign_target(&incident.namespace().unwrap_or_default(), &incident.spec.resource) {
        return step.commit(Phase::Failed, refusal, EventType::Warning).await;
    }
    match phase {
        Phase::Detected => step.start().await,
        Phase::Analyzing => step.analyze().await,
        Phase::Verifying => step.verify().await,
        Phase::AwaitingApproval => step.await_approval().await,
        Phase::Applying => step.apply().await,
        Phase::Monitoring => step.monitor().await,
        _ => Ok(Action::await_change()),
    }
}

/// After a failed step: retry, backing off while it keeps failing (see [`retry_after`]).
pub fn error_policy(incident: Arc<Incident>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx.failures.failed(&format!("{}/{}", incident.namespace().unwrap_or_default(), incident.name_any()));
    let wait = retry_after(failures);
    tracing::warn!(incident = %incident.name_any(), namespace = ?incident.namespace(), %error, failures, retry_in_ms = wait.as_millis() as u64, "reconcile failed; retrying");
    Action::requeue(wait)
}

struct Step<'a> {
    ctx: &'a Context,
    incident: &'a Incident,
    status: IncidentStatus,
    now: Timestamp,
}

impl Step<'_> {
    fn id(&self) -> String {
        format!("{}/{}", self.incident.namespace().unwrap_or_default(), self.incident.name_any())
    }

    /// This pass's attempt at the current phase: the incident, its uid and when it entered the phase.
    fn attempt(&self) -> Attempt {
        Attempt {
            incident: self.id(),
            uid: self.incident.metadata.uid.clone().unwrap_or_default(),
            phase: self.status.phase,
            since: phase_since(&self.status).map(|t| t.to_string()).unwrap_or_default(),
        }
    }

    fn resource(&self) -> &ResourceRef {
        &self.incident.spec.resource
    }

    /// The workload the fix is proven on and monitored: the plan's, else the incident's resource.
    fn workload(&self) -> ResourceRef {
        self.status.analysis.as_ref().and_then(|a| a.plan.workload.clone()).unwrap_or_else(|| self.resource().clone())
    }

    /// Write the status (PUT with the read resourceVersion), then emit the transition's Events.
    async fn commit(mut self, phase: Phase, reason: String, event: EventType) -> Result<Action, Error> {
        // The transition happened now, at the end of the step's work (a verification takes a while).
        self.now = Timestamp::now();
        let from = self.status.phase;
        transition(&mut self.status, phase, reason.clone(), self.now);
        let mut updated = self.incident.clone();
        updated.status = Some(self.status.clone());
        let api: Api<Incident> = Api::namespaced(self.ctx.client.clone(), &self.incident.namespace().unwrap_or_default());
        // A write with its own deadline: a hung API server fails the step (retried), never hangs it.
        tokio::time::timeout(
            aegis_k8s::apply::WRITE_TIMEOUT,
            api.replace_status(&self.incident.name_any(), &PostParams::default(), &updated),
        )
        .await
        .map_err(|_| Error::NoAnswer(format!("no answer to the status write within {}s", aegis_k8s::apply::WRITE_TIMEOUT.as_secs())))??;
        if from != phase {
            tracing::info!(incident = %self.id(), %from, to = %phase, %reason, "transition");
            self.ctx.metrics.transition(self.incident.spec.category, phase);
            self.publish(phase, &reason, event).await;
        }
        Ok(if phase.is_terminal() { Action::await_change() } else { Action::requeue(Duration::from_secs(30)) })
    }

    /// An Event on the Incident and one on the workload; a failure to publish is logged, never fatal.
    async fn publish(&self, phase: Phase, reason: &str, type_: EventType) {
        let note: String = reason.chars().take(1000).collect();
        let ev = Event { type_, reason: phase.as_str().into(), note: Some(note), action: "Reconcile".into(), secondary: None };
        let on_incident = self.incident.object_ref(&());
        let r = self.resource();
        let on_workload = ObjectReference {
            api_version: aegis_k8s::api_resource(&r.kind).ok().map(|ar| ar.api_version),
            kind: Some(r.kind.clone()),
            name: Some(r.name.clone()),
            namespace: Some(r.namespace.clone()),
            ..Default::default()
        };
        // Never an Event on an object outside the Incident's namespace (a refused, foreign target).
        let on_workload = (r.namespace == self.incident.namespace().unwrap_or_default()).then_some(on_workload);
        for reference in std::iter::once(on_incident).chain(on_workload) {
            if let Err(e) = self.ctx.recorder.publish(&ev, &reference).await {
                tracing::warn!(incident = %self.id(), error = %e, "event not published");
            }
        }
    }

    /// The current `metadata.generation` of a production object.
    async fn generation_of(&self, r: &ResourceRef) -> Result<Option<i64>, Error> {
        let api = aegis_k8s::read_api(&self.ctx.client, r)?;
        Ok(api.get_opt(&r.name).await?.map(|o| crate::crd::change_marker(&r.kind, o.metadata.generation, o.data.pointer("/spec/selector"))))
    }

    /// The Incidents of this incident's namespace: from the controllers' caches once they are listed
    /// (an unlisted cache would read as "none", which is not evidence of none), else from a list.
    async fn incidents_here(&self) -> Result<Vec<Arc<Incident>>, Error> {
        let ns = self.incident.namespace().unwrap_or_default();
        let stores = &self.ctx.incidents;
        let listed = !stores.is_empty() && stores.iter().all(aegis_k8s::cache::has_listed);
        if listed {
            return Ok(stores.iter().flat_map(|s| s.state_filter(|i| i.metadata.namespace.as_deref() == Some(ns.as_str()))).collect());
        }
        let listed = Api::<Incident>::namespaced(self.ctx.client.clone(), &ns).list(&Default::default()).await?;
        Ok(listed.items.into_iter().map(Arc::new).collect())
    }

    /// Superseded when the incident's resource is gone or at another generation than detected.
    async fn superseded(&self) -> Result<Option<String>, Error> {
        let r = self.resource();
        Ok(match self.generation_of(r).await? {
            None => Some(format!("{r} no longer exists")),
            Some(g) if g != self.incident.spec.detected_generation => Some(format!(
                "{r} changed under AEGIS (generation {} → {g}); not acting on a stale analysis",
                self.incident.spec.detected_generation
            )),
            Some(_) => None,
        })
    }

    async fn start(self) -> Result<Action, Error> {
        let reason = format!("{} detected on {}", self.incident.spec.category, self.resource());
        let mut s = self;
        // Record Detected first (so it appears in the history), then move on.
        transition(&mut s.status, Phase::Detected, reason.clone(), s.now);
        crate::failpoint::hit("detected:before-commit");
        s.commit(Phase::Analyzing, format!("{reason}; analyzing"), EventType::Normal).await
    }

    async fn analyze(mut self) -> Result<Action, Error> {
        if let Some(why) = self.superseded().await? {
            return self.commit(Phase::Superseded, why, EventType::Warning).await;
        }
        let r = self.resource().clone();
        // A decoded snapshot is megabytes at thousands of pods: it lives only while it is analysed,
        // never across an await, so no more are alive at once than threads analyse (docs/benchmarks.md).
        let cached = self.ctx.caches.as_ref().and_then(|c| c.snapshot(&r.namespace)).map(|snap| aegis_analysis::analyze(&snap));
        let analysed = match cached {
            Some(found) => found,
            None => aegis_analysis::analyze(
                &aegis_k8s::snapshot(&self.ctx.client, &aegis_k8s::Scope { namespace: Some(r.namespace.clone()), label_selector: None })
                    .await?,
            ),
        };
        let found = analysed.into_iter().find(|i| i.resource == r && i.category == self.incident.spec.category);
        let Some(found) = found else {
            let reason = format!("{r} no longer shows {}; nothing to do", self.incident.spec.category);
            return self.commit(Phase::Resolved, reason, EventType::Normal).await;
        };
        let manual = found.fix.patch.is_none();
        let summary = found.fix.summary.clone();
        self.status.analysis = Some(Analysis {
            root_cause: found.root_cause.clone(),
            evidence: found.evidence.iter().take(10).cloned().collect(),
            confidence: found.confidence,
            fix: found.fix,
            plan: found.verification_plan,
        });
        crate::failpoint::hit("analyzing:before-commit");
        if manual {
            return self.commit(Phase::Failed, format!("no automatic fix: {}; {summary}", found.root_cause), EventType::Warning).await;
        }
        self.commit(Phase::Verifying, format!("{}; verifying: {summary}", found.root_cause), EventType::Normal).await
    }

    async fn verify(self) -> Result<Action, Error> {
        let attempt = self.attempt();
        match self.ctx.verifications.poll(&attempt) {
            Poll::Running => return Ok(Action::requeue(POLL)),
            Poll::Done(outcome) => return self.verified(&outcome).await,
            Poll::Idle => {}
        }
        // An interrupted verification of this incident left its shadow: delete it before starting again.
        for s in aegis_k8s::shadow::list_shadows(&self.ctx.client).await? {
            if s.incident == self.id() && s.phase != "Terminating" {
                tracing::info!(incident = %self.id(), shadow = %s.namespace, "deleting the shadow of an interrupted verification");
                aegis_k8s::shadow::delete_shadow_namespace(&self.ctx.client, &s.namespace).await?;
            }
        }
        if let Some(why) = self.superseded().await? {
            return self.commit(Phase::Superseded, why, EventType::Warning).await;
        }
        let Some(analysis) = self.status.analysis.clone() else {
            return self.commit(Phase::Analyzing, "verification without an analysis; analyzing again".into(), EventType::Warning).await;
        };
        let workload = self.workload();
        let Some(workload_generation) = self.generation_of(&workload).await? else {
            return self.commit(Phase::Superseded, format!("{workload} no longer exists"), EventType::Warning).await;
        };
        let mut opts: VerifyOptions = self.ctx.verify.clone();
        opts.smoke_paths = analysis.plan.smoke_paths.clone();
        opts.policy = (self.ctx.policy_for)(&analysis.plan.security_checks).map_err(Error::Invalid)?;
        let (client, id, metrics) = (self.ctx.client.clone(), self.id(), self.ctx.metrics.clone());
        tracing::info!(incident = %id, %workload, "verification started");
        // The task outlives this reconcile's span: it carries its own, with the incident in it.
        let span = tracing::info_span!("verification", namespace = %self.incident.namespace().unwrap_or_default(), incident = %self.incident.name_any(), %workload);
        let task = async move {
            let started = std::time::Instant::now();
            crate::failpoint::during("verifying:during");
            let result = aegis_verify::verify(&client, &workload, &analysis.fix, Some(id), &opts).await.map(Box::new);
            if let Ok(result) = &result {
                metrics.verification(result, started.elapsed());
            }
            Verified { result, workload_generation }
        };
        self.ctx.verifications.start(attempt, tracing::Instrument::instrument(task, span));
        Ok(Action::requeue(POLL))
    }

    /// Record a finished verification: its evidence, and the phase its verdict leads to.
    async fn verified(mut self, outcome: &Result<Verified, String>) -> Result<Action, Error> {
        let id = self.id();
        let verified = outcome.as_ref().map_err(|e| Error::Invalid(format!("the verification {e}")));
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                self.ctx.verifications.forget(&id);
                return Err(e);
            }
        };
        let result = match &verified.result {
            Ok(result) => result,
            Err(e) => {
                // Verified again on the next pass (after the error policy's pause).
                let message = e.to_string();
                self.ctx.verifications.forget(&id);
                return Err(Error::Invalid(message));
            }
        };
        let config_map = crate::evidence::store(&self.ctx.client, self.incident, result).await?;
        self.status.verification = Some(summary(result, config_map, verified.workload_generation, self.now));
        let ctx = self.ctx;
        let action = if result.verdict.allows_production() {
            let reason = format!(
                "verified in {}: {} ({} ms); awaiting approval of evidence {}",
                result.shadow_namespace,
                result.verdict,
                result.timings.total_ms,
                result.evidence_digest.as_str()
            );
            self.commit(Phase::AwaitingApproval, reason, EventType::Normal).await?
        } else {
            let reason = format!("verification {}: {}", result.verdict, result.reasons.join("; "));
            self.commit(Phase::Failed, reason, EventType::Warning).await?
        };
        ctx.verifications.forget(&id);
        Ok(action)
    }

    async fn await_approval(mut self) -> Result<Action, Error> {
        if let Some(why) = self.superseded().await? {
            return self.commit(Phase::Superseded, why, EventType::Warning).await;
        }
        let Some(verification) = self.status.verification.clone() else {
            return self
                .commit(Phase::Verifying, "awaiting approval without a verification; verifying again".into(), EventType::Warning)
                .await;
        };
        let since = phase_since(&self.status).unwrap_or(self.now);
        // A plan that asks for a human (weaker inference, a fix from outside the rules) is never
        // approved by policy.
        let mut approval_required = self.status.analysis.as_ref().is_none_or(|a| a.plan.approval_required);
        // The same fix rolled back before on this resource: a human decides, the policy does not. Once
        // found, the condition remembers it (no listing on every requeue).
        if self.status.conditions.iter().any(|c| c.type_ == "RegressedBefore" && c.status == "True") {
            approval_required = true;
        } else if !approval_required && let Some(analysis) = &self.status.analysis {
            let others = self.incidents_here().await?;
            let earlier = others.iter().filter(|i| i.name_any() != self.incident.name_any()).filter_map(|i| {
                let name = i.metadata.name.as_deref()?;
                Some((name, &i.spec, i.status.as_ref()?))
            });
            if let Some(earlier) = crate::machine::regressed_before(self.resource(), &analysis.fix, earlier) {
                let message =
                    format!("the same fix was rolled back after it regressed production (incident {earlier}): a human must approve it");
                set_condition(&mut self.status, "RegressedBefore", true, "RolledBackBefore", message.clone(), self.now);
                return self.commit(Phase::AwaitingApproval, message, EventType::Warning).await;
            }
        }
        let outcome = decide_approval(
            self.incident.spec.approval.as_ref(),
            &verification,
            self.incident.spec.severity,
            approval_required,
            &self.ctx.settings.approval,
            since,
            self.now,
        );
        match outcome {
            ApprovalOutcome::Approved(a) => {
                crate::failpoint::hit("awaiting-approval:before-commit");
                set_condition(&mut self.status, "ApprovalStale", false, "Current", "the approval names the current evidence", self.now);
                let reason = format!("approved by {} for evidence {}", a.by, a.evidence_digest.as_str());
                self.status.approved = Some(a);
                self.commit(Phase::Applying, reason, EventType::Normal).await
            }
            ApprovalOutcome::Rejected(a) => {
                let reason = format!("rejected by {}{}", a.by, a.comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default());
                self.commit(Phase::Rejected, reason, EventType::Normal).await
            }
            ApprovalOutcome::Expired => {
                let reason = format!("no decision within {}s", self.ctx.settings.approval.timeout.as_secs());
                self.commit(Phase::Expired, reason, EventType::Warning).await
            }
            ApprovalOutcome::Stale { approved, current } => {
                let message = format!("the approval names evidence {approved}, but the current verification's is {current}: refused");
                let already =
                    self.status.conditions.iter().any(|c| c.type_ == "ApprovalStale" && c.status == "True" && c.message == message);
                if !already {
                    set_condition(&mut self.status, "ApprovalStale", true, "DigestMismatch", message.clone(), self.now);
                    self.publish(Phase::AwaitingApproval, &message, EventType::Warning).await;
                    return self.commit(Phase::AwaitingApproval, message, EventType::Warning).await;
                }
                Ok(Action::requeue(Duration::from_secs(30)))
            }
            ApprovalOutcome::Waiting => {
                let left = self.ctx.settings.approval.timeout.saturating_sub(self.now.duration_since(since).unsigned_abs());
                Ok(Action::requeue(left.min(Duration::from_secs(60)).max(Duration::from_secs(1))))
            }
        }
    }

    async fn apply(mut self) -> Result<Action, Error> {
        let (Some(analysis), Some(verification), Some(approved)) =
            (self.status.analysis.clone(), self.status.verification.clone(), self.status.approved.clone())
        else {
            return self
                .commit(Phase::Failed, "applying without an analysis, a verification and an approval".into(), EventType::Warning)
                .await;
        };
        // Never apply what was not approved for exactly this evidence, nor a verdict that does not allow it.
        if approved.evidence_digest != verification.evidence_digest || !verification.verdict.allows_production() {
            return self
                .commit(Phase::Failed, "the approval does not match the verification; refusing to apply".into(), EventType::Warning)
                .await;
        }
        let Some(patch) = analysis.fix.patch.clone() else {
            return self.commit(Phase::Failed, "the fix has no patch".into(), EventType::Warning).await;
        };
        // Record the inverse before touching production; the status write starts the next step.
        if self.status.applied.is_none() {
            self.status.applied = Some(AppliedRecord { inverse: analysis.fix.inverse.clone(), generation: None, at: None });
            return self.commit(Phase::Applying, format!("applying to {}: inverse patch recorded", patch.target), EventType::Normal).await;
        }
        let marker = format!("{}@{}", self.id(), verification.evidence_digest.as_str());
        crate::failpoint::pause("applying:pause").await;
        let pre = Precondition { workload: self.workload(), generation: verification.workload_generation };
        let (outcome, _) =
            apply_guarded(&self.ctx.client, &patch, Some(&pre), APPLIED_ANNOTATION, &marker, &self.ctx.settings.field_manager).await?;
        let generation = match outcome {
            Guarded::Applied { generation } => {
                self.ctx.metrics.applied();
                generation
            }
            Guarded::AlreadyApplied { generation } => generation,
            Guarded::Changed { expected, found } => {
                let reason = format!("{} changed since it was verified (generation {expected} → {found}); not applying", pre.workload);
                return self.commit(Phase::Superseded, reason, EventType::Warning).await;
            }
        };
        crate::failpoint::hit("applying:after-patch");
        if let Some(a) = self.status.applied.as_mut() {
            a.generation = Some(generation);
            a.at = Some(self.now.to_string());
        }
        let reason = format!(
            "applied to {} (generation {generation}); monitoring for {}s",
            patch.target,
            self.ctx.settings.monitor_window.as_secs()
        );
        self.commit(Phase::Monitoring, reason, EventType::Normal).await
    }

    async fn monitor(self) -> Result<Action, Error> {
        let attempt = self.attempt();
        let id = self.id();
        match self.ctx.monitors.poll(&attempt) {
            Poll::Running => return Ok(Action::requeue(POLL)),
            Poll::Done(outcome) => {
                // A watch that failed and a task that panicked end alike: retried from the start.
                let summary = match outcome.as_ref() {
                    Ok(Ok(summary)) => summary.clone(),
                    failed => {
                        let message =
                            failed.as_ref().map_or_else(Clone::clone, |r| r.as_ref().err().map(ToString::to_string).unwrap_or_default());
                        self.ctx.monitors.forget(&id);
                        return Err(Error::Invalid(format!("monitoring: {message}")));
                    }
                };
                let ctx = self.ctx;
                let action = match summary.health {
                    Health::Healthy => {
                        let reason = format!("production healthy after the fix: {}", summary.observations.join("; "));
                        self.commit(Phase::Resolved, reason, EventType::Normal).await?
                    }
                    Health::Unhealthy { reasons } => self.roll_back(reasons.join("; ")).await?,
                };
                ctx.monitors.forget(&id);
                return Ok(action);
            }
            Poll::Idle => {}
        }
        let workload = self.workload();
        let services: Vec<String> = self
            .status
            .analysis
            .as_ref()
            .and_then(|a| a.fix.patch.as_ref())
            .filter(|p| p.target.kind == "Service")
            .map(|p| vec![p.target.name.clone()])
            .unwrap_or_default();
        let s = &self.ctx.settings;
        // In production a pending pod waits for capacity (old pods terminating, an autoscaler): the
        // rollout timeout judges it, not the first scheduling failure.
        let target = HealthTarget { workload: workload.clone(), services, unschedulable_grace: s.rollout_timeout };
        let (client, window, deadline) = (self.ctx.client.clone(), s.monitor_window, s.monitor_window + s.rollout_timeout);
        tracing::info!(incident = %id, %workload, "monitoring started");
        let span = tracing::info_span!("monitoring", namespace = %self.incident.namespace().unwrap_or_default(), incident = %self.incident.name_any(), %workload);
        let task = async move {
            crate::failpoint::during("monitoring:during");
            watch_health(&client, &target, window, deadline).await
        };
        self.ctx.monitors.start(attempt, tracing::Instrument::instrument(task, span));
        Ok(Action::requeue(POLL))
    }

    /// Undo the fix with its recorded inverse, unless someone changed the object after AEGIS did.
    async fn roll_back(mut self, why: String) -> Result<Action, Error> {
        let applied = self.status.applied.clone();
        let Some(inverse) = applied.as_ref().and_then(|a| a.inverse.clone()) else {
            return self
                .commit(Phase::Failed, format!("production regressed ({why}) and the fix has no inverse"), EventType::Warning)
                .await;
        };
        let pre = applied.and_then(|a| a.generation).map(|generation| Precondition { workload: inverse.target.clone(), generation });
        let marker = self.id();
        match apply_guarded(&self.ctx.client, &inverse, pre.as_ref(), ROLLED_BACK_ANNOTATION, &marker, &self.ctx.settings.field_manager)
            .await?
            .0
        {
            Guarded::Applied { .. } | Guarded::AlreadyApplied { .. } => {
                self.ctx.metrics.rolled_back();
                self.status.rollback = Some(RollbackRecord { reason: why.clone(), at: self.now.to_string() });
                self.commit(
                    Phase::RolledBack,
                    format!("production regressed after the fix ({why}); rolled back with the inverse patch"),
                    EventType::Warning,
                )
                .await
            }
            Guarded::Changed { expected, found } => {
                let reason = format!(
                    "production regressed ({why}), but {} changed after the fix (generation {expected} → {found}): not rolling back over someone else's change",
                    inverse.target
                );
                self.commit(Phase::Failed, reason, EventType::Warning).await
            }
        }
    }
}

/// The status' summary of a verification.
fn summary(result: &VerificationResult, config_map: String, workload_generation: i64, now: Timestamp) -> VerificationSummary {
    let new_findings = result
        .security
        .as_ref()
        .map(|r| r.summary.by_severity.iter().filter(|(_, c)| c.new > 0).map(|(s, c): (&Severity, _)| (s.to_string(), c.new)).collect())
        .unwrap_or_default();
    VerificationSummary {
        verdict: result.verdict,
        healthy: result.health.healthy,
        reasons: result.reasons.iter().take(10).map(|r| r.chars().take(500).collect()).collect(),
        evidence_digest: result.evidence_digest.clone(),
        evidence_config_map: config_map,
        new_findings,
        shadow_namespace: result.shadow_namespace.clone(),
        total_ms: result.timings.total_ms,
        workload_generation,
        finished_at: now.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_step_is_retried_at_once_then_less_and_less_often_up_to_a_minute() {
        let waits: Vec<u64> = (1..=10).map(|n| retry_after(n).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
        assert_eq!(retry_after(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn a_success_resets_the_count_of_failures() {
        let f = Failures::default();
        assert_eq!((f.failed("shop/i"), f.failed("shop/i"), f.failed("shop/other")), (1, 2, 1));
        f.succeeded("shop/i");
        assert_eq!(f.failed("shop/i"), 1);
    }
}
