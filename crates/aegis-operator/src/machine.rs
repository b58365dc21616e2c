//! The incident state machine's decisions, as pure functions: no API calls and no clock, so every rule
//! — when an approval counts, when it has expired, what a transition records — is tested on its own.
//!
//! ```text
//! Detected → Analyzing → Verifying → AwaitingApproval → Applying → Monitoring → Resolved
//!                │            │              │              │            └────→ RolledBack
//!                └→ Failed    └→ Failed      ├→ Rejected    └→ Superseded
//!                └→ Superseded               ├→ Expired
//!                                            └→ Superseded
//! ```

use std::time::Duration;

use aegis_model::{Severity, Verdict};
use jiff::Timestamp;

use crate::crd::{Approval, Condition, Decision, IncidentStatus, Phase, Transition, VerificationSummary};

/// At most this many transitions are kept in the status.
const MAX_TRANSITIONS: usize = 32;

/// Who approves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// Approve automatically when the gate *passed* (not with warnings) and the incident's severity is
    /// at or below this. `None`: every fix waits for a human.
    pub auto_approve_max_severity: Option<Severity>,
    /// How long a verified fix waits for a decision before the incident expires.
    pub timeout: Duration,
}

/// What to do with an incident awaiting approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalOutcome {
    /// Go ahead with this approval (a human's, or the policy's).
    Approved(Approval),
    Rejected(Approval),
    /// A human approved other evidence than the current verification's: refused.
    Stale {
        approved: String,
        current: String,
    },
    Expired,
    Waiting,
}

/// Decide on an incident awaiting approval. A rejection always counts (refusing is always safe); an
/// approval counts only for the current evidence digest and a verdict that allows production. The
/// policy approves on its own only a clean pass at or below its severity whose plan does not ask for a
/// human (`approval_required`).
pub fn decide_approval(
    approval: Option<&Approval>,
    verification: &VerificationSummary,
    severity: Severity,
    approval_required: bool,
    policy: &ApprovalPolicy,
    waiting_since: Timestamp,
    now: Timestamp,
) -> ApprovalOutcome {
    if let Some(a) = approval {
        match a.decision {
            Decision::Reject => return ApprovalOutcome::Rejected(a.clone()),
            Decision::Approve if a.evidence_digest != verification.evidence_digest => {
                return ApprovalOutcome::Stale {
                    approved: a.evidence_digest.as_str().to_owned(),
                    current: verification.evidence_digest.as_str().to_owned(),
                };
            }
            Decision::Approve if verification.verdict.allows_production() => return ApprovalOutcome::Approved(a.clone()),
            Decision::Approve => {}
        }
    }
    if verification.verdict == Verdict::Passed
        && !approval_required
        && let Some(max) = policy.auto_approve_max_severity
        && severity <= max
    {
        return ApprovalOutcome::Approved(Approval {
            decision: Decision::Approve,
            by: format!("aegis-operator (policy: auto-approve at or below {max})"),
            evidence_digest: verification.evidence_digest.clone(),
            at: now.to_string(),
            comment: None,
        });
    }
    let waited = now.duration_since(waiting_since);
    if waited.is_positive() && waited.unsigned_abs() >= policy.timeout {
        return ApprovalOutcome::Expired;
    }
    ApprovalOutcome::Waiting
}

/// Why an Incident may not be acted on, if it may not: it must name a resource in its own namespace.
/// Without this, anyone who may create an Incident in one namespace could have AEGIS analyze and patch
/// a workload in another (kube-system included) with the operator's rights.
pub fn foreign_target(incident_namespace: &str, resource: &aegis_model::ResourceRef) -> Option<String> {
    (resource.namespace != incident_namespace).then(|| {
        format!(
            "an Incident in namespace {incident_namespace} may only name resources in its own namespace, not {resource}; refusing to act on it"
        )
    })
}

/// The earlier incident on the same resource whose identical fix reached production and was rolled
/// back, if there is one. After a rollback the inverse patch changes the workload, the analysis finds
/// the same problem again and proposes the same fix: approved by policy, it would be applied and rolled
/// back for ever. Such a fix waits for a human instead.
pub fn regressed_before<'a>(
    resource: &aegis_model::ResourceRef,
    fix: &aegis_model::Fix,
    others: impl IntoIterator<Item = (&'a str, &'a crate::crd::IncidentSpec, &'a IncidentStatus)>,
) -> Option<String> {
    others.into_iter().find_map(|(name, spec, status)| {
        let same_fix = status.analysis.as_ref().is_some_and(|a| a.fix.patch.is_some() && a.fix.patch == fix.patch);
        (spec.resource == *resource && status.phase == crate::crd::Phase::RolledBack && same_fix).then(|| name.to_owned())
    })
}

/// Move `status` to `phase`, recording why and when. Moving to the phase it is already in records
/// nothing, so a step repeated after a crash leaves one transition.
pub fn transition(status: &mut IncidentStatus, phase: Phase, reason: impl Into<String>, now: Timestamp) {
    let reason = reason.into();
    status.message = Some(reason.clone());
    if status.phase == phase && !status.transitions.is_empty() {
        return;
    }
    status.phase = phase;
    status.transitions.push(Transition { phase, at: now.to_string(), reason });
    if status.transitions.len() > MAX_TRANSITIONS {
        let extra = status.transitions.len() - MAX_TRANSITIONS;
        status.transitions.drain(1..=extra);
    }
}

/// When the incident entered its current phase.
pub fn phase_since(status: &IncidentStatus) -> Option<Timestamp> {
    status.transitions.iter().rev().find(|t| t.phase == status.phase).and_then(|t| t.at.parse().ok())
}

/// Set a condition, keeping its transition time when its status does not change.
pub fn set_condition(status: &mut IncidentStatus, type_: &str, value: bool, reason: &str, message: impl Into<String>, now: Timestamp) {
    let value = if value { "True" } else { "False" };
    let message = message.into();
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != value {
                c.last_transition_time = now.to_string();
            }
            c.status = value.into();
            c.reason = reason.into();
            c.message = message;
        }
        None => status.conditions.push(Condition {
            type_: type_.into(),
            status: value.into(),
            reason: reason.into(),
            message,
            last_transition_time: now.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_model::Digest;

    fn verification(verdict: Verdict, digest: &str) -> VerificationSummary {
        VerificationSummary {
            verdict,
            healthy: true,
            reasons: vec![],
            evidence_digest: Digest::of_bytes(digest.as_bytes()),
            evidence_config_map: "aegis-evidence-x".into(),
            new_findings: Default::default(),
            shadow_namespace: "aegis-shadow-1".into(),
            total_ms: 1,
            workload_generation: 2,
            finished_at: "2026-11-26T10:00:00Z".into(),
        }
    }

    fn approval(decision: Decision, digest: &str) -> Approval {
        Approval {
            decision,
            by: "alice".into(),
            evidence_digest: Digest::of_bytes(digest.as_bytes()),
            at: "2026-11-26T10:01:00Z".into(),
            comment: None,
        }
    }

    fn policy(auto: Option<Severity>) -> ApprovalPolicy {
        ApprovalPolicy { auto_approve_max_severity: auto, timeout: Duration::from_secs(3600) }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const SINCE: &str = "2026-11-26T10:00:00Z";
    const SOON: &str = "2026-11-26T10:05:00Z";

    #[test]
    fn an_approval_of_the_current_evidence_is_acted_on() {
        let a = approval(Decision::Approve, "e1");
        let out = decide_approval(Some(&a), &verification(Verdict::Passed, "e1"), Severity::High, false, &policy(None), t(SINCE), t(SOON));
        assert_eq!(out, ApprovalOutcome::Approved(a));
    }

    #[test]
    fn an_approval_of_old_evidence_is_refused_as_stale() {
        let a = approval(Decision::Approve, "e1");
        let out = decide_approval(Some(&a), &verification(Verdict::Passed, "e2"), Severity::High, false, &policy(None), t(SINCE), t(SOON));
        assert!(matches!(out, ApprovalOutcome::Stale { .. }), "{out:?}");
    }

    #[test]
    fn a_rejection_counts_whatever_evidence_it_names() {
        let r = approval(Decision::Reject, "old");
        let out = decide_approval(
            Some(&r),
            &verification(Verdict::Passed, "e2"),
            Severity::Low,
            false,
            &policy(Some(Severity::Critical)),
            t(SINCE),
            t(SOON),
        );
        assert_eq!(out, ApprovalOutcome::Rejected(r));
    }

    #[test]
    fn the_policy_approves_only_a_clean_pass_at_or_below_its_severity() {
        let v = verification(Verdict::Passed, "e1");
        let auto = policy(Some(Severity::High));
        assert!(
            matches!(decide_approval(None, &v, Severity::High, false, &auto, t(SINCE), t(SOON)), ApprovalOutcome::Approved(a) if a.by.contains("policy"))
        );
        assert_eq!(decide_approval(None, &v, Severity::Critical, false, &auto, t(SINCE), t(SOON)), ApprovalOutcome::Waiting);
        let warned = verification(Verdict::PassedWithWarnings, "e1");
        assert_eq!(decide_approval(None, &warned, Severity::Low, false, &auto, t(SINCE), t(SOON)), ApprovalOutcome::Waiting);
        assert_eq!(decide_approval(None, &v, Severity::Low, false, &policy(None), t(SINCE), t(SOON)), ApprovalOutcome::Waiting);
    }

    #[test]
    fn the_policy_never_approves_a_plan_that_asks_for_a_human() {
        let v = verification(Verdict::Passed, "e1");
        let auto = policy(Some(Severity::Critical));
        assert_eq!(decide_approval(None, &v, Severity::Low, true, &auto, t(SINCE), t(SOON)), ApprovalOutcome::Waiting);
        let a = approval(Decision::Approve, "e1");
        assert_eq!(decide_approval(Some(&a), &v, Severity::Low, true, &auto, t(SINCE), t(SOON)), ApprovalOutcome::Approved(a));
    }

    #[test]
    fn a_human_cannot_approve_a_verdict_that_does_not_allow_production() {
        let a = approval(Decision::Approve, "e1");
        let out = decide_approval(Some(&a), &verification(Verdict::Blocked, "e1"), Severity::Low, false, &policy(None), t(SINCE), t(SOON));
        assert_eq!(out, ApprovalOutcome::Waiting);
    }

    #[test]
    fn an_unanswered_fix_expires_after_the_timeout() {
        let v = verification(Verdict::Passed, "e1");
        assert_eq!(
            decide_approval(None, &v, Severity::High, false, &policy(None), t(SINCE), t("2026-11-26T11:00:00Z")),
            ApprovalOutcome::Expired
        );
        assert_eq!(
            decide_approval(None, &v, Severity::High, false, &policy(None), t(SINCE), t("2026-11-26T10:59:59Z")),
            ApprovalOutcome::Waiting
        );
    }

    #[test]
    fn a_fix_rolled_back_before_on_the_same_resource_is_found() {
        use crate::crd::{Analysis, IncidentSpec};
        let resource = aegis_model::ResourceRef { kind: "Deployment".into(), namespace: "shop".into(), name: "api".into() };
        let fix = aegis_model::Fix {
            action: aegis_model::FixAction::Restart,
            summary: String::new(),
            patch: Some(aegis_model::Patch {
                patch_type: aegis_model::PatchType::StrategicMerge,
                target: resource.clone(),
                body: serde_json::json!({"spec": {"replicas": 3}}),
            }),
            inverse: None,
            origin: Default::default(),
        };
        let spec = IncidentSpec {
            resource: resource.clone(),
            category: aegis_model::Category::CrashLoopBackOff,
            severity: Severity::High,
            detected_generation: 2,
            approval: None,
        };
        let analysis = Analysis {
            root_cause: String::new(),
            evidence: vec![],
            confidence: 0.9,
            fix: fix.clone(),
            plan: aegis_model::VerificationPlan {
                duration_seconds: 0,
                health_criteria: vec![],
                security_checks: vec![],
                smoke_paths: vec![],
                approval_required: false,
                workload: None,
            },
        };
        let rolled_back = IncidentStatus { phase: Phase::RolledBack, analysis: Some(analysis.clone()), ..Default::default() };
        let resolved = IncidentStatus { phase: Phase::Resolved, analysis: Some(analysis), ..Default::default() };
        assert_eq!(regressed_before(&resource, &fix, [("old", &spec, &rolled_back)]), Some("old".to_owned()));
        assert_eq!(regressed_before(&resource, &fix, [("fine", &spec, &resolved)]), None);
        let mut other_fix = fix.clone();
        other_fix.patch.as_mut().unwrap().body = serde_json::json!({"spec": {"replicas": 4}});
        assert_eq!(regressed_before(&resource, &other_fix, [("old", &spec, &rolled_back)]), None);
    }

    #[test]
    fn an_incident_may_only_target_its_own_namespace() {
        let r = |ns: &str| aegis_model::ResourceRef { kind: "Deployment".into(), namespace: ns.into(), name: "api".into() };
        assert_eq!(foreign_target("shop", &r("shop")), None);
        let refusal = foreign_target("shop", &r("kube-system")).expect("refused");
        assert!(refusal.contains("kube-system"), "{refusal}");
    }

    #[test]
    fn repeating_a_transition_after_a_crash_records_it_once() {
        let mut s = IncidentStatus::default();
        transition(&mut s, Phase::Detected, "found", t(SINCE));
        transition(&mut s, Phase::Analyzing, "analyzing", t(SINCE));
        transition(&mut s, Phase::Analyzing, "analyzing again", t(SOON));
        assert_eq!(s.transitions.iter().map(|t| t.phase).collect::<Vec<_>>(), [Phase::Detected, Phase::Analyzing]);
        assert_eq!(phase_since(&s), Some(t(SINCE)));
        assert_eq!(s.message.as_deref(), Some("analyzing again"));
    }

    #[test]
    fn transitions_are_bounded_and_keep_the_first() {
        let mut s = IncidentStatus::default();
        for i in 0..100 {
            let p = if i % 2 == 0 { Phase::Verifying } else { Phase::AwaitingApproval };
            transition(&mut s, p, format!("{i}"), t(SINCE));
        }
        assert_eq!(s.transitions.len(), MAX_TRANSITIONS);
        assert_eq!(s.transitions[0].reason, "0");
        assert_eq!(s.transitions.last().unwrap().reason, "99");
    }

    #[test]
    fn a_condition_keeps_its_transition_time_while_its_status_holds() {
        let mut s = IncidentStatus::default();
        set_condition(&mut s, "ApprovalStale", true, "DigestMismatch", "a", t(SINCE));
        set_condition(&mut s, "ApprovalStale", true, "DigestMismatch", "b", t(SOON));
        assert_eq!(s.conditions.len(), 1);
        assert_eq!(s.conditions[0].last_transition_time, t(SINCE).to_string());
        set_condition(&mut s, "ApprovalStale", false, "Current", "c", t(SOON));
        assert_eq!(s.conditions[0].last_transition_time, t(SOON).to_string());
    }
}
