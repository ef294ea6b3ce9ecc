//! Anthropic `POST /v1/messages`: `x-api-key` and `anthropic-version` checked, the body
//! validated like the API does (alternating roles, every tool_use answered, no empty text),
//! errors as `{"type":"error","error":{...},"request_id":...}` with a `request-id` header,
//! `stream: true` as SSE (message_start … message_stop, with pings) or a plain message.
//! Replies are rule-based: tool results are acknowledged, a user turn that names a tool's
//! words calls it (several tools = parallel calls), anything else gets the script's next line.
//! Prompt caching is simulated on the byte-exact prefix up to the last `cache_control`.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{Ctx, Fault};


pub fn routes() -> Router<Ctx> {
    Router::new().route("/v1/messages", post(messages))
}

fn error(status: u16, kind: &str, message: &str, extra: &[(&str, String)]) -> Response {
    let rid = format!("req_sim{:016x}", rand::random::<u64>());
    let body = json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": rid});
    let mut resp = (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert("content-type", "application/json".parse().expect("static"));
    h.insert("request-id", rid.parse().expect("ascii"));
    for (k, v) in extra {
        if let (Ok(k), Ok(v)) = (axum::http::HeaderName::from_bytes(k.as_bytes()), v.parse()) {
            h.insert(k, v);
        }
    }
    resp
}

fn validate(body: &Value) -> Result<(), String> {
    if !body["model"].is_string() {
        return Err("model: Field required".into());
    }
    if !body["max_tokens"].as_u64().is_some_and(|n| n > 0) {
        return Err("max_tokens: Field required (a positive integer)".into());
    }
    let msgs = body["messages"].as_array().ok_or("messages: Field required")?;
    if msgs.is_empty() {
        return Err("messages: at least one message is required".into());
    }
    let mut prev_tool_ids: Vec<String> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let role = m["role"].as_str().ok_or(format!("messages.{i}.role: Field required"))?;
        let want = if i % 2 == 0 { "user" } else { "assistant" };
        if role != want && !(i == msgs.len() - 1 && role == "assistant" && i % 2 == 1) {
            return Err(format!("messages: roles must alternate between \"user\" and \"assistant\", starting with \"user\" (message {i} is \"{role}\")"));
        }
        let blocks: Vec<Value> = match &m["content"] {
            Value::String(s) => vec![json!({"type": "text", "text": s})],
            Value::Array(a) => a.clone(),
            _ => return Err(format!("messages.{i}.content: Input should be a valid list or string")),
        };
        if blocks.is_empty() {
            return Err(format!("messages.{i}: content must not be empty"));
        }
        let mut answered = Vec::new();
        let mut ids = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            match b["type"].as_str() {
                Some("text") => {
                    if b["text"].as_str().is_none_or(|t| t.trim().is_empty()) && !(i == msgs.len() - 1 && role == "assistant") {
                        return Err(format!("messages.{i}.content.{j}.text: text content blocks must be non-empty"));
                    }
                }
                Some("tool_use") => ids.push(b["id"].as_str().unwrap_or_default().to_string()),
                Some("tool_result") => answered.push(b["tool_use_id"].as_str().unwrap_or_default().to_string()),
                Some(_) => {}
                None => return Err(format!("messages.{i}.content.{j}.type: Field required")),
            }
        }
        if role == "user" {
            for id in &prev_tool_ids {
                if !answered.contains(id) {
                    return Err(format!("messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {id}. Each `tool_use` block must have a corresponding `tool_result` block in the next message."));
                }
            }
            for id in &answered {
                if !prev_tool_ids.contains(id) {
                    return Err(format!("messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: {id}"));
                }
            }
        }
        prev_tool_ids = ids;
    }
    Ok(())
}

/// The reply: (text, tool calls as (name, input)).
fn plan(body: &Value, script: &[String], replies: &std::sync::atomic::AtomicU64, invalid: bool) -> (String, Vec<(String, Value)>) {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let last_user = msgs.iter().rev().find(|m| m["role"] == "user").cloned().unwrap_or_default();
    let blocks: Vec<Value> = match &last_user["content"] {
        Value::String(s) => vec![json!({"type": "text", "text": s})],
        Value::Array(a) => a.clone(),
        _ => Vec::new(),
    };
    let results: Vec<String> = blocks.iter().filter(|b| b["type"] == "tool_result").map(|b| match &b["content"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }).collect();
    // structured output: `tool_choice` forces one tool; its input follows the tool's schema
    if body["tool_choice"]["type"] == "tool" {
        let name = body["tool_choice"]["name"].as_str().unwrap_or_default();
        let schema = body["tools"].as_array().into_iter().flatten().find(|t| t["name"] == name).map(|t| t["input_schema"].clone()).unwrap_or_default();
        let said = conversation_text(&msgs);
        let input = if invalid { crate::structured::invalid_for(&schema) } else { crate::structured::example_for(&schema, &said) };
        return (String::new(), vec![(name.to_string(), input)]);
    }
    if !results.is_empty() {
        return (results.join(" "), Vec::new());
    }
    let text: String = blocks.iter().filter_map(|b| b["text"].as_str()).collect::<Vec<_>>().join(" ");
    let lower = text.to_lowercase();
    let words: HashSet<String> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_string).collect();
    let mut calls = Vec::new();
    let offered = |n: &str| body["tools"].as_array().into_iter().flatten().any(|t| t["name"] == n);
    // `search_knowledge` is not called by its name's words: see below
    for t in body["tools"].as_array().into_iter().flatten().filter(|t| t["name"] != SEARCH_KNOWLEDGE) {
        let name = t["name"].as_str().unwrap_or_default();
        let parts: Vec<&str> = name.split('_').filter(|p| !p.is_empty()).collect();
        let stem = |w: &str| w.trim_end_matches('s').to_string();
        if !parts.is_empty() && parts.iter().all(|p| words.contains(*p) || words.iter().any(|w| stem(w) == stem(p))) {
            let mut input = serde_json::Map::new();
            for r in t["input_schema"]["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                input.insert(r.to_string(), json!(if r == "reason" { text.clone() } else { "unknown".to_string() }));
            }
            calls.push((name.to_string(), Value::Object(input)));
        }
    }
    // a question no other tool answers: look it up in the knowledge base
    if calls.is_empty() && offered(SEARCH_KNOWLEDGE) && is_question(&text) {
        calls.push((SEARCH_KNOWLEDGE.to_string(), json!({"query": text.trim()})));
    }
    if !calls.is_empty() {
        return ("One moment please.".into(), calls);
    }
    let n = replies.fetch_add(1, Ordering::Relaxed) as usize;
    let reply = if script.is_empty() { format!("I heard: {}. How else can I help?", text.trim()) } else { script[n % script.len()].clone() };
    // an assistant prefill (a client continuing a cut-off answer): continue after it
    let prefill = msgs.last().filter(|m| m["role"] == "assistant").map(|m| match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().filter_map(|b| b["text"].as_str()).collect::<String>(),
        _ => String::new(),
    });
    if let Some(p) = prefill.map(|p| p.trim_end().to_string()).filter(|p| !p.is_empty())
        && let Some(rest) = reply.strip_prefix(p.as_str())
    {
        return (rest.to_string(), Vec::new());
    }
    (reply, Vec::new())
}

/// Everything said in the conversation's text blocks (what a model would read).
fn conversation_text(msgs: &[Value]) -> String {
    let mut out = String::new();
    for m in msgs {
        match &m["content"] {
            Value::String(s) => out.push_str(s),
            Value::Array(a) => a.iter().filter_map(|b| b["text"].as_str()).for_each(|t| {
                out.push_str(t);
                out.push(' ');
            }),
            _ => {}
        }
    }
    out
}

/// Token accounting with simulated caching: (input, cache_creation, cache_read). As the API
/// does, every `cache_control` breakpoint is checked: the longest prefix seen before is read
/// from the cache, the rest up to the last breakpoint is written to it.
fn usage(body: &Value, key: &str, cache: &parking_lot::Mutex<HashSet<String>>) -> (u64, u64, u64) {
    let mut parts: Vec<String> = Vec::new();
    let mut breakpoints = Vec::new();
    let mut push = |v: &Value| {
        parts.push(v.to_string());
        if v.get("cache_control").is_some() {
            breakpoints.push(parts.len());
        }
    };
    for t in body["tools"].as_array().into_iter().flatten() {
        push(t);
    }
    match &body["system"] {
        Value::Array(a) => a.iter().for_each(&mut push),
        Value::String(s) => push(&json!(s)),
        _ => {}
    }
    for m in body["messages"].as_array().into_iter().flatten() {
        match &m["content"] {
            Value::Array(a) => a.iter().for_each(&mut push),
            other => push(other),
        }
    }
    let tokens = |n: usize| (parts[..n].iter().map(String::len).sum::<usize>() / 4) as u64;
    let total = tokens(parts.len());
    let Some(&last) = breakpoints.last() else { return (total, 0, 0) };
    let mut cache = cache.lock();
    let prefix = |n: usize| format!("{key}|{}", parts[..n].join(""));
    let read = breakpoints.iter().rev().find(|&&b| cache.contains(&prefix(b))).map_or(0, |&b| tokens(b));
    for &b in &breakpoints {
        cache.insert(prefix(b));
    }
    let written = tokens(last).saturating_sub(read);
    (total - tokens(last), written, read)
}

const SEARCH_KNOWLEDGE: &str = "search_knowledge";

/// A caller's question: it ends with `?`, or opens like one ("where", "do you", "can I", ...).
fn is_question(text: &str) -> bool {
    let t = text.trim().to_lowercase();
    let words: Vec<&str> = t.split(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| !w.is_empty()).collect();
    let opens = |w: &[&str]| words.len() > w.len() && words.starts_with(w);
    t.ends_with('?')
        || words.first().is_some_and(|w| ["what", "when", "where", "which", "who", "whom", "whose", "why", "how"].contains(w))
        || [["do", "you"], ["does", "the"], ["can", "i"], ["can", "you"], ["is", "there"], ["are", "there"], ["are", "you"], ["is", "it"], ["do", "i"], ["should", "i"], ["may", "i"], ["will", "i"]].iter().any(|w| opens(w))
}

async fn messages(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    ctx.faults.request();
    // `x-api-key`, or `Authorization: Bearer` (what the newest official SDK sends)
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::to_string).or_else(|| {
        headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|a| a.strip_prefix("Bearer ")).map(str::to_string)
    }).unwrap_or_default();
    if key != ctx.config.api_key {
        return error(401, "authentication_error", "invalid x-api-key", &[]);
    }
    if headers.get("anthropic-version").is_none() {
        return error(400, "invalid_request_error", "anthropic-version: header is required", &[]);
    }
    let fault = ctx.faults.take();
    match &fault {
        Some(Fault::RateLimited { retry_after_ms }) => {
            let ms = *retry_after_ms;
            return error(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit.", &[("retry-after", ms.div_ceil(1000).to_string()), ("retry-after-ms", ms.to_string()), ("x-should-retry", "true".into())]);
        }
        Some(Fault::Overloaded) => return error(529, "overloaded_error", "Overloaded", &[("x-should-retry", "true".into())]),
        Some(Fault::RejectHandshake { status }) => return error(*status, "api_error", "Injected failure", &[]),
        Some(Fault::Slow { ms }) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        _ => {}
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(400, "invalid_request_error", &format!("There was an issue with your request body: {e}"), &[]),
    };
    if let Err(e) = validate(&body) {
        return error(400, "invalid_request_error", &e, &[]);
    }
    let invalid = matches!(fault, Some(Fault::InvalidOutput));
    let (text, calls) = plan(&body, &ctx.config.script, &ctx.state.replies, invalid);
    let (input, creation, read) = usage(&body, &key, &ctx.state.prompt_cache);
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let id = format!("msg_sim{:016x}", rand::random::<u64>());
    let out_tokens = (text.split_whitespace().count() + calls.len() * 20) as u64;
    let stop = if calls.is_empty() { "end_turn" } else { "tool_use" };
    if body["stream"] != json!(true) {
        let mut content = if text.is_empty() { Vec::new() } else { vec![json!({"type": "text", "text": text})] };
        for (i, (name, input)) in calls.iter().enumerate() {
            content.push(json!({"type": "tool_use", "id": format!("toolu_sim{i}{:08x}", rand::random::<u32>()), "name": name, "input": input}));
        }
        let msg = json!({"id": id, "type": "message", "role": "assistant", "model": model, "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": input, "cache_creation_input_tokens": creation, "cache_read_input_tokens": read, "output_tokens": out_tokens}});
        // a whole message takes as long as its stream would have: first token, then the rest
        let lat = &ctx.config.latency;
        let generating = if lat.llm_tokens_per_s > 0.0 { out_tokens as f64 / lat.llm_tokens_per_s } else { 0.0 };
        let wait = Duration::from_millis(lat.llm_first_token_ms) + Duration::from_secs_f64(generating);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        return ([("content-type", "application/json"), ("request-id", "req_sim")], msg.to_string()).into_response();
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(32);
    let lat = ctx.config.latency.clone();
    tokio::spawn(async move {
        let ev = |name: &str, data: Value| Ok(Bytes::from(format!("event: {name}\ndata: {data}\n\n")));
        let start = json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "content": [], "model": model, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input, "cache_creation_input_tokens": creation, "cache_read_input_tokens": read, "output_tokens": 1}}});
        if tx.send(ev("message_start", start)).await.is_err() {
            return;
        }
        if lat.llm_first_token_ms > 0 {
            tokio::time::sleep(Duration::from_millis(lat.llm_first_token_ms)).await;
        }
        let gap = (lat.llm_tokens_per_s > 0.0).then(|| Duration::from_secs_f64(1.0 / lat.llm_tokens_per_s));
        // a structured (forced tool) answer has no text block: its tool call is block 0
        let base = usize::from(!text.is_empty());
        if !text.is_empty() {
            let _ = tx.send(ev("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))).await;
        }
        let _ = tx.send(ev("ping", json!({"type": "ping"}))).await;
        let pieces: Vec<String> = text.split_inclusive(' ').map(str::to_string).collect();
        for (n, p) in pieces.iter().enumerate() {
            if n == 2 && mid_stream_fault(&tx, &fault).await {
                return;
            }
            if let Some(g) = gap {
                tokio::time::sleep(g).await;
            }
            if tx.send(ev("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}))).await.is_err() {
                return;
            }
        }
        if !text.is_empty() {
            let _ = tx.send(ev("content_block_stop", json!({"type": "content_block_stop", "index": 0}))).await;
        }
        for (i, (name, input)) in calls.iter().enumerate() {
            let idx = i + base;
            let tid = format!("toolu_sim{idx}{:08x}", rand::random::<u32>());
            let _ = tx.send(ev("content_block_start", json!({"type": "content_block_start", "index": idx, "content_block": {"type": "tool_use", "id": tid, "name": name, "input": {}}}))).await;
            // a reply without text (structured output) meets its stream fault here
            if text.is_empty() && i == 0 && mid_stream_fault(&tx, &fault).await {
                return;
            }
            let js = input.to_string();
            let mid = js.char_indices().nth(js.chars().count() / 2).map_or(0, |(b, _)| b);
            for part in [&js[..mid], &js[mid..]] {
                let _ = tx.send(ev("content_block_delta", json!({"type": "content_block_delta", "index": idx, "delta": {"type": "input_json_delta", "partial_json": part}}))).await;
            }
            let _ = tx.send(ev("content_block_stop", json!({"type": "content_block_stop", "index": idx}))).await;
        }
        let _ = tx.send(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": out_tokens}}))).await;
        let _ = tx.send(ev("message_stop", json!({"type": "message_stop"}))).await;
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .header("request-id", format!("req_sim{:016x}", rand::random::<u64>()))
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| error(500, "api_error", "response build failed", &[]))
}

/// A stream fault injected after the stream began: an `error` event or a cut connection end
/// the stream (true); a malformed event goes out and the stream goes on (false).
async fn mid_stream_fault(tx: &mpsc::Sender<Result<Bytes, std::io::Error>>, fault: &Option<Fault>) -> bool {
    match fault {
        Some(Fault::ErrorAfterOk) => {
            let data = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
            let _ = tx.send(Ok(Bytes::from(format!("event: error\ndata: {data}\n\n")))).await;
            true
        }
        Some(Fault::DropMidStream) => {
            let _ = tx.send(Err(std::io::Error::other("connection reset (simulated)"))).await;
            true
        }
        Some(Fault::Malformed) => {
            let _ = tx.send(Ok(Bytes::from("event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_del\n\n"))).await;
            false
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_matches_the_api() {
        let ok = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
        assert!(validate(&ok).is_ok());
        let bad_roles = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "x"}]});
        assert!(validate(&bad_roles).unwrap_err().contains("alternate"));
        let unanswered = json!({"model": "m", "max_tokens": 10, "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "x", "input": {}}]},
            {"role": "user", "content": "go on"}]});
        assert!(validate(&unanswered).unwrap_err().contains("t1"));
        let empty = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]});
        assert!(validate(&empty).is_err());
    }

    #[test]
    fn tools_are_called_when_named() {
        let body = json!({"tools": [{"name": "book_appointment", "input_schema": {"required": ["time"]}}, {"name": "end_call", "input_schema": {}}],
            "messages": [{"role": "user", "content": "I'd like to book an appointment"}]});
        let (_, calls) = plan(&body, &[], &Default::default(), false);
        assert_eq!(calls, vec![("book_appointment".to_string(), json!({"time": "unknown"}))]);
    }

    #[test]
    fn a_question_nothing_else_answers_is_looked_up_in_the_knowledge_base() {
        let tools = json!([{"name": "end_call", "input_schema": {"required": ["reason"]}}, {"name": "search_knowledge", "input_schema": {"required": ["query"]}}]);
        let ask = |tools: &Value, said: &str| plan(&json!({"tools": tools, "messages": [{"role": "user", "content": said}]}), &["Sure.".to_string()], &Default::default(), false);
        for q in ["Can I bring my dog?", "do you have interpreters", "Where do I park", "Is there a bus to the clinic", "I wonder whether you open on Sunday?"] {
            let (text, calls) = ask(&tools, q);
            assert_eq!(calls, vec![("search_knowledge".to_string(), json!({"query": q}))], "{q}");
            assert_eq!(text, "One moment please.");
        }
        // not a question, or another tool answers it, or no knowledge base offered
        for (tools, said) in [(&tools, "My name is Ana."), (&tools, "Thanks, that is all, end the call."), (&json!([{"name": "end_call", "input_schema": {}}]), "Can I bring my dog?")] {
            let (_, calls) = ask(tools, said);
            assert!(calls.iter().all(|(n, _)| n != "search_knowledge"), "{said}: {calls:?}");
        }
        assert_eq!(ask(&tools, "Thanks, that is all, end the call.").1[0].0, "end_call");
        // "search the knowledge" does not call it with a made-up query
        assert!(ask(&tools, "please search the knowledge base").1.is_empty());
        // the round after it reads the passages back
        let body = json!({"tools": tools, "messages": [
            {"role": "user", "content": "Can I bring my dog?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "search_knowledge", "input": {"query": "Can I bring my dog?"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "[1] From \"Visitor policy\": Only assistance dogs are allowed."}]}]});
        let (text, calls) = plan(&body, &[], &Default::default(), false);
        assert!(calls.is_empty() && text.contains("Only assistance dogs are allowed."), "{text}");
    }
}
