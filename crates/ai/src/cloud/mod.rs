//! Cloud providers on the call path, each speaking its vendor's wire protocol: Deepgram (STT),
//! Anthropic Claude (brain), Cartesia and Sarvam (TTS; Sarvam also STT), Voyage (embeddings).
//! Failover chains with circuit breakers put several providers behind one trait object.

pub mod anthropic;
pub mod cartesia;
pub mod deepgram;
pub mod failover;
pub mod retry;
pub mod sarvam;
pub mod secret;
pub mod sse;
pub mod voyage;
pub mod ws;

pub use secret::{EnvSecrets, Secret, SecretSource, StaticSecrets};

/// Where a provider lives and the key to use. `base_url` is the vendor's (or a simulator's).
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub base_url: String,
    pub key: Secret,
}

impl Endpoint {
    pub fn new(base_url: impl Into<String>, key: Secret) -> Self {
        Endpoint { base_url: base_url.into().trim_end_matches('/').to_string(), key }
    }

    /// `base_url` with its scheme switched to WebSocket (`https`→`wss`, `http`→`ws`).
    pub fn ws_url(&self, path: &str) -> String {
        let b = &self.base_url;
        let b = if let Some(r) = b.strip_prefix("https://") {
            format!("wss://{r}")
        } else if let Some(r) = b.strip_prefix("http://") {
            format!("ws://{r}")
        } else {
            b.clone()
        };
        format!("{b}{path}")
    }

    pub fn http_url(&self, path: &str) -> String {
        let b = &self.base_url;
        let b = if let Some(r) = b.strip_prefix("wss://") {
            format!("https://{r}")
        } else if let Some(r) = b.strip_prefix("ws://") {
            format!("http://{r}")
        } else {
            b.clone()
        };
        format!("{b}{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_switch_scheme() {
        let e = Endpoint::new("https://api.deepgram.com/", Secret::new("k"));
        assert_eq!(e.ws_url("/v1/listen"), "wss://api.deepgram.com/v1/listen");
        assert_eq!(e.http_url("/v1/x"), "https://api.deepgram.com/v1/x");
        let e = Endpoint::new("ws://127.0.0.1:9", Secret::new("k"));
        assert_eq!(e.http_url("/a"), "http://127.0.0.1:9/a");
        assert_eq!(e.ws_url("/a"), "ws://127.0.0.1:9/a");
    }
}
