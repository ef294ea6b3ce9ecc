//! Post-call analysis: after a call, a summary, a structured extraction against the tenant's
//! JSON Schema and a success evaluation. One trait, two adapters: Claude (structured output
//! through a forced tool, validated and repaired) and a deterministic local analyzer for the
//! embedded default (slot extractors over the caller's words, the intents the agent matched).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ProviderUsage;

mod claude;
mod local;

pub use claude::ClaudeAnalyzer;
pub use local::LocalAnalyzer;

/// What an agent wants from its calls (`[analysis]` in the agent file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisSpec {
    /// Analyze this agent's calls at all.
    pub enabled: bool,
    /// `anthropic` or `local`; default: `anthropic` for LLM agents, `local` for rule-books.
    pub provider: Option<String>,
    /// Model for the `anthropic` analyzer (default: the configured call model).
    pub model: Option<String>,
    /// What a successful call achieves, in words (read by the LLM analyzer).
    pub success: Option<String>,
    /// Deterministic success: the call matched one of these intents (local analyzer).
    pub success_intents: Vec<String>,
    /// JSON Schema (an object schema) of the structured extraction.
    pub schema: Option<Value>,
}

impl Default for AnalysisSpec {
    fn default() -> Self {
        AnalysisSpec { enabled: true, provider: None, model: None, success: None, success_intents: Vec::new(), schema: None }
    }
}

impl AnalysisSpec {
    /// Checks the extraction schema compiles and describes an object.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = &self.schema {
            if s["type"] != "object" {
                return Err("[analysis] schema: the extraction schema must have \"type\": \"object\"".into());
            }
            jsonschema::validator_for(s).map_err(|e| format!("[analysis] schema: {e}"))?;
        }
        match self.provider.as_deref() {
            None | Some("anthropic" | "local") => Ok(()),
            Some(p) => Err(format!("[analysis] provider: unknown analyzer `{p}` (anthropic or local)")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Caller,
    Agent,
}

/// One line of the conversation as it was heard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub speaker: Speaker,
    pub text: String,
    /// The agent was cut off (barge-in): `text` is what was played.
    #[serde(default)]
    pub interrupted: bool,
}

/// One finished call, as the analyzer sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub call_id: String,
    pub lines: Vec<Line>,
    /// Intents the agent matched, in order (rule-book agents).
    pub intents: Vec<String>,
    /// Tools the agent called, in order, with whether they worked.
    pub tools: Vec<(String, bool)>,
    /// How the call ended (`caller_hung_up`, `agent_ended`, `failed`, …).
    pub ended_by: String,
    pub duration_ms: u64,
    /// The call's date (for relative dates like "tomorrow").
    pub date: Option<chrono::NaiveDate>,
}

impl CallRecord {
    pub fn transcript(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            let who = if l.speaker == Speaker::Caller { "Caller" } else { "Agent" };
            let cut = if l.interrupted { " [interrupted by the caller]" } else { "" };
            out.push_str(&format!("{who}: {}{cut}\n", l.text));
        }
        out
    }
}

/// The result stored on the call and sent with `call.analyzed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallAnalysis {
    pub summary: String,
    /// Values for the agent's extraction schema (`{}` without one).
    pub extraction: Value,
    pub success: bool,
    pub success_reason: String,
    /// `local` or `anthropic:MODEL`.
    pub analyzer: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AnalysisError {
    /// The provider failed in a way worth retrying later.
    #[error("analysis provider unavailable: {0}")]
    Transient(String),
    /// The analysis cannot be produced (invalid model output after repair, bad schema, …).
    #[error("analysis failed: {0}")]
    Failed(String),
}

#[async_trait]
pub trait CallAnalyzer: Send + Sync {
    fn name(&self) -> String;
    async fn analyze(&self, call: &CallRecord, spec: &AnalysisSpec) -> Result<(CallAnalysis, Option<ProviderUsage>), AnalysisError>;
}

/// Checks `extraction` against the spec's schema; the problems, if any.
pub fn check_extraction(spec: &AnalysisSpec, extraction: &Value) -> Result<(), String> {
    let Some(schema) = &spec.schema else { return Ok(()) };
    let v = jsonschema::validator_for(schema).map_err(|e| format!("invalid extraction schema: {e}"))?;
    let errors: Vec<String> = v.iter_errors(extraction).take(8).map(|e| format!("{e} at {}", e.instance_path())).collect();
    if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
}

#[cfg(test)]
mod tests;
