//! Anthropic Messages API shapes (request side and the blocks we send back).

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const API_VERSION: &str = "2023-06-01";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CacheControl {
    #[serde(rename = "type")]
    pub kind: String,
}

impl CacheControl {
    pub fn ephemeral() -> Self {
        CacheControl { kind: "ephemeral".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    ToolUse { id: String, name: String, input: Value },
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(default)]
        is_error: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
}

impl Block {
    pub fn text(t: impl Into<String>) -> Self {
        Block::Text { text: t.into(), cache_control: None }
    }

    fn set_cache(&mut self, c: Option<CacheControl>) {
        match self {
            Block::Text { cache_control, .. } | Block::ToolResult { cache_control, .. } => *cache_control = c,
            Block::ToolUse { .. } => {}
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WireRole {
    User,
    Assistant,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireMessage {
    pub role: WireRole,
    pub content: Vec<Block>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Request {
    pub model: String,
    pub max_tokens: u32,
    pub stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<Block>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDef>,
    pub messages: Vec<WireMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// `{"type":"tool","name":..}` forces that tool (structured output); `None` = auto.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
}

/// Makes a message list the API accepts: roles alternate starting with a user message
/// (adjacent same-role messages merged, tool results first in a user message), no empty text.
pub fn normalize(msgs: Vec<WireMessage>) -> Vec<WireMessage> {
    let mut out: Vec<WireMessage> = Vec::with_capacity(msgs.len());
    for mut m in msgs {
        m.content.retain(|b| !matches!(b, Block::Text { text, .. } if text.trim().is_empty()));
        if m.content.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.role == m.role => last.content.extend(m.content),
            _ => out.push(m),
        }
    }
    if out.first().is_none_or(|m| m.role != WireRole::User) {
        out.insert(0, WireMessage { role: WireRole::User, content: vec![Block::text("(The phone call has been answered.)")] });
    }
    for m in &mut out {
        if m.role == WireRole::User {
            // tool_result blocks must come first in their message
            m.content.sort_by_key(|b| !matches!(b, Block::ToolResult { .. }));
        }
    }
    out
}

/// Puts a cache breakpoint on the last block of the last user message (the stable history
/// prefix for the next turn), removing any older message breakpoints.
pub fn mark_history_cache(msgs: &mut [WireMessage]) {
    for m in msgs.iter_mut() {
        for b in &mut m.content {
            b.set_cache(None);
        }
    }
    if let Some(m) = msgs.iter_mut().rev().find(|m| m.role == WireRole::User)
        && let Some(b) = m.content.iter_mut().rev().find(|b| !matches!(b, Block::ToolUse { .. }))
    {
        b.set_cache(Some(CacheControl::ephemeral()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: WireRole, blocks: Vec<Block>) -> WireMessage {
        WireMessage { role, content: blocks }
    }

    #[test]
    fn normalize_merges_and_starts_with_user() {
        let out = normalize(vec![
            msg(WireRole::Assistant, vec![Block::text("Hello, clinic.")]),
            msg(WireRole::User, vec![Block::text("hi")]),
            msg(WireRole::User, vec![Block::text("  ")]),
            msg(WireRole::User, vec![Block::text("book")]),
        ]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].role, WireRole::User);
        assert_eq!(out[2].content.len(), 2);
    }

    #[test]
    fn tool_results_come_first() {
        let out = normalize(vec![
            msg(WireRole::User, vec![Block::text("x")]),
            msg(WireRole::Assistant, vec![Block::ToolUse { id: "t".into(), name: "n".into(), input: serde_json::json!({}) }]),
            msg(WireRole::User, vec![Block::text("and?"), Block::ToolResult { tool_use_id: "t".into(), content: "ok".into(), is_error: false, cache_control: None }]),
        ]);
        assert!(matches!(out[2].content[0], Block::ToolResult { .. }));
    }

    #[test]
    fn one_history_breakpoint_on_the_last_user_message() {
        let mut m = vec![msg(WireRole::User, vec![Block::text("a")]), msg(WireRole::Assistant, vec![Block::text("b")]), msg(WireRole::User, vec![Block::text("c")])];
        mark_history_cache(&mut m);
        mark_history_cache(&mut m);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json.matches("cache_control").count(), 1);
        assert!(json.contains(r#"{"type":"text","text":"c","cache_control":{"type":"ephemeral"}}"#));
    }
}
