//! Turns the Messages SSE stream into what a brain needs: text deltas as they come, complete
//! tool calls (input assembled from `input_json_delta` pieces per content-block index, so
//! parallel tool calls work), the stop reason and the usage (cumulative counts).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    Text(String),
    ToolUse { id: String, name: String, input: Value },
    /// The message ended (`message_stop`).
    Done { stop_reason: Option<String>, usage: Usage },
}

/// An `error` event inside a 200 stream, or a stream we cannot parse.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamError {
    pub kind: String,
    pub message: String,
}

impl StreamError {
    /// Worth trying again (or another model): overload and server errors, not bad requests.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind.as_str(), "overloaded_error" | "api_error" | "rate_limit_error" | "timeout_error" | "stream_cut" | "malformed_stream")
    }
}

enum BlockState {
    Text,
    Tool { id: String, name: String, json: String },
    Other,
}

#[derive(Default)]
pub struct Assembler {
    blocks: BTreeMap<u64, BlockState>,
    usage: Usage,
    stop_reason: Option<String>,
    done: bool,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    index: u64,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    content_block: Option<Value>,
    #[serde(default)]
    delta: Option<Value>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

impl Assembler {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds one SSE event (name and data); returns what it completed.
    pub fn event(&mut self, name: &str, data: &str) -> Result<Vec<StreamItem>, StreamError> {
        let malformed = |what: String| StreamError { kind: "malformed_stream".into(), message: what };
        let env: Envelope = match serde_json::from_str(data) {
            Ok(e) => e,
            Err(e) => return Err(malformed(format!("event `{name}`: {e}"))),
        };
        let mut out = Vec::new();
        match env.kind.as_str() {
            "message_start" => {
                if let Some(u) = env.message.as_ref().and_then(|m| m.get("usage")) {
                    self.merge_usage(u);
                }
            }
            "content_block_start" => {
                let b = env.content_block.unwrap_or_default();
                let state = match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = b.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                            out.push(StreamItem::Text(t.to_string()));
                        }
                        BlockState::Text
                    }
                    Some("tool_use") => BlockState::Tool {
                        id: b.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                        name: b.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                        json: String::new(),
                    },
                    _ => BlockState::Other,
                };
                self.blocks.insert(env.index, state);
            }
            "content_block_delta" => {
                let d = env.delta.unwrap_or_default();
                match (d.get("type").and_then(Value::as_str), self.blocks.get_mut(&env.index)) {
                    (Some("text_delta"), _) => {
                        if let Some(t) = d.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                            out.push(StreamItem::Text(t.to_string()));
                        }
                    }
                    (Some("input_json_delta"), Some(BlockState::Tool { json, .. })) => {
                        json.push_str(d.get("partial_json").and_then(Value::as_str).unwrap_or_default());
                    }
                    (Some("input_json_delta"), _) => return Err(malformed(format!("input_json_delta for block {} which is not a tool_use", env.index))),
                    _ => {} // thinking, signature, citations: not spoken
                }
            }
            "content_block_stop" => {
                if let Some(BlockState::Tool { id, name, json }) = self.blocks.remove(&env.index) {
                    let input = if json.trim().is_empty() {
                        Value::Object(Default::default())
                    } else {
                        serde_json::from_str(&json).map_err(|e| malformed(format!("tool `{name}` input is not JSON: {e}")))?
                    };
                    out.push(StreamItem::ToolUse { id, name, input });
                }
            }
            "message_delta" => {
                if let Some(r) = env.delta.as_ref().and_then(|d| d.get("stop_reason")).and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_string());
                }
                if let Some(u) = &env.usage {
                    self.merge_usage(u);
                }
            }
            "message_stop" => {
                self.done = true;
                out.push(StreamItem::Done { stop_reason: self.stop_reason.clone(), usage: self.usage.clone() });
            }
            "error" => {
                let e = env.error.unwrap_or_default();
                return Err(StreamError {
                    kind: e.get("type").and_then(Value::as_str).unwrap_or("api_error").to_string(),
                    message: e.get("message").and_then(Value::as_str).unwrap_or_default().to_string(),
                });
            }
            _ => {} // ping and unknown events are ignored
        }
        Ok(out)
    }

    /// Counts in `message_delta` are cumulative: take the latest value of each present field.
    fn merge_usage(&mut self, u: &Value) {
        let get = |k: &str| u.get(k).and_then(Value::as_u64);
        if let Some(v) = get("input_tokens") {
            self.usage.input_tokens = v;
        }
        if let Some(v) = get("output_tokens") {
            self.usage.output_tokens = v;
        }
        if let Some(v) = get("cache_creation_input_tokens") {
            self.usage.cache_creation_input_tokens = v;
        }
        if let Some(v) = get("cache_read_input_tokens") {
            self.usage.cache_read_input_tokens = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[(&str, &str)]) -> Result<Vec<StreamItem>, StreamError> {
        let mut a = Assembler::new();
        let mut out = Vec::new();
        for (n, d) in events {
            out.extend(a.event(n, d)?);
        }
        Ok(out)
    }

    #[test]
    fn parallel_tool_calls_by_index() {
        let items = run(&[
            ("message_start", r#"{"type":"message_start","message":{"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":4100,"output_tokens":1}}}"#),
            ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
            ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Sure, "}}"#),
            ("ping", r#"{"type":"ping"}"#),
            ("content_block_stop", r#"{"type":"content_block_stop","index":0}"#),
            ("content_block_start", r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"book","input":{}}}"#),
            ("content_block_start", r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_2","name":"sms","input":{}}}"#),
            ("content_block_delta", r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"to\": \"+1"}}"#),
            ("content_block_delta", r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"slot\""}}"#),
            ("content_block_delta", r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":": \"s1\"}"}}"#),
            ("content_block_delta", r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"5\"}"}}"#),
            ("content_block_stop", r#"{"type":"content_block_stop","index":2}"#),
            ("content_block_stop", r#"{"type":"content_block_stop","index":1}"#),
            ("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":58}}"#),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ])
        .unwrap();
        assert_eq!(items[0], StreamItem::Text("Sure, ".into()));
        assert_eq!(items[1], StreamItem::ToolUse { id: "toolu_2".into(), name: "sms".into(), input: serde_json::json!({"to": "+15"}) });
        assert_eq!(items[2], StreamItem::ToolUse { id: "toolu_1".into(), name: "book".into(), input: serde_json::json!({"slot": "s1"}) });
        let StreamItem::Done { stop_reason, usage } = &items[3] else { panic!() };
        assert_eq!(stop_reason.as_deref(), Some("tool_use"));
        assert_eq!(usage, &Usage { input_tokens: 25, output_tokens: 58, cache_creation_input_tokens: 0, cache_read_input_tokens: 4100 });
    }

    #[test]
    fn empty_tool_input_is_an_empty_object() {
        let items = run(&[
            ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"end_call","input":{}}}"#),
            ("content_block_stop", r#"{"type":"content_block_stop","index":0}"#),
        ])
        .unwrap();
        assert_eq!(items, vec![StreamItem::ToolUse { id: "t".into(), name: "end_call".into(), input: serde_json::json!({}) }]);
    }

    #[test]
    fn error_event_after_ok_and_garbage() {
        let e = run(&[("error", r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)]).unwrap_err();
        assert_eq!(e.kind, "overloaded_error");
        assert!(e.is_transient());
        let e = run(&[("content_block_delta", "{not json")]).unwrap_err();
        assert_eq!(e.kind, "malformed_stream");
        let bad_tool = run(&[
            ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"x","input":{}}}"#),
            ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#),
            ("content_block_stop", r#"{"type":"content_block_stop","index":0}"#),
        ]);
        assert!(bad_tool.is_err());
    }

    #[test]
    fn unknown_events_are_ignored() {
        assert!(run(&[("future_event", r#"{"type":"future_event","x":1}"#)]).unwrap().is_empty());
    }
}
