//! The tools an LLM agent may call: end the call, transfer it, or an HTTP action.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::wire::ToolDef;
use crate::CallAction;

/// A tool in an agent's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToolSpec {
    /// `end_call`: hang up after the current reply.
    EndCall {
        #[serde(default)]
        description: Option<String>,
    },
    /// `transfer_call`: put the caller through to `to` (E.164 number or SIP URI).
    Transfer {
        to: String,
        #[serde(default)]
        description: Option<String>,
        /// Warm transfer: the model writes a `summary` that briefs the human before the caller
        /// is put through.
        #[serde(default)]
        warm: bool,
    },
    /// `send_dtmf`: press keys on the line (navigate another party's IVR).
    SendDtmf {
        #[serde(default)]
        description: Option<String>,
    },
    /// An HTTP action: the model's input is sent as the JSON body (or query for GET).
    Http {
        name: String,
        description: String,
        url: String,
        #[serde(default = "post")]
        method: String,
        #[serde(default = "any_object")]
        input_schema: Value,
        #[serde(default = "three_s")]
        timeout_ms: u64,
    },
}

fn post() -> String {
    "POST".into()
}
fn any_object() -> Value {
    json!({"type": "object", "properties": {}})
}
fn three_s() -> u64 {
    3000
}

/// Largest HTTP tool response read (the rest is cut off).
pub const MAX_TOOL_RESPONSE: usize = 16 * 1024;

impl ToolSpec {
    pub fn name(&self) -> &str {
        match self {
            ToolSpec::EndCall { .. } => "end_call",
            ToolSpec::Transfer { .. } => "transfer_call",
            ToolSpec::SendDtmf { .. } => "send_dtmf",
            ToolSpec::Http { name, .. } => name,
        }
    }

    pub fn definition(&self) -> ToolDef {
        let reason = json!({"type": "object", "properties": {"reason": {"type": "string", "description": "Why, in a few words"}}, "required": ["reason"]});
        let (description, input_schema) = match self {
            ToolSpec::EndCall { description } => (description.clone().unwrap_or_else(|| "End the phone call after your current reply, when the caller is done.".into()), reason),
            ToolSpec::Transfer { description, warm: false, .. } => (description.clone().unwrap_or_else(|| "Transfer the caller to a human colleague after your current reply.".into()), reason),
            ToolSpec::Transfer { description, warm: true, .. } => (
                description.clone().unwrap_or_else(|| "Transfer the caller to a human colleague after your current reply; the colleague hears your summary first.".into()),
                json!({"type": "object", "properties": {
                    "reason": {"type": "string", "description": "Why, in a few words"},
                    "summary": {"type": "string", "description": "Two or three sentences for the colleague: who is calling, what they need, what was already done"}},
                    "required": ["reason", "summary"]}),
            ),
            ToolSpec::SendDtmf { description } => (
                description.clone().unwrap_or_else(|| "Press keys on the phone line, e.g. to choose an option in an automated menu. Keys: 0-9, * and #; w pauses half a second.".into()),
                json!({"type": "object", "properties": {"digits": {"type": "string", "description": "Keys to press in order", "pattern": "^[0-9*#A-Dw,]{1,32}$"}}, "required": ["digits"]}),
            ),
            ToolSpec::Http { description, input_schema, .. } => (description.clone(), input_schema.clone()),
        };
        ToolDef { name: self.name().to_string(), description, input_schema, cache_control: None }
    }
}

/// What running a tool produced: the text for the model, and maybe a call action.
pub struct ToolOutcome {
    pub content: String,
    pub is_error: bool,
    pub action: Option<CallAction>,
}

pub async fn run_tool(http: &reqwest::Client, spec: Option<&ToolSpec>, name: &str, input: &Value) -> ToolOutcome {
    let reason = input.get("reason").and_then(Value::as_str).unwrap_or("agent decision").to_string();
    match spec {
        None => ToolOutcome { content: format!("unknown tool `{name}`"), is_error: true, action: None },
        Some(ToolSpec::EndCall { .. }) => ToolOutcome { content: "The call will end after your reply.".into(), is_error: false, action: Some(CallAction::EndCall { reason }) },
        Some(ToolSpec::Transfer { to, warm, .. }) => {
            let summary = input.get("summary").and_then(Value::as_str).map(str::to_string).filter(|s| *warm && !s.trim().is_empty());
            ToolOutcome { content: "The caller will be transferred after your reply.".into(), is_error: false, action: Some(CallAction::Transfer { to: to.clone(), reason, warm: *warm, summary }) }
        }
        Some(ToolSpec::SendDtmf { .. }) => match input.get("digits").and_then(Value::as_str) {
            Some(d) if !d.is_empty() && d.len() <= 32 && d.chars().all(|c| c.is_ascii_digit() || "*#ABCDw,".contains(c)) => {
                ToolOutcome { content: format!("Pressing {d} after your reply."), is_error: false, action: Some(CallAction::SendDtmf { digits: d.to_string() }) }
            }
            _ => ToolOutcome { content: "`digits` must be 1-32 of 0-9 * # A-D w".into(), is_error: true, action: None },
        },
        Some(ToolSpec::Http { url, method, timeout_ms, .. }) => match http_tool(http, url, method, input, *timeout_ms).await {
            Ok(body) => ToolOutcome { content: body, is_error: false, action: None },
            Err(e) => ToolOutcome { content: e, is_error: true, action: None },
        },
    }
}

async fn http_tool(http: &reqwest::Client, url: &str, method: &str, input: &Value, timeout_ms: u64) -> Result<String, String> {
    let m = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).map_err(|_| format!("bad method `{method}`"))?;
    let mut url = reqwest::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
    if m == reqwest::Method::GET
        && let Some(o) = input.as_object()
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in o {
            q.append_pair(k, &v.as_str().map_or_else(|| v.to_string(), str::to_string));
        }
    }
    let mut req = http.request(m.clone(), url).timeout(Duration::from_millis(timeout_ms));
    if m != reqwest::Method::GET {
        req = req.json(input);
    }
    let mut resp = req.send().await.map_err(|e| format!("request failed: {}", e.without_url()))?;
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("reading the response failed: {}", e.without_url()))? {
        let room = MAX_TOOL_RESPONSE.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    if status.is_success() { Ok(text) } else { Err(format!("HTTP {}: {}", status.as_u16(), text.chars().take(500).collect::<String>())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_from_toml_and_define_tools() {
        #[derive(Deserialize)]
        struct T {
            tool: Vec<ToolSpec>,
        }
        let t: T = toml::from_str(
            r#"
            [[tool]]
            kind = "end_call"
            [[tool]]
            kind = "transfer"
            to = "+15550123000"
            [[tool]]
            kind = "http"
            name = "book_appointment"
            description = "Book a slot"
            url = "https://example.com/book"
            input_schema = { type = "object", properties = { time = { type = "string" } }, required = ["time"] }
            "#,
        )
        .unwrap();
        let names: Vec<_> = t.tool.iter().map(ToolSpec::name).collect();
        assert_eq!(names, ["end_call", "transfer_call", "book_appointment"]);
        assert_eq!(t.tool[2].definition().input_schema["required"][0], "time");
        assert_eq!(t.tool[0].definition().input_schema["required"][0], "reason");
    }

    #[tokio::test]
    async fn call_control_tools_become_actions() {
        let http = reqwest::Client::new();
        let t = ToolSpec::Transfer { to: "+1555".into(), description: None, warm: false };
        let o = run_tool(&http, Some(&t), "transfer_call", &json!({"reason": "wants a human"})).await;
        assert_eq!(o.action, Some(CallAction::Transfer { to: "+1555".into(), reason: "wants a human".into(), warm: false, summary: None }));
        let w = ToolSpec::Transfer { to: "+1555".into(), description: None, warm: true };
        assert_eq!(w.definition().input_schema["required"][1], "summary");
        let o = run_tool(&http, Some(&w), "transfer_call", &json!({"reason": "billing", "summary": "Ana wants a refund."})).await;
        assert_eq!(o.action, Some(CallAction::Transfer { to: "+1555".into(), reason: "billing".into(), warm: true, summary: Some("Ana wants a refund.".into()) }));
        let d = ToolSpec::SendDtmf { description: None };
        assert_eq!(run_tool(&http, Some(&d), "send_dtmf", &json!({"digits": "1w2#"})).await.action, Some(CallAction::SendDtmf { digits: "1w2#".into() }));
        assert!(run_tool(&http, Some(&d), "send_dtmf", &json!({"digits": "1; rm"})).await.is_error);
        let o = run_tool(&http, None, "nope", &json!({})).await;
        assert!(o.is_error && o.content.contains("unknown tool"));
    }
}
