//! Voyage `POST /v1/embeddings`: Bearer auth, input limits (≤ 1,000 inputs, per-model token
//! budget), `input_type`, `output_dimension`; errors as `{"detail": ...}`. Embeddings are a
//! deterministic hashed bag of words and character trigrams, L2-normalised, so similar texts
//! score higher (good enough for retrieval tests, no model inside).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{Value, json};

use crate::{Ctx, Fault};

pub fn routes() -> Router<Ctx> {
    Router::new().route("/v1/embeddings", post(embeddings))
}

fn detail(status: StatusCode, d: &str) -> Response {
    (status, [("content-type", "application/json")], json!({"detail": d}).to_string()).into_response()
}

fn token_limit(model: &str) -> usize {
    match model {
        m if m.ends_with("-lite") => 1_000_000,
        "voyage-4-large" | "voyage-3-large" | "voyage-code-3" | "voyage-finance-2" | "voyage-law-2" => 120_000,
        _ => 320_000,
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

pub fn embed(text: &str, dim: usize) -> Vec<f32> {
    let mut v = vec![0f32; dim];
    let lower = text.to_lowercase();
    let mut add = |feat: &str, w: f32| {
        let h = fnv(feat);
        let sign = if h >> 63 == 1 { -1.0 } else { 1.0 };
        v[(h % dim as u64) as usize] += sign * w;
    };
    for word in lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        add(word, 1.0);
        let padded: Vec<char> = format!(" {word} ").chars().collect();
        for tri in padded.windows(3) {
            add(&tri.iter().collect::<String>(), 0.3);
        }
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    } else {
        v[0] = 1.0;
    }
    v
}

async fn embeddings(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    ctx.faults.request();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if auth.strip_prefix("Bearer ") != Some(ctx.config.api_key.as_str()) {
        return detail(StatusCode::UNAUTHORIZED, "Provided API key is invalid.");
    }
    match ctx.faults.take() {
        Some(Fault::RateLimited { retry_after_ms }) => {
            let mut r = detail(StatusCode::TOO_MANY_REQUESTS, "You have exceeded your rate limit.");
            r.headers_mut().insert("retry-after", retry_after_ms.div_ceil(1000).to_string().parse().expect("digits"));
            return r;
        }
        Some(Fault::Overloaded) => return detail(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable, please retry."),
        Some(Fault::RejectHandshake { status }) => return detail(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), "Injected failure"),
        Some(Fault::Slow { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(Fault::Malformed) => return (StatusCode::OK, [("content-type", "application/json")], "{\"object\": \"list\", \"data\": [").into_response(),
        _ => {}
    }
    if ctx.config.latency.embed_ms > 0 {
        tokio::time::sleep(Duration::from_millis(ctx.config.latency.embed_ms)).await;
    }
    let Ok(b) = serde_json::from_slice::<Value>(&body) else { return detail(StatusCode::BAD_REQUEST, "Request body is not valid JSON.") };
    let model = b["model"].as_str().unwrap_or_default().to_string();
    if model.is_empty() {
        return detail(StatusCode::BAD_REQUEST, "Field `model` is required.");
    }
    let inputs: Vec<String> = match &b["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) if a.iter().all(Value::is_string) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => return detail(StatusCode::BAD_REQUEST, "Field `input` must be a string or a list of strings."),
    };
    if inputs.is_empty() || inputs.len() > 1000 {
        return detail(StatusCode::BAD_REQUEST, &format!("The batch size limit is 1000. Your batch size is {}.", inputs.len()));
    }
    let tokens: usize = inputs.iter().map(|t| t.split_whitespace().count() + t.len() / 8 + 1).sum();
    if tokens > token_limit(&model) {
        return detail(StatusCode::BAD_REQUEST, &format!("Request to model '{model}' failed. The max allowed tokens per submitted batch is {}. Your batch has {tokens} tokens after truncation.", token_limit(&model)));
    }
    match &b["input_type"] {
        Value::Null => {}
        Value::String(s) if s == "query" || s == "document" => {}
        _ => return detail(StatusCode::BAD_REQUEST, "Value error, input_type should be None, 'query', or 'document'."),
    }
    let dim = match &b["output_dimension"] {
        Value::Null => 1024,
        v => match v.as_u64() {
            Some(d @ (256 | 512 | 1024 | 2048)) => d as usize,
            _ => return detail(StatusCode::BAD_REQUEST, "output_dimension must be one of 256, 512, 1024, 2048."),
        },
    };
    if !matches!(b["output_dtype"].as_str(), None | Some("float")) {
        return detail(StatusCode::BAD_REQUEST, "Only output_dtype 'float' is simulated.");
    }
    let data: Vec<Value> = inputs.iter().enumerate().map(|(i, t)| json!({"object": "embedding", "embedding": embed(t, dim), "index": i})).collect();
    (StatusCode::OK, [("content-type", "application/json")], json!({"object": "list", "data": data, "model": model, "usage": {"total_tokens": tokens}}).to_string()).into_response()
}
