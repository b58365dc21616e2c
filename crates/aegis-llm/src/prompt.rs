//! What the model is told, and what its answer must look like.

use aegis_model::{FixAction, Incident};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::redact::Redactor;

const SYSTEM: &str = "You are an SRE assistant inside AEGIS. You get one Kubernetes incident found by rules, with its evidence \
and the rules' proposed fix. Reply with one JSON object and nothing else: {\"root_cause\": string (one or two sentences a human \
can act on, grounded only in the evidence), \"fix\": null to keep the proposed fix, or a fix object of exactly one of these \
shapes: {\"type\":\"rollback\",\"to_revision\":int} {\"type\":\"set-image\",\"container\":str,\"image\":str} \
{\"type\":\"set-resources\",\"container\":str,\"requests\":{},\"limits\":{}} {\"type\":\"set-env\",\"container\":str,\"name\":str,\"value\":str} \
{\"type\":\"env-from\",\"container\":str,\"config_map\":str|null,\"secret\":str|null} {\"type\":\"adjust-probe\",\"container\":str,\"probe\":\"liveness\"|\"readiness\",\"path\":str} \
{\"type\":\"set-service-selector\",\"selector\":{}} {\"type\":\"scale\",\"replicas\":int} {\"type\":\"restart\"} {\"type\":\"manual\",\"guidance\":str}}. \
Never invent containers, revisions or values that the evidence does not show.";

/// The chat messages for an incident, redacted.
pub fn messages(incident: &Incident, redactor: &Redactor) -> Vec<Value> {
    let facts = json!({
        "resource": incident.resource,
        "category": incident.category,
        "severity": incident.severity,
        "rules_root_cause": incident.root_cause,
        "evidence": incident.evidence,
        "pods": incident.pods,
        "proposed_fix": incident.fix.action,
        "proposed_fix_summary": incident.fix.summary,
    });
    let user = redactor.redact(&serde_json::to_string_pretty(&facts).unwrap_or_default());
    vec![json!({"role": "system", "content": SYSTEM}), json!({"role": "user", "content": user})]
}

/// A validated answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub root_cause: String,
    /// `None`: keep the rules' fix.
    pub fix: Option<FixAction>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    root_cause: String,
    #[serde(default)]
    fix: Option<FixAction>,
}

/// Parse the model's content: one JSON object (a ```json fence around it is tolerated), whose `fix`
/// must be one of the typed fixes. Anything else is refused with the reason.
pub fn parse_answer(content: &str) -> Result<Answer, String> {
    let trimmed = content.trim();
    let body = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|s| s.strip_suffix("```"))
        .unwrap_or(trimmed)
        .trim();
    let raw: Raw = serde_json::from_str(body).map_err(|e| format!("the answer is not the required JSON: {e}"))?;
    let root_cause = raw.root_cause.trim().to_owned();
    if root_cause.is_empty() || root_cause.len() > 2000 {
        return Err("root_cause must be a non-empty sentence of at most 2,000 characters".into());
    }
    Ok(Answer { root_cause, fix: raw.fix })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_must_use_the_typed_fix_set() {
        let ok = parse_answer(r#"{"root_cause": "The limit is too small.", "fix": {"type": "set-resources", "container": "api", "limits": {"memory": "512Mi"}}}"#).unwrap();
        assert!(matches!(ok.fix, Some(FixAction::SetResources { .. })));
        assert!(parse_answer("```json\n{\"root_cause\": \"x\", \"fix\": null}\n```").unwrap().fix.is_none());
        assert!(parse_answer(r#"{"root_cause": "x", "fix": {"type": "run-shell", "cmd": "kubectl delete ns prod"}}"#).is_err());
        assert!(parse_answer(r#"{"root_cause": "x", "shell": "rm -rf /"}"#).is_err(), "unknown fields are refused");
        assert!(parse_answer("Sure! Here is my analysis...").is_err());
        assert!(parse_answer(r#"{"root_cause": ""}"#).is_err());
    }
}
