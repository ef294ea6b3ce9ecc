//! Provider simulators: Deepgram, Anthropic, Cartesia, Sarvam and Voyage, each speaking its
//! vendor's wire protocol on loopback (same paths, headers, auth checks, message shapes, close
//! codes and error bodies), deterministic and light enough for hundreds of concurrent calls,
//! with configurable latency and injectable faults; and a fake carrier (Twilio- and
//! Exotel-shaped) that places outbound calls back to us. Used by the tests, `callfunnel demo
//! --providers cloud` and the load generator.

mod anthropic;
mod audio;
pub mod carrier;
mod cartesia;
pub mod cli;
mod deepgram;
mod faults;
mod sarvam;
mod structured;
mod voyage;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use faults::{Fault, Faults, Stats};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    Deepgram,
    Anthropic,
    Cartesia,
    Sarvam,
    Voyage,
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Provider::Deepgram => "deepgram",
            Provider::Anthropic => "anthropic",
            Provider::Cartesia => "cartesia",
            Provider::Sarvam => "sarvam",
            Provider::Voyage => "voyage",
        })
    }
}

/// Simulated provider latencies.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Latency {
    /// STT: delay of a final result after the end of speech or a `Finalize`.
    pub stt_finalize_ms: u64,
    /// LLM: time to the first token, and tokens per second after it (0 = no pacing).
    pub llm_first_token_ms: u64,
    pub llm_tokens_per_s: f64,
    /// TTS: time to the first audio, and real-time factor of the rest (0 = no pacing).
    pub tts_first_audio_ms: u64,
    pub tts_rtf: f64,
    pub embed_ms: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency { stt_finalize_ms: 0, llm_first_token_ms: 0, llm_tokens_per_s: 0.0, tts_first_audio_ms: 0, tts_rtf: 0.0, embed_ms: 0 }
    }
}

impl Latency {
    /// Latencies like the real services on a good day (for demos and load tests).
    pub fn realistic() -> Self {
        Latency { stt_finalize_ms: 120, llm_first_token_ms: 350, llm_tokens_per_s: 120.0, tts_first_audio_ms: 90, tts_rtf: 0.3, embed_ms: 60 }
    }
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The key every request must carry.
    pub api_key: String,
    pub latency: Latency,
    /// STT transcripts (the k-th speech segment of a stream says `script[k % len]`) and LLM
    /// replies (the n-th plain reply is `script[n % len]`).
    pub script: Vec<String>,
    /// Cartesia closes a socket idle this long (5 minutes on the real service).
    pub idle_timeout: std::time::Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig { api_key: "sim-key".into(), latency: Latency::default(), script: Vec::new(), idle_timeout: std::time::Duration::from_secs(300) }
    }
}

/// What every simulator handler can reach.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub config: Arc<SimConfig>,
    pub faults: Faults,
    /// Per-server counters and caches (never shared between simulators).
    pub state: Arc<SimState>,
}

#[derive(Default)]
pub(crate) struct SimState {
    pub replies: std::sync::atomic::AtomicU64,
    pub prompt_cache: parking_lot::Mutex<std::collections::HashSet<String>>,
}

/// A running simulator. Dropping it stops it.
pub struct SimServer {
    pub addr: SocketAddr,
    pub faults: Faults,
    shutdown: CancellationToken,
}

impl SimServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts the simulator of `provider` on `listen` (port 0 picks a free port).
pub async fn start(provider: Provider, listen: SocketAddr, config: SimConfig) -> anyhow::Result<SimServer> {
    let listener = TcpListener::bind(listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let ctx = Ctx { config: Arc::new(config), faults: Faults::default(), state: Arc::default() };
    let routes: Router<Ctx> = match provider {
        Provider::Deepgram => deepgram::routes(),
        Provider::Anthropic => anthropic::routes(),
        Provider::Cartesia => cartesia::routes(),
        Provider::Sarvam => sarvam::routes(),
        Provider::Voyage => voyage::routes(),
    };
    let app = routes.merge(faults::routes()).with_state(ctx.clone());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
    });
    Ok(SimServer { addr, faults: ctx.faults, shutdown })
}

/// All five simulators on free loopback ports.
pub struct SimAll {
    pub deepgram: SimServer,
    pub anthropic: SimServer,
    pub cartesia: SimServer,
    pub sarvam: SimServer,
    pub voyage: SimServer,
}

pub async fn start_all(config: SimConfig) -> anyhow::Result<SimAll> {
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    Ok(SimAll {
        deepgram: start(Provider::Deepgram, any, config.clone()).await?,
        anthropic: start(Provider::Anthropic, any, config.clone()).await?,
        cartesia: start(Provider::Cartesia, any, config.clone()).await?,
        sarvam: start(Provider::Sarvam, any, config.clone()).await?,
        voyage: start(Provider::Voyage, any, config).await?,
    })
}
