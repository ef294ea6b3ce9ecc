//! [`ClaudeBrain`]: an LLM agent (system prompt + tools) on the Messages API. Text streams to
//! TTS as it arrives; tool calls run (in parallel) and their results go back in the next user
//! message; on overload, timeout or a cut stream the turn moves to the fallback model, which
//! continues from the words already sent (assistant prefill). Dropping the receiver cancels
//! the HTTP stream at once. With a knowledge base the model may also call `search_knowledge`:
//! the passages come back as that tool's result, so the system prompt and tools stay the same
//! bytes on every turn (the prompt cache keeps hitting).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::client::{AnthropicClient, ClientError};
use super::stream::StreamItem;
use super::tools::{SEARCH_KNOWLEDGE, ToolSpec, run_tool, search_knowledge, search_knowledge_definition};
use super::wire::{Block, CacheControl, Request, WireMessage, WireRole, mark_history_cache, normalize};
use crate::knowledge::KnowledgeSearch;
use crate::net_guard::ToolHttp;
use crate::{Brain, BrainEvent, BrainSession, CallContext, Message, ProviderUsage, Result, Role, TurnInput};

pub const DEFAULT_MODEL: &str = "claude-haiku-4-5";

/// An LLM agent's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmAgent {
    /// The agent's instructions (kept byte-stable so the prompt cache hits).
    pub system_prompt: String,
    /// Said when the call is answered, without asking the model (no latency).
    #[serde(default)]
    pub greeting: Option<String>,
    #[serde(default, rename = "tool")]
    pub tools: Vec<ToolSpec>,
    #[serde(default = "default_model")]
    pub model: String,
    /// Used when `model` is overloaded, times out or its stream breaks.
    #[serde(default)]
    pub fallback_model: Option<String>,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    #[serde(default)]
    pub temperature: Option<f32>,
    /// No first token within this long: move to the fallback model.
    #[serde(default = "default_first_token_ms")]
    pub first_token_timeout_ms: u64,
    /// Tool round trips allowed in one turn.
    #[serde(default = "default_tool_rounds")]
    pub max_tool_rounds: u32,
}

fn default_model() -> String {
    DEFAULT_MODEL.into()
}
fn default_max_tokens() -> u32 {
    400
}
fn default_first_token_ms() -> u64 {
    1000
}
fn default_tool_rounds() -> u32 {
    4
}

impl LlmAgent {
    pub fn new(system_prompt: impl Into<String>) -> Self {
        toml::from_str::<LlmAgent>(&format!("system_prompt = {}", toml::Value::String(system_prompt.into()))).expect("defaults")
    }
}

pub struct ClaudeBrain {
    client: AnthropicClient,
    agent: Arc<LlmAgent>,
    http: ToolHttp,
    knowledge: Option<Arc<dyn KnowledgeSearch>>,
}

impl ClaudeBrain {
    /// With the strict tool network policy ([`ToolHttp::default`]: https only, no private
    /// networks); [`ClaudeBrain::with_tool_http`] sets the configured one.
    pub fn new(client: AnthropicClient, agent: LlmAgent) -> Self {
        ClaudeBrain { client, agent: Arc::new(agent), http: ToolHttp::default(), knowledge: None }
    }

    /// The agent's knowledge base: the model is offered `search_knowledge` (after the agent's
    /// own tools), which returns its closest passages. An agent tool of the same name wins.
    pub fn with_knowledge(mut self, kb: Arc<dyn KnowledgeSearch>) -> Self {
        if self.agent.tools.iter().any(|t| t.name() == SEARCH_KNOWLEDGE) {
            tracing::warn!("the agent has its own `{SEARCH_KNOWLEDGE}` tool: its knowledge base is not offered");
        } else {
            self.knowledge = Some(kb);
        }
        self
    }

    /// The client (and network policy) the agent's HTTP tools run on.
    pub fn with_tool_http(mut self, http: ToolHttp) -> Self {
        self.http = http;
        self
    }
}

#[async_trait]
impl Brain for ClaudeBrain {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    async fn session(&self, ctx: CallContext) -> Result<Box<dyn BrainSession>> {
        Ok(Box::new(ClaudeSession { client: self.client.clone(), agent: self.agent.clone(), http: self.http.clone(), knowledge: self.knowledge.clone(), ctx, exchanges: Arc::new(Mutex::new(Vec::new())) }))
    }
}

/// Tool round trips of one agent turn, anchored after history message `anchor - 1`.
struct Exchange {
    anchor: usize,
    messages: Vec<WireMessage>,
}

struct ClaudeSession {
    client: AnthropicClient,
    agent: Arc<LlmAgent>,
    http: ToolHttp,
    knowledge: Option<Arc<dyn KnowledgeSearch>>,
    ctx: CallContext,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
}

impl ClaudeSession {
    /// The conversation as heard, with earlier turns' tool exchanges in place.
    fn wire_history(&self, history: &[Message], extra_user: Option<String>) -> Vec<WireMessage> {
        let ex = self.exchanges.lock();
        let mut out = Vec::with_capacity(history.len() + 2);
        let push_ex = |out: &mut Vec<WireMessage>, anchor: usize| {
            for e in ex.iter().filter(|e| e.anchor == anchor) {
                out.extend(e.messages.iter().cloned());
            }
        };
        push_ex(&mut out, 0);
        for (i, m) in history.iter().enumerate() {
            let role = if m.role == Role::User { WireRole::User } else { WireRole::Assistant };
            out.push(WireMessage { role, content: vec![Block::text(m.text.clone())] });
            push_ex(&mut out, i + 1);
        }
        if let Some(u) = extra_user {
            out.push(WireMessage { role: WireRole::User, content: vec![Block::text(u)] });
        }
        out
    }
}

#[async_trait]
impl BrainSession for ClaudeSession {
    async fn respond(&mut self, input: TurnInput, history: &[Message]) -> Result<mpsc::Receiver<BrainEvent>> {
        let (tx, rx) = mpsc::channel(64);
        let extra = match &input {
            TurnInput::CallStarted => {
                if let Some(g) = &self.agent.greeting {
                    let _ = tx.send(BrainEvent::Text(g.clone())).await;
                    return Ok(rx);
                }
                Some(format!("(The call from {} has just been answered. Greet the caller.)", self.ctx.caller))
            }
            TurnInput::UserSaid(_) => None,
            TurnInput::Dtmf(d) => Some(format!("(The caller pressed the keys: {d})")),
            TurnInput::Silence => Some("(The caller has been silent for a while.)".into()),
        };
        let messages = self.wire_history(history, extra);
        let turn = Turn { client: self.client.clone(), agent: self.agent.clone(), http: self.http.clone(), knowledge: self.knowledge.clone(), exchanges: self.exchanges.clone(), anchor: history.len(), call_id: self.ctx.call_id.clone() };
        tokio::spawn(async move {
            let tx2 = tx.clone();
            tokio::select! {
                _ = tx2.closed() => {} // barge-in: dropping the stream cancels the request
                r = turn.run(messages, &tx) => if let Err(e) = r {
                    tracing::warn!(call_id = %turn.call_id, error = %e, "claude turn failed");
                    let _ = tx.send(BrainEvent::Failed(e.to_string())).await;
                }
            }
        });
        Ok(rx)
    }
}

struct Turn {
    client: AnthropicClient,
    agent: Arc<LlmAgent>,
    http: ToolHttp,
    knowledge: Option<Arc<dyn KnowledgeSearch>>,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    anchor: usize,
    call_id: String,
}

impl Turn {
    fn request(&self, model: &str, messages: &[WireMessage], prefill: &str) -> Request {
        // the same tools in the same order on every request: the cached prefix stays identical
        let mut tools: Vec<_> = self.agent.tools.iter().map(ToolSpec::definition).collect();
        if self.knowledge.is_some() {
            tools.push(search_knowledge_definition());
        }
        if let Some(last) = tools.last_mut() {
            last.cache_control = Some(CacheControl::ephemeral());
        }
        let system = vec![Block::Text { text: self.agent.system_prompt.clone(), cache_control: Some(CacheControl::ephemeral()) }];
        let mut msgs = normalize(messages.to_vec());
        mark_history_cache(&mut msgs);
        let prefill = prefill.trim_end();
        if !prefill.is_empty() {
            msgs.push(WireMessage { role: WireRole::Assistant, content: vec![Block::text(prefill)] });
        }
        Request { model: model.to_string(), max_tokens: self.agent.max_tokens, stream: true, system, tools, messages: msgs, temperature: self.agent.temperature, tool_choice: None }
    }

    async fn run(&self, mut messages: Vec<WireMessage>, tx: &mpsc::Sender<BrainEvent>) -> std::result::Result<(), ClientError> {
        let mut model = self.agent.model.clone();
        let mut fell_back = false;
        let mut turn_exchange = Vec::new();
        // text already sent this turn (earlier tool rounds): the next round's first piece
        // needs a separating space
        let mut said_before = false;
        for _round in 0..=self.agent.max_tool_rounds {
            let mut spoken = String::new();
            let mut tool_uses = Vec::new();
            let stop = loop {
                let req = self.request(&model, &messages, &spoken);
                match self.stream_once(&req, tx, &mut spoken, &mut tool_uses, said_before).await {
                    Ok(stop) => break stop,
                    Err(e) if e.should_fall_back() && !fell_back && tool_uses.is_empty() => {
                        let Some(fb) = self.agent.fallback_model.clone() else { return Err(e) };
                        tracing::warn!(call_id = %self.call_id, from = %model, to = %fb, error = %e, "claude: falling back to another model");
                        crate::cloud::failover::count_failover("anthropic", &model, &fb);
                        model = fb;
                        fell_back = true;
                    }
                    Err(e) => return Err(e),
                }
            };
            said_before |= !spoken.trim().is_empty();
            if stop.as_deref() != Some("tool_use") || tool_uses.is_empty() {
                break;
            }
            // Run the tools in parallel; their results go first in the next user message.
            let mut assistant = Vec::new();
            if !spoken.trim().is_empty() {
                assistant.push(Block::text(spoken.trim_end()));
            }
            assistant.extend(tool_uses.iter().map(|(id, name, input)| Block::ToolUse { id: id.clone(), name: name.clone(), input: input.clone() }));
            let outcomes = futures::future::join_all(tool_uses.iter().map(|(_, name, input)| async move {
                match &self.knowledge {
                    Some(kb) if name == SEARCH_KNOWLEDGE => search_knowledge(kb.as_ref(), input).await,
                    _ => run_tool(&self.http, self.agent.tools.iter().find(|t| t.name() == name), name, input).await,
                }
            }))
            .await;
            let mut results = Vec::new();
            for ((id, name, _), o) in tool_uses.iter().zip(outcomes) {
                let _ = tx.send(BrainEvent::ToolCalled { name: name.clone(), ok: !o.is_error, detail: o.content.chars().take(300).collect() }).await;
                if let Some(a) = o.action {
                    let _ = tx.send(BrainEvent::Action(a)).await;
                }
                results.push(Block::ToolResult { tool_use_id: id.clone(), content: o.content, is_error: o.is_error, cache_control: None });
            }
            let pair = [WireMessage { role: WireRole::Assistant, content: assistant }, WireMessage { role: WireRole::User, content: results }];
            messages.extend(pair.iter().cloned());
            turn_exchange.extend(pair);
        }
        if !turn_exchange.is_empty() {
            self.exchanges.lock().push(Exchange { anchor: self.anchor, messages: turn_exchange });
        }
        Ok(())
    }

    /// One streamed request. Text goes out as it arrives (and is added to `spoken`); tool
    /// calls are collected. Returns the stop reason.
    async fn stream_once(&self, req: &Request, tx: &mpsc::Sender<BrainEvent>, spoken: &mut String, tool_uses: &mut Vec<(String, String, serde_json::Value)>, said_before: bool) -> std::result::Result<Option<String>, ClientError> {
        let first_deadline = Duration::from_millis(self.agent.first_token_timeout_ms);
        let started = tokio::time::Instant::now();
        let mut stream = tokio::time::timeout(first_deadline, self.client.stream(req)).await.map_err(|_| ClientError::Timeout("no first token"))??;
        let mut got_first = false;
        loop {
            let next = if got_first {
                stream.next().await
            } else {
                let left = first_deadline.saturating_sub(started.elapsed());
                tokio::time::timeout(left, stream.next()).await.map_err(|_| ClientError::Timeout("no first token"))?
            };
            match next {
                None => return Ok(None),
                Some(Err(e)) => return Err(e),
                Some(Ok(StreamItem::Text(t))) => {
                    got_first = true;
                    // after a prefill (sent without trailing space) the model may open with one
                    let t = if spoken.ends_with(char::is_whitespace) {
                        t.trim_start().to_string()
                    } else if spoken.is_empty() && said_before && !t.starts_with(char::is_whitespace) {
                        format!(" {t}")
                    } else {
                        t
                    };
                    if t.is_empty() {
                        continue;
                    }
                    spoken.push_str(&t);
                    if tx.send(BrainEvent::Text(t)).await.is_err() {
                        return Ok(None);
                    }
                }
                Some(Ok(StreamItem::ToolUse { id, name, input })) => {
                    got_first = true;
                    tool_uses.push((id, name, input));
                }
                Some(Ok(StreamItem::Done { stop_reason, usage })) => {
                    let _ = tx
                        .send(BrainEvent::Usage(ProviderUsage {
                            provider: "anthropic".into(),
                            model: req.model.clone(),
                            input_tokens: usage.input_tokens,
                            output_tokens: usage.output_tokens,
                            cache_read_input_tokens: usage.cache_read_input_tokens,
                            cache_creation_input_tokens: usage.cache_creation_input_tokens,
                        }))
                        .await;
                    return Ok(stop_reason);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{Endpoint, Secret};

    struct EmptyKb;

    #[async_trait]
    impl KnowledgeSearch for EmptyKb {
        async fn search(&self, _query: &str, _k: usize) -> Result<Vec<crate::knowledge::Passage>> {
            Ok(Vec::new())
        }
    }

    fn turn(agent: LlmAgent) -> Turn {
        let b = ClaudeBrain::new(AnthropicClient::new(Endpoint::new("http://127.0.0.1:9", Secret::new("k"))), agent).with_knowledge(Arc::new(EmptyKb));
        Turn { client: b.client, agent: b.agent, http: b.http, knowledge: b.knowledge, exchanges: Default::default(), anchor: 0, call_id: "c".into() }
    }

    fn said(role: WireRole, t: &str) -> WireMessage {
        WireMessage { role, content: vec![Block::text(t)] }
    }

    #[test]
    fn search_knowledge_comes_after_the_agents_tools_and_the_cached_prefix_never_changes() {
        let mut agent = LlmAgent::new("Be brief.");
        agent.tools = vec![ToolSpec::EndCall { description: None }, ToolSpec::SendDtmf { description: None }];
        let t = turn(agent);
        let first = t.request("m", &[said(WireRole::User, "hi")], "");
        let later = t.request("m", &[said(WireRole::User, "hi"), said(WireRole::Assistant, "Hello."), said(WireRole::User, "Can I bring my dog?")], "");
        let names: Vec<_> = first.tools.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["end_call", "send_dtmf", "search_knowledge"]);
        let marked: Vec<bool> = first.tools.iter().map(|d| d.cache_control.is_some()).collect();
        assert_eq!(marked, [false, false, true], "the breakpoint is on the last tool");
        let prefix = |r: &Request| serde_json::to_string(&(&r.tools, &r.system)).unwrap();
        assert_eq!(prefix(&first), prefix(&later));
        // the retrieved text never goes into the system prompt
        assert_eq!(serde_json::to_value(&later.system).unwrap()[0]["text"], "Be brief.");
    }

    #[test]
    fn an_agent_tool_of_the_same_name_is_not_offered_twice() {
        let mut agent = LlmAgent::new("Be brief.");
        agent.tools = vec![ToolSpec::Http { name: "search_knowledge".into(), description: "Our own search".into(), url: "https://kb.example/search".into(), method: "POST".into(), input_schema: serde_json::json!({"type": "object"}), timeout_ms: 1000 }];
        let t = turn(agent);
        assert!(t.knowledge.is_none());
        let req = t.request("m", &[said(WireRole::User, "hi")], "");
        assert_eq!(req.tools.iter().filter(|d| d.name == "search_knowledge").count(), 1);
        assert_eq!(req.tools[0].description, "Our own search");
    }
}
