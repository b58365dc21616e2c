//! An OpenAI-compatible chat-completions client: `POST {endpoint}/chat/completions`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::redact::Redactor;

#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Base URL including the API version, e.g. `http://127.0.0.1:11434/v1` (Ollama), `https://api.openai.com/v1`.
    pub endpoint: String,
    pub model: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
    /// Completion tokens asked for, and the total (prompt + completion) an answer may use.
    pub max_tokens: u32,
    pub token_budget: u32,
    /// Names never to send.
    pub redact_names: Vec<String>,
    /// The largest answer read, in bytes: a model (or something posing as one) that sends more is cut
    /// off there, whatever the timeout, instead of filling memory.
    pub max_answer_bytes: usize,
}

impl LlmConfig {
    pub fn new(endpoint: &str, model: &str) -> LlmConfig {
        LlmConfig {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            model: model.to_owned(),
            api_key: None,
            timeout: Duration::from_secs(30),
            max_tokens: 600,
            token_budget: 4000,
            redact_names: Vec::new(),
            max_answer_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    #[error("LLM endpoint unreachable: {0}")]
    Unreachable(String),
    #[error("LLM answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("LLM did not answer within {0}s")]
    Timeout(u64),
    #[error("LLM answer used {used} tokens, over the budget of {budget}")]
    OverBudget { used: u64, budget: u32 },
    #[error("LLM response is not a chat completion: {0}")]
    Protocol(String),
    #[error("LLM answer is larger than the {0}-byte limit; not read")]
    TooLarge(usize),
}

pub struct ChatClient {
    config: LlmConfig,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    total_tokens: Option<u64>,
}

impl ChatClient {
    pub fn new(config: LlmConfig) -> Result<ChatClient, LlmError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().timeout(config.timeout).build().map_err(|e| LlmError::Protocol(e.to_string()))?;
        Ok(ChatClient { config, http })
    }

    pub fn model(&self) -> &str {
        &self.config.model
    }

    pub fn redactor(&self) -> Redactor {
        Redactor::new(&self.config.redact_names)
    }

    /// One chat completion; the content of its first choice.
    pub async fn chat(&self, messages: &[Value]) -> Result<String, LlmError> {
        let body = json!({
            "model": self.config.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self.config.max_tokens,
            "response_format": {"type": "json_object"},
        });
        let mut req = self.http.post(format!("{}/chat/completions", self.config.endpoint)).json(&body);
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() { LlmError::Timeout(self.config.timeout.as_secs()) } else { LlmError::Unreachable(e.to_string()) }
        })?;
        let status = resp.status();
        let limit = self.config.max_answer_bytes;
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(LlmError::TooLarge(limit));
        }
        let mut resp = resp;
        let mut body: Vec<u8> = Vec::new();
        loop {
            let chunk = resp.chunk().await.map_err(|e| {
                if e.is_timeout() { LlmError::Timeout(self.config.timeout.as_secs()) } else { LlmError::Unreachable(e.to_string()) }
            })?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > limit {
                return Err(LlmError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() {
            return Err(LlmError::Http { status: status.as_u16(), body: text.chars().take(300).collect() });
        }
        let completion: Completion = serde_json::from_str(&text).map_err(|e| LlmError::Protocol(e.to_string()))?;
        if let Some(used) = completion.usage.and_then(|u| u.total_tokens)
            && used > u64::from(self.config.token_budget)
        {
            return Err(LlmError::OverBudget { used, budget: self.config.token_budget });
        }
        completion
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .ok_or_else(|| LlmError::Protocol("no choices[0].message.content".into()))
    }
}
