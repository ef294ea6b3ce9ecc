//! Offline requests (rule-book authoring, post-call analysis): the whole message collected,
//! with the SDKs' patient retry policy (not the live-call one), a transient stream error
//! retried like a failed request, and structured output through a forced tool whose input is
//! checked against its JSON Schema — invalid output is sent back once per attempt for repair.

use std::time::Duration;

use serde_json::{Value, json};

use super::client::{AnthropicClient, ClientError};
use super::stream::{StreamItem, Usage};
use super::wire::{Block, Request, ToolDef, WireMessage, WireRole};
use crate::cloud::Endpoint;
use crate::cloud::retry::RetryPolicy;

/// One whole model reply.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub text: String,
    pub tool_uses: Vec<(String, String, Value)>,
    pub stop_reason: Option<String>,
    pub usage: Usage,
}

/// Why an offline request gave no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CompleteError {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The model's output stayed invalid after every repair attempt.
    #[error("the model's output is invalid after {attempts} attempts: {problems}")]
    Invalid { attempts: u32, problems: String },
}

impl CompleteError {
    /// A provider hiccup worth retrying later (a queue's job), not a bad request.
    pub fn is_transient(&self) -> bool {
        matches!(self, CompleteError::Client(e) if e.should_fall_back())
    }
}

impl AnthropicClient {
    /// A client for work off the call path: the SDKs' default retries, long deadlines.
    pub fn offline(endpoint: Endpoint) -> Self {
        let mut c = AnthropicClient::new(endpoint).with_policy(RetryPolicy::default());
        c.first_byte_timeout = Duration::from_secs(60);
        c.idle_timeout = Duration::from_secs(60);
        c
    }

    /// Sends `req` and collects the reply; a stream cut by a transient error is retried.
    pub async fn complete(&self, req: &Request) -> Result<Completion, ClientError> {
        let mut attempt = 0;
        loop {
            match self.complete_once(req).await {
                Err(ClientError::Stream(e)) if e.is_transient() => match self.policy.after_error(attempt) {
                    Some(wait) => {
                        tracing::warn!(kind = %e.kind, attempt, "anthropic: stream failed, retrying");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    None => return Err(ClientError::Stream(e)),
                },
                other => return other,
            }
        }
    }

    async fn complete_once(&self, req: &Request) -> Result<Completion, ClientError> {
        let mut stream = self.stream(req).await?;
        let mut out = Completion::default();
        while let Some(item) = stream.next().await {
            match item? {
                StreamItem::Text(t) => out.text.push_str(&t),
                StreamItem::ToolUse { id, name, input } => out.tool_uses.push((id, name, input)),
                StreamItem::Done { stop_reason, usage } => {
                    out.stop_reason = stop_reason;
                    out.usage = usage;
                }
            }
        }
        Ok(out)
    }

    /// Structured output: forces tool `name` with `schema` as its input schema and returns the
    /// input once it validates. Invalid input goes back as an error tool result naming the
    /// problems, up to `attempts` requests in all.
    pub async fn structured(&self, model: &str, system: &str, user: &str, name: &str, description: &str, schema: &Value, attempts: u32) -> Result<(Value, Usage), CompleteError> {
        let validator = jsonschema::validator_for(schema).map_err(|e| CompleteError::Invalid { attempts: 0, problems: format!("the schema itself is invalid: {e}") })?;
        let tool = ToolDef { name: name.into(), description: description.into(), input_schema: schema.clone(), cache_control: None };
        let mut messages = vec![WireMessage { role: WireRole::User, content: vec![Block::text(user)] }];
        let mut usage = Usage::default();
        let mut problems = String::new();
        for attempt in 1..=attempts.max(1) {
            let req = Request {
                model: model.into(),
                max_tokens: 4096,
                stream: true,
                system: vec![Block::text(system)],
                tools: vec![tool.clone()],
                messages: messages.clone(),
                temperature: Some(0.0),
                tool_choice: Some(json!({"type": "tool", "name": name})),
            };
            let c = self.complete(&req).await?;
            add_usage(&mut usage, &c.usage);
            let Some((id, _, input)) = c.tool_uses.into_iter().find(|(_, n, _)| n == name) else {
                problems = format!("no `{name}` tool call in the reply");
                messages.push(WireMessage { role: WireRole::Assistant, content: vec![Block::text(if c.text.trim().is_empty() { "(no answer)".into() } else { c.text })] });
                messages.push(WireMessage { role: WireRole::User, content: vec![Block::text(format!("Answer only by calling the `{name}` tool."))] });
                tracing::warn!(attempt, %problems, "anthropic: structured output missing");
                continue;
            };
            let errors: Vec<String> = validator.iter_errors(&input).take(8).map(|e| format!("{} at {}", e, e.instance_path())).collect();
            if errors.is_empty() {
                return Ok((input, usage));
            }
            problems = errors.join("; ");
            tracing::warn!(attempt, %problems, "anthropic: structured output does not match its schema");
            messages.push(WireMessage { role: WireRole::Assistant, content: vec![Block::ToolUse { id: id.clone(), name: name.into(), input }] });
            messages.push(WireMessage {
                role: WireRole::User,
                content: vec![Block::ToolResult { tool_use_id: id, content: format!("Invalid input: {problems}. Call `{name}` again with input that matches the schema."), is_error: true, cache_control: None }],
            });
        }
        Err(CompleteError::Invalid { attempts: attempts.max(1), problems })
    }
}

pub fn add_usage(total: &mut Usage, u: &Usage) {
    total.input_tokens += u.input_tokens;
    total.output_tokens += u.output_tokens;
    total.cache_creation_input_tokens += u.cache_creation_input_tokens;
    total.cache_read_input_tokens += u.cache_read_input_tokens;
}
