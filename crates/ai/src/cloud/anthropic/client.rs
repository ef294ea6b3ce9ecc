//! The Messages API over HTTP: one streaming request with the SDKs' retry rules before the
//! first byte, then an item stream with an idle deadline between chunks.

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;

use super::stream::{Assembler, StreamError, StreamItem};
use super::wire::{API_VERSION, Request};
use crate::cloud::Endpoint;
use crate::cloud::retry::RetryPolicy;
use crate::cloud::sse::SseParser;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The API answered with an error status.
    #[error("HTTP {status} {kind}: {message}{}", request_id.as_deref().map(|r| format!(" (request {r})")).unwrap_or_default())]
    Status { status: u16, kind: String, message: String, request_id: Option<String> },
    #[error("timed out: {0}")]
    Timeout(&'static str),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("stream failed: {} {}", .0.kind, .0.message)]
    Stream(StreamError),
}

impl ClientError {
    /// Another model (or provider) may succeed where this one did not.
    pub fn should_fall_back(&self) -> bool {
        match self {
            ClientError::Status { status, .. } => *status == 429 || *status == 529 || *status >= 500 || *status == 408,
            ClientError::Timeout(_) | ClientError::Connect(_) => true,
            ClientError::Stream(e) => e.is_transient(),
        }
    }
}

#[derive(Clone)]
pub struct AnthropicClient {
    http: reqwest::Client,
    endpoint: Endpoint,
    pub policy: RetryPolicy,
    /// Deadline for the response headers and for each later chunk.
    pub first_byte_timeout: Duration,
    pub idle_timeout: Duration,
}

impl AnthropicClient {
    pub fn new(endpoint: Endpoint) -> Self {
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(3)).pool_idle_timeout(Duration::from_secs(90)).tcp_nodelay(true).build().unwrap_or_default();
        AnthropicClient { http, endpoint, policy: RetryPolicy::realtime(), first_byte_timeout: Duration::from_secs(5), idle_timeout: Duration::from_secs(10) }
    }

    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Starts a streaming request (`req.stream` is forced on).
    pub async fn stream(&self, req: &Request) -> Result<ItemStream, ClientError> {
        let mut req = req.clone();
        req.stream = true;
        let url = self.endpoint.http_url("/v1/messages");
        let mut attempt = 0;
        loop {
            let send = self
                .http
                .post(&url)
                .header("x-api-key", self.endpoint.key.expose())
                .header("anthropic-version", API_VERSION)
                .header("content-type", "application/json")
                .header("accept", "text/event-stream")
                .json(&req)
                .send();
            let wait = match tokio::time::timeout(self.first_byte_timeout, send).await {
                Err(_) => match self.policy.after_error(attempt) {
                    Some(w) => w,
                    None => return Err(ClientError::Timeout("no response headers")),
                },
                Ok(Err(e)) => match self.policy.after_error(attempt) {
                    Some(w) => w,
                    None => return Err(ClientError::Connect(e.without_url().to_string())),
                },
                Ok(Ok(resp)) if resp.status().is_success() => {
                    return Ok(ItemStream { body: resp.bytes_stream().boxed(), sse: SseParser::new(), asm: Assembler::new(), queue: VecDeque::new(), idle: self.idle_timeout });
                }
                Ok(Ok(resp)) => {
                    let status = resp.status().as_u16();
                    let retry = self.policy.after_status(attempt, status, resp.headers());
                    let request_id = resp.headers().get("request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
                    let body = tokio::time::timeout(Duration::from_secs(2), resp.text()).await.ok().and_then(Result::ok).unwrap_or_default();
                    let (kind, message) = parse_error_body(&body);
                    tracing::warn!(status, %kind, %message, attempt, "anthropic: request failed");
                    match retry {
                        Some(w) => w,
                        None => return Err(ClientError::Status { status, kind, message, request_id }),
                    }
                }
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

fn parse_error_body(body: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let e = &v["error"];
    let kind = e["type"].as_str().unwrap_or("api_error").to_string();
    let message = e["message"].as_str().map(str::to_string).unwrap_or_else(|| body.chars().take(200).collect());
    (kind, message)
}

/// The items of one streamed message.
pub struct ItemStream {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    sse: SseParser,
    asm: Assembler,
    queue: VecDeque<StreamItem>,
    idle: Duration,
}

impl ItemStream {
    /// The next item; `None` after `Done`. A stream that ends before `message_stop` is an error.
    pub async fn next(&mut self) -> Option<Result<StreamItem, ClientError>> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(Ok(item));
            }
            if self.asm.is_done() {
                return None;
            }
            let chunk = match tokio::time::timeout(self.idle, self.body.next()).await {
                Err(_) => return Some(Err(ClientError::Timeout("stream stalled"))),
                Ok(None) => return Some(Err(ClientError::Stream(StreamError { kind: "stream_cut".into(), message: "connection closed before message_stop".into() }))),
                Ok(Some(Err(e))) => return Some(Err(ClientError::Stream(StreamError { kind: "stream_cut".into(), message: e.without_url().to_string() }))),
                Ok(Some(Ok(c))) => c,
            };
            let events = match self.sse.push(&chunk) {
                Ok(ev) => ev,
                Err(e) => return Some(Err(ClientError::Stream(StreamError { kind: "malformed_stream".into(), message: e }))),
            };
            for ev in events {
                match self.asm.event(&ev.event, &ev.data) {
                    Ok(items) => self.queue.extend(items),
                    Err(e) => return Some(Err(ClientError::Stream(e))),
                }
            }
        }
    }
}
