//! Claude as the analyzer: one structured-output request (a forced `record_call_analysis`
//! tool whose schema wraps the tenant's extraction schema). Output that breaks the schema is
//! sent back for repair; a provider outage is `Transient` so the queue retries later.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{AnalysisError, AnalysisSpec, CallAnalysis, CallAnalyzer, CallRecord};
use crate::ProviderUsage;
use crate::cloud::anthropic::{AnthropicClient, CompleteError};

const TOOL: &str = "record_call_analysis";
/// Requests in all for one analysis (the first and up to two repairs).
const ATTEMPTS: u32 = 3;

const SYSTEM: &str = "You analyze finished phone calls between a caller and a voice agent. \
Read the transcript (what each side actually heard; an agent line marked [interrupted] was cut off by the caller) \
and the agent's actions, then call the record_call_analysis tool exactly once: \
`summary`: two or three plain sentences on what the caller wanted and what happened; \
`extraction`: the values the schema asks for, taken from the call only (null where the call does not say); \
`success`: whether the call met its goal; `success_reason`: one sentence why.";

pub struct ClaudeAnalyzer {
    client: AnthropicClient,
    model: String,
}

impl ClaudeAnalyzer {
    /// `client` should be an offline one ([`AnthropicClient::offline`]).
    pub fn new(client: AnthropicClient, model: impl Into<String>) -> Self {
        ClaudeAnalyzer { client, model: model.into() }
    }

    fn schema(spec: &AnalysisSpec) -> Value {
        let extraction = spec.schema.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}, "additionalProperties": false}));
        json!({
            "type": "object",
            "required": ["summary", "extraction", "success", "success_reason"],
            "properties": {
                "summary": {"type": "string", "minLength": 1, "description": "What the caller wanted and what happened."},
                "extraction": extraction,
                "success": {"type": "boolean"},
                "success_reason": {"type": "string", "minLength": 1},
            },
            "additionalProperties": false,
        })
    }

    fn prompt(call: &CallRecord, spec: &AnalysisSpec) -> String {
        let mut p = format!("Call {} ({} s, ended: {}).\n\nTranscript:\n{}", call.call_id, call.duration_ms / 1000, call.ended_by, call.transcript());
        if !call.intents.is_empty() {
            p.push_str(&format!("\nIntents the agent recognised: {}\n", call.intents.join(", ")));
        }
        if !call.tools.is_empty() {
            let tools: Vec<String> = call.tools.iter().map(|(n, ok)| format!("{n} ({})", if *ok { "ok" } else { "failed" })).collect();
            p.push_str(&format!("Tools the agent used: {}\n", tools.join(", ")));
        }
        let goal = spec.success.as_deref().unwrap_or("The caller's request was understood and handled, without the agent failing or giving up.");
        p.push_str(&format!("\nSuccess means: {goal}\n"));
        p
    }
}

#[async_trait]
impl CallAnalyzer for ClaudeAnalyzer {
    fn name(&self) -> String {
        format!("anthropic:{}", self.model)
    }

    async fn analyze(&self, call: &CallRecord, spec: &AnalysisSpec) -> Result<(CallAnalysis, Option<ProviderUsage>), AnalysisError> {
        let schema = Self::schema(spec);
        let (v, usage) = self
            .client
            .structured(&self.model, SYSTEM, &Self::prompt(call, spec), TOOL, "Records the analysis of the call.", &schema, ATTEMPTS)
            .await
            .map_err(|e| match e {
                e @ CompleteError::Client(_) if e.is_transient() => AnalysisError::Transient(e.to_string()),
                e => AnalysisError::Failed(e.to_string()),
            })?;
        let analysis = CallAnalysis {
            summary: v["summary"].as_str().unwrap_or_default().trim().to_string(),
            extraction: v["extraction"].clone(),
            success: v["success"].as_bool().unwrap_or(false),
            success_reason: v["success_reason"].as_str().unwrap_or_default().trim().to_string(),
            analyzer: self.name(),
        };
        let usage = ProviderUsage {
            provider: "anthropic".into(),
            model: self.model.clone(),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_input_tokens: usage.cache_read_input_tokens,
            cache_creation_input_tokens: usage.cache_creation_input_tokens,
        };
        Ok((analysis, Some(usage)))
    }
}
