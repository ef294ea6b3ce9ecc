//! Voyage AI embeddings (`POST /v1/embeddings`): batches within the 1,000-input and per-model
//! token limits, `input_type` query/document, `output_dimension`, retries as the SDK does.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::Endpoint;
use super::retry::RetryPolicy;
use crate::{AiError, EmbedKind, Embedder, Result};

pub const MAX_INPUTS: usize = 1000;

#[derive(Debug, Clone)]
pub struct VoyageConfig {
    pub model: String,
    pub output_dimension: usize,
    pub timeout: Duration,
    pub policy: RetryPolicy,
}

impl Default for VoyageConfig {
    fn default() -> Self {
        VoyageConfig { model: "voyage-3.5".into(), output_dimension: 1024, timeout: Duration::from_secs(30), policy: RetryPolicy::default() }
    }
}

/// Token budget per request for a model (Voyage's documented limits).
pub fn token_limit(model: &str) -> usize {
    match model {
        m if m.ends_with("-lite") => 1_000_000,
        "voyage-4-large" | "voyage-3-large" | "voyage-code-3" | "voyage-finance-2" | "voyage-law-2" => 120_000,
        _ => 320_000,
    }
}

/// A conservative token estimate (Voyage's tokenizer gives fewer tokens than this for English).
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(3) + 1
}

/// Splits `texts` into batches of at most [`MAX_INPUTS`] inputs and `limit` estimated tokens.
pub fn batches(texts: &[String], limit: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut tokens) = (0, 0);
    for (i, t) in texts.iter().enumerate() {
        let n = estimate_tokens(t);
        if i > start && (i - start >= MAX_INPUTS || tokens + n > limit) {
            out.push(start..i);
            start = i;
            tokens = 0;
        }
        tokens += n;
    }
    if start < texts.len() {
        out.push(start..texts.len());
    }
    out
}

pub struct VoyageEmbedder {
    endpoint: Endpoint,
    config: VoyageConfig,
    http: reqwest::Client,
}

impl VoyageEmbedder {
    pub fn new(endpoint: Endpoint, config: VoyageConfig) -> Self {
        VoyageEmbedder { endpoint, config, http: reqwest::Client::new() }
    }

    async fn request(&self, texts: &[String], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        #[derive(Deserialize)]
        struct Item {
            embedding: Vec<f32>,
            #[serde(default)]
            index: Option<usize>,
        }
        #[derive(Deserialize)]
        struct Resp {
            data: Vec<Item>,
        }
        let err = |m: String| AiError::Provider { provider: "voyage", message: m };
        let body = json!({
            "model": self.config.model, "input": texts,
            "input_type": match kind { EmbedKind::Query => "query", EmbedKind::Document => "document" },
            "output_dimension": self.config.output_dimension, "truncation": true,
        });
        let mut attempt = 0;
        loop {
            let sent = self.http.post(self.endpoint.http_url("/v1/embeddings")).bearer_auth(self.endpoint.key.expose()).timeout(self.config.timeout).json(&body).send().await;
            let wait = match sent {
                Ok(r) if r.status().is_success() => {
                    let resp: Resp = r.json().await.map_err(|e| err(format!("bad response: {}", e.without_url())))?;
                    if resp.data.len() != texts.len() {
                        return Err(err(format!("asked for {} embeddings, got {}", texts.len(), resp.data.len())));
                    }
                    let mut out = vec![Vec::new(); texts.len()];
                    for (pos, item) in resp.data.into_iter().enumerate() {
                        let i = item.index.unwrap_or(pos);
                        if i >= out.len() || item.embedding.len() != self.config.output_dimension {
                            return Err(err(format!("embedding {i} has the wrong index or dimension")));
                        }
                        out[i] = normalize(item.embedding);
                    }
                    return Ok(out);
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    match self.config.policy.after_status(attempt, status, r.headers()) {
                        Some(w) => w,
                        None => {
                            let text = r.text().await.unwrap_or_default();
                            let detail = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["detail"].as_str().map(str::to_string)).unwrap_or(text);
                            return Err(err(format!("HTTP {status}: {}", detail.chars().take(300).collect::<String>())));
                        }
                    }
                }
                Err(e) => match self.config.policy.after_error(attempt) {
                    Some(w) => w,
                    None => return Err(err(e.without_url().to_string())),
                },
            };
            tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, "voyage: retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

#[async_trait]
impl Embedder for VoyageEmbedder {
    fn name(&self) -> &'static str {
        "voyage"
    }

    fn dim(&self) -> usize {
        self.config.output_dimension
    }

    async fn embed(&self, texts: Vec<String>, kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for r in batches(&texts, token_limit(&self.config.model)) {
            out.extend(self.request(&texts[r], kind).await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_count_and_tokens() {
        let texts: Vec<String> = (0..2500).map(|i| format!("text {i}")).collect();
        let b = batches(&texts, 320_000);
        assert_eq!(b, vec![0..1000, 1000..2000, 2000..2500]);
        let big: Vec<String> = (0..5).map(|_| "x".repeat(3000)).collect(); // ~1001 tokens each
        let b = batches(&big, 2500);
        assert_eq!(b, vec![0..2, 2..4, 4..5]);
        assert!(batches(&[], 10).is_empty());
    }
}
