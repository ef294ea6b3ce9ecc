//! The tools an LLM agent may call: end the call, transfer it, an HTTP action, and — when the
//! agent has a knowledge base — `search_knowledge`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::wire::ToolDef;
use crate::CallAction;
use crate::knowledge::KnowledgeSearch;
use crate::net_guard::ToolHttp;

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

pub async fn run_tool(http: &ToolHttp, spec: Option<&ToolSpec>, name: &str, input: &Value) -> ToolOutcome {
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

/// Runs an HTTP tool through the SSRF guard ([`ToolHttp`]): a 2xx body is the result for the
/// model, anything else an error it sees.
async fn http_tool(http: &ToolHttp, url: &str, method: &str, input: &Value, timeout_ms: u64) -> Result<String, String> {
    let (status, text) = http.send(method, url, Some(input), timeout_ms).await.map_err(|e| e.to_string())?;
    if (200..300).contains(&status) { Ok(text) } else { Err(format!("HTTP {status}: {}", text.chars().take(500).collect::<String>())) }
}

/// The knowledge tool's name.
pub const SEARCH_KNOWLEDGE: &str = "search_knowledge";
/// Passages a knowledge search returns.
pub const KNOWLEDGE_PASSAGES: usize = 3;
const KNOWLEDGE_TIMEOUT: Duration = Duration::from_secs(3);

/// `search_knowledge`: offered (after the agent's own tools) when the agent has a knowledge base.
pub fn search_knowledge_definition() -> ToolDef {
    ToolDef {
        name: SEARCH_KNOWLEDGE.into(),
        description: "Search the business's knowledge base (its own documents: policies, opening hours, prices, services, directions, FAQs) for passages that answer the caller's question. \
            Use it whenever the caller asks something your instructions do not answer, before saying you don't know. \
            Returns up to 3 passages, best match first, each with the document it comes from. Answer from the passages only, briefly and in your own words; if none answers the question, say you don't know."
            .into(),
        input_schema: json!({"type": "object", "properties": {
            "query": {"type": "string", "description": "What to look for: the caller's question as a short, self-contained query, e.g. \"interpreter for a Spanish speaker\""}},
            "required": ["query"]}),
        cache_control: None,
    }
}

/// Runs `search_knowledge`: the closest passages as the tool result (never the system prompt),
/// each named by its document; a bad query or a failed search is an error result the model sees.
pub async fn search_knowledge(kb: &dyn KnowledgeSearch, input: &Value) -> ToolOutcome {
    let err = |content: String| ToolOutcome { content, is_error: true, action: None };
    let query = match input.get("query").and_then(Value::as_str).map(str::trim) {
        Some(q) if !q.is_empty() => q.chars().take(500).collect::<String>(),
        _ => return err("`query` must be a non-empty string".into()),
    };
    let passages = match tokio::time::timeout(KNOWLEDGE_TIMEOUT, kb.search(&query, KNOWLEDGE_PASSAGES)).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return err(format!("the knowledge base could not be searched: {e}")),
        Err(_) => return err(format!("the knowledge base did not answer within {} s", KNOWLEDGE_TIMEOUT.as_secs())),
    };
    if passages.is_empty() {
        return ToolOutcome { content: "The knowledge base has nothing on this.".into(), is_error: false, action: None };
    }
    let content = passages.iter().enumerate().map(|(i, p)| format!("[{}] From \"{}\": {}", i + 1, p.source, p.text.trim())).collect::<Vec<_>>().join("\n\n");
    ToolOutcome { content, is_error: false, action: None }
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
        let http = ToolHttp::default();
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

    #[tokio::test]
    async fn http_tools_go_through_the_network_guard() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/book", l.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            let body = "booked";
            s.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).to_string()
        });
        let spec = ToolSpec::Http { name: "book".into(), description: "Book".into(), url: url.clone(), method: "POST".into(), input_schema: any_object(), timeout_ms: 3000 };
        // the strict default refuses a loopback tool server, before connecting
        let o = run_tool(&ToolHttp::default(), Some(&spec), "book", &json!({"day": "monday"})).await;
        assert!(o.is_error && o.content.starts_with("tool URL refused: plain http is not allowed"), "{}", o.content);
        let https = ToolSpec::Http { name: "book".into(), description: "Book".into(), url: url.replace("http:", "https:"), method: "POST".into(), input_schema: any_object(), timeout_ms: 3000 };
        let o = run_tool(&ToolHttp::default(), Some(&https), "book", &json!({})).await;
        assert!(o.is_error && o.content.contains("127.0.0.1 is a loopback address"), "{}", o.content);
        assert!(!server.is_finished());
        // an explicit allowance reaches it
        let local = ToolHttp::new(crate::net_guard::ToolHttpPolicy::local(&["127.0.0.1/32"])).unwrap();
        let o = run_tool(&local, Some(&spec), "book", &json!({"day": "monday"})).await;
        assert!(!o.is_error && o.content == "booked", "{}", o.content);
        assert!(server.await.unwrap().starts_with("POST /book "));
    }

    struct FakeKb(std::result::Result<Vec<crate::knowledge::Passage>, String>);

    #[async_trait::async_trait]
    impl KnowledgeSearch for FakeKb {
        async fn search(&self, query: &str, k: usize) -> crate::Result<Vec<crate::knowledge::Passage>> {
            assert_eq!(k, KNOWLEDGE_PASSAGES);
            match &self.0 {
                Ok(p) => Ok(p.iter().filter(|p| p.text.to_lowercase().contains(&query.to_lowercase()[..4])).cloned().collect()),
                Err(e) => Err(crate::AiError::Provider { provider: "knowledge", message: e.clone() }),
            }
        }
    }

    #[tokio::test]
    async fn knowledge_search_returns_passages_with_their_documents() {
        let p = |text: &str, source: &str| crate::knowledge::Passage { text: text.into(), source: source.into(), score: 0.5 };
        let kb = FakeKb(Ok(vec![p("Free interpreters in 40 languages. ", "Visitor policy"), p("Interpreters for sign language too.", "Services")]));
        let o = search_knowledge(&kb, &json!({"query": "interpreter for Spanish"})).await;
        assert!(!o.is_error && o.action.is_none());
        assert_eq!(o.content, "[1] From \"Visitor policy\": Free interpreters in 40 languages.\n\n[2] From \"Services\": Interpreters for sign language too.");
        let o = search_knowledge(&kb, &json!({"query": "pizza"})).await;
        assert_eq!((o.is_error, o.content.as_str()), (false, "The knowledge base has nothing on this."));
        for bad in [json!({}), json!({"query": "  "}), json!({"query": 7})] {
            let o = search_knowledge(&kb, &bad).await;
            assert!(o.is_error && o.content.contains("`query`"), "{bad}: {}", o.content);
        }
        let o = search_knowledge(&FakeKb(Err("qdrant down".into())), &json!({"query": "hours"})).await;
        assert!(o.is_error && o.content.contains("qdrant down"), "{}", o.content);
        let d = search_knowledge_definition();
        assert_eq!((d.name.as_str(), &d.input_schema["required"]), (SEARCH_KNOWLEDGE, &json!(["query"])));
    }
}
