//! Optional LLM enrichment of incidents, off by default.
//!
//! Any OpenAI-compatible chat-completions API (Ollama, vLLM, OpenAI, Groq …) may rewrite an incident's
//! explanation and propose a fix — but only from the same typed fix set: the answer must be JSON whose
//! `fix` deserialises into [`aegis_model::FixAction`], and the proposal is then validated against the
//! snapshot and rendered by AEGIS itself (`aegis_analysis::render_fix`). Nothing the model writes
//! becomes a patch directly. Secret-looking values and configured names are redacted before anything is
//! sent. Any failure — unreachable, timeout, HTTP error, over the token budget, invalid JSON, an invalid
//! fix — keeps the rules' incident unchanged and says why.

mod client;
mod prompt;
mod redact;

pub use client::{ChatClient, LlmConfig, LlmError};
pub use prompt::{Answer, messages, parse_answer};
pub use redact::Redactor;

use aegis_model::Incident;
use serde::{Deserialize, Serialize};

/// What the LLM did to an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Enrichment {
    /// The explanation came from the model, and the fix too when `fix_from_model` (then it needs a
    /// human's approval, and its plan is the fix's own).
    Enriched { model: String, fix_from_model: bool },
    /// The rules' incident stands; why the model's answer was not used.
    FellBack { reason: String },
}

/// Ask the model about `incident`. `propose` vets, renders and plans a fix the model proposes (pass
/// `|r, a| aegis_analysis::propose_model_fix(&snapshot, r, a, model, &allowed)`): the incident's
/// verification plan is then the one derived from the model's fix, never the rules' plan for another.
pub async fn enrich(
    client: &ChatClient,
    incident: &Incident,
    propose: impl Fn(&aegis_model::ResourceRef, &aegis_model::FixAction) -> Result<(aegis_model::Fix, aegis_model::VerificationPlan), String>,
) -> (Incident, Enrichment) {
    let fallback = |reason: String| {
        tracing::warn!(%reason, resource = %incident.resource, "LLM enrichment not used");
        (incident.clone(), Enrichment::FellBack { reason })
    };
    let msgs = messages(incident, &client.redactor());
    let content = match client.chat(&msgs).await {
        Ok(c) => c,
        Err(e) => return fallback(e.to_string()),
    };
    let answer = match parse_answer(&content) {
        Ok(a) => a,
        Err(e) => return fallback(e),
    };
    let mut out = incident.clone();
    out.root_cause = answer.root_cause;
    let mut fix_from_model = false;
    if let Some(action) = answer.fix
        && action != incident.fix.action
    {
        match propose(&incident.resource, &action) {
            Ok((fix, plan)) => {
                out.fix = fix;
                out.verification_plan = plan;
                fix_from_model = true;
            }
            Err(e) => return fallback(format!("the proposed {} fix is refused: {e}", action.kind())),
        }
    }
    (out, Enrichment::Enriched { model: client.model().to_owned(), fix_from_model })
}
