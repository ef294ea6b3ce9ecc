//! The issuer's signing keys, cached by `kid`. Discovery (`ISSUER/.well-known/openid-configuration`)
//! gives `jwks_uri`; keys are refetched every `refresh` and at once when a token names an unknown
//! `kid` (key rotation), but never more often than `min_refetch` (a flood of made-up kids cannot
//! turn into a flood of requests to the issuer).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use parking_lot::RwLock;
use serde_json::Value;

use super::jwt::{RsaKey, TokenError};

/// Parses a JWKS document: RSA signing keys with a `kid` (others are skipped).
pub fn parse_jwks(doc: &Value) -> Vec<RsaKey> {
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else { return Vec::new() };
    keys.iter()
        .filter(|k| k.get("kty").and_then(Value::as_str) == Some("RSA"))
        .filter(|k| k.get("use").and_then(Value::as_str).is_none_or(|u| u == "sig"))
        .filter(|k| k.get("alg").and_then(Value::as_str).is_none_or(|a| a == "RS256"))
        .filter_map(|k| {
            let s = |f: &str| k.get(f).and_then(Value::as_str);
            Some(RsaKey { kid: s("kid")?.to_string(), n: B64.decode(s("n")?).ok()?, e: B64.decode(s("e")?).ok()? })
        })
        .collect()
}

/// Where keys come from.
pub enum KeySource {
    /// Fixed keys (the built-in dev issuer's own key).
    Static(Vec<RsaKey>),
    /// An OpenID Connect issuer, discovered over HTTP(S).
    Discovery { issuer: String, http: reqwest::Client },
}

struct Cached {
    keys: HashMap<String, RsaKey>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

pub struct Jwks {
    source: KeySource,
    refresh: Duration,
    min_refetch: Duration,
    cache: RwLock<Cached>,
    fetching: tokio::sync::Mutex<()>,
    fetches: std::sync::atomic::AtomicU64,
}

const MAX_DOC_BYTES: usize = 512 * 1024;

impl Jwks {
    pub fn new(source: KeySource, refresh: Duration, min_refetch: Duration) -> Jwks {
        let keys = match &source {
            KeySource::Static(k) => k.iter().map(|k| (k.kid.clone(), k.clone())).collect(),
            KeySource::Discovery { .. } => HashMap::new(),
        };
        Jwks { source, refresh, min_refetch, cache: RwLock::new(Cached { keys, fetched: None, attempted: None }), fetching: tokio::sync::Mutex::new(()), fetches: 0.into() }
    }

    /// How many times keys were fetched from the issuer.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The key named `kid`: from the cache, else after a refetch (if one is allowed now).
    pub async fn key(&self, kid: &str) -> Result<RsaKey, TokenError> {
        let KeySource::Discovery { issuer, http } = &self.source else {
            return self.cache.read().keys.get(kid).cloned().ok_or_else(|| TokenError::UnknownKey(clip(kid)));
        };
        {
            let c = self.cache.read();
            let stale = c.fetched.is_none_or(|t| t.elapsed() > self.refresh);
            if let Some(k) = c.keys.get(kid).filter(|_| !stale) {
                return Ok(k.clone());
            }
        }
        let _one = self.fetching.lock().await;
        // another request may have fetched while this one waited
        let (have, may_fetch) = {
            let c = self.cache.read();
            let fresh = c.fetched.is_some_and(|t| t.elapsed() <= self.refresh);
            (c.keys.get(kid).cloned().filter(|_| fresh), c.attempted.is_none_or(|t| t.elapsed() >= self.min_refetch))
        };
        if let Some(k) = have {
            return Ok(k);
        }
        if may_fetch {
            self.cache.write().attempted = Some(Instant::now());
            self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match fetch(http, issuer).await {
                Ok(keys) => {
                    let mut c = self.cache.write();
                    c.keys = keys.into_iter().map(|k| (k.kid.clone(), k)).collect();
                    c.fetched = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(issuer, error = %e, "fetching the issuer's signing keys failed");
                    // keep serving the keys we had (a short issuer outage must not lock everyone out)
                    if let Some(k) = self.cache.read().keys.get(kid) {
                        return Ok(k.clone());
                    }
                    return Err(TokenError::KeysUnavailable(e));
                }
            }
        }
        self.cache.read().keys.get(kid).cloned().ok_or_else(|| TokenError::UnknownKey(clip(kid)))
    }
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let mut r = http.get(url).timeout(Duration::from_secs(5)).send().await.map_err(|e| format!("{url}: {}", e.without_url()))?;
    if !r.status().is_success() {
        return Err(format!("{url}: HTTP {}", r.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(|e| format!("{url}: {}", e.without_url()))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_DOC_BYTES {
            return Err(format!("{url}: document larger than {MAX_DOC_BYTES} bytes"));
        }
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
}

/// Discovery, then the JWKS it points at. The discovered issuer must be ours exactly.
async fn fetch(http: &reqwest::Client, issuer: &str) -> Result<Vec<RsaKey>, String> {
    let disco = get_json(http, &format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))).await?;
    if disco.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(format!("discovery names issuer {:?}, expected {issuer:?}", disco.get("issuer")));
    }
    let uri = disco.get("jwks_uri").and_then(Value::as_str).ok_or("discovery has no jwks_uri")?;
    let keys = parse_jwks(&get_json(http, uri).await?);
    if keys.is_empty() {
        return Err(format!("{uri} lists no RS256 signing keys"));
    }
    Ok(keys)
}
