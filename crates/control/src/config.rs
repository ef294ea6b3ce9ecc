//! Configuration: defaults ← TOML file ← `CALLFUNNEL_*` environment variables
//! (nested keys with `__`, e.g. `CALLFUNNEL_SERVER__LISTEN=0.0.0.0:8080`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use callfunnel_media::engine::{PlayoutConfig, TurnConfig};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use crate::provider_config::ProvidersConfig;
pub use crate::stores_config::{S3Config, StoresConfig, VaultConfig};
pub use crate::telephony_config::{ExotelConfig, NumberRoute, TelephonyConfig, TwilioConfig};

/// `CALLFUNNEL_*` variables that are not configuration keys (keys, tool settings).
const NOT_CONFIG: [&str; 23] = [
    "models_dir", "log_format", "log_level", "config", "sdk_venv",
    "deepgram_api_key", "anthropic_api_key", "cartesia_api_key", "sarvam_api_key", "voyage_api_key",
    "twilio_auth_token", "twilio_auth_token_secondary", "twilio_webhook_key", "exotel_api_key", "exotel_api_token", "exotel_stream_auth",
    "s3_secret_access_key", "vault_token", "vault_secret_id", "qdrant_api_key", "secrets_key", "call_token_secret", "token",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub models: ModelsConfig,
    pub data: DataConfig,
    pub stores: StoresConfig,
    pub agents: AgentsConfig,
    pub turn: TurnConfig,
    pub playout: PlayoutConfig,
    pub providers: ProvidersConfig,
    pub telephony: TelephonyConfig,
    pub twilio: TwilioConfig,
    pub exotel: ExotelConfig,
    /// Inbound routing: each number we answer and its agent.
    pub numbers: Vec<NumberRoute>,
    pub auth: crate::auth::AuthConfig,
    pub campaigns: CampaignsConfig,
    /// Where agents' HTTP tools may go (SSRF guard; strict by default).
    pub tools: crate::tools_config::ToolsConfig,
    /// OpenTelemetry traces (OTLP/HTTP); off by default.
    pub telemetry: crate::telemetry::TelemetryConfig,
    /// Post-call analysis.
    pub analysis: AnalysisConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Analyses one node runs at once. Each waits mostly on its LLM: a node ending 20 calls a
    /// second needs tens at once to keep up.
    pub concurrency: usize,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig { concurrency: 32 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignsConfig {
    /// How often the dialer settles calls and places new ones (ms). Each tick also renews
    /// this node's claims on the contacts it is dialling.
    pub tick_ms: u64,
    /// A contact claimed for dialling whose claim has not been renewed for this long belongs
    /// to a node that stopped: another node takes it over and counts a `node_lost` attempt
    /// (retried like `failed`).
    pub claim_stale_ms: u64,
}

impl Default for CampaignsConfig {
    fn default() -> Self {
        CampaignsConfig { tick_ms: 2000, claim_stale_ms: 60_000 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Host (and port) the carrier reaches us at, used in `wss://HOST/twilio/media/ID`.
    pub public_host: String,
    /// `wss` behind TLS (production), `ws` for local tests.
    pub public_ws_scheme: String,
    /// Load the models when the server starts (in the background) instead of on the first call.
    pub preload_models: bool,
    /// On SIGTERM the node drains: not ready, no new calls, live calls finish; after this long
    /// the calls still running are ended (keep it ≥ the longest call and ≤ the orchestrator's
    /// grace period, e.g. Kubernetes `terminationGracePeriodSeconds`).
    pub drain_timeout_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    pub dir: PathBuf,
    /// Threads per Whisper decode (offline STT): 2 for lowest latency on one call, 1 when
    /// many local calls share the cores.
    pub whisper_threads: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// `file` (embedded, JSON lines under `dir`) or `memory`.
    pub timeline: String,
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentsConfig {
    /// Directory of rule-books, one `AGENT_ID.toml` each.
    pub dir: PathBuf,
    /// Agent used when a call names none.
    pub default_agent: String,
    pub default_tenant: String,
    pub voice: String,
    pub language: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { listen: ([127, 0, 0, 1], 8080).into(), public_host: "localhost:8080".into(), public_ws_scheme: "wss".into(), preload_models: true, drain_timeout_s: 3600 }
    }
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig { dir: callfunnel_ai::models::ModelPaths::default_root(), whisper_threads: 2 }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        DataConfig { timeline: "file".into(), dir: base.join("callfunnel") }
    }
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig { dir: PathBuf::from("agents"), default_agent: "clinic".into(), default_tenant: "demo".into(), voice: "joe".into(), language: "en-US".into() }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            models: ModelsConfig::default(),
            data: DataConfig::default(),
            stores: StoresConfig::default(),
            agents: AgentsConfig::default(),
            turn: TurnConfig::default(),
            playout: PlayoutConfig::default(),
            providers: ProvidersConfig::default(),
            telephony: TelephonyConfig::default(),
            twilio: TwilioConfig::default(),
            exotel: ExotelConfig::default(),
            numbers: Vec::new(),
            auth: crate::auth::AuthConfig::default(),
            campaigns: CampaignsConfig::default(),
            tools: Default::default(),
            telemetry: Default::default(),
            analysis: Default::default(),
        }
    }
}

impl Config {
    /// Defaults, then `file` (if given; it must exist), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                anyhow::bail!("config file {} does not exist", f.display());
            }
            fig = fig.merge(Toml::file(f));
        }
        let cfg: Config = fig.merge(Env::prefixed("CALLFUNNEL_").split("__").ignore(&NOT_CONFIG)).extract().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.turn.validate().map_err(|e| anyhow::anyhow!("invalid [turn]: {e}"))?;
        self.playout.validate().map_err(|e| anyhow::anyhow!("invalid [playout]: {e}"))?;
        anyhow::ensure!((1..=1024).contains(&self.analysis.concurrency), "invalid [analysis]: concurrency ({}) must be 1 to 1024", self.analysis.concurrency);
        self.providers.validate().map_err(|e| anyhow::anyhow!("invalid [providers]: {e}"))?;
        self.stores.validate()?;
        self.telemetry.validate()?;
        if self.campaigns.claim_stale_ms < 5 * self.campaigns.tick_ms.max(100) {
            anyhow::bail!("invalid [campaigns] claim_stale_ms {}: use at least 5 ticks ({} ms)", self.campaigns.claim_stale_ms, 5 * self.campaigns.tick_ms.max(100));
        }
        self.tools.validate().map_err(|e| anyhow::anyhow!("invalid [tools]: {e}"))?;
        if !matches!(self.data.timeline.as_str(), "file" | "memory") {
            anyhow::bail!("invalid [data] timeline `{}`: use `file` or `memory`", self.data.timeline);
        }
        if !matches!(self.exotel.sample_rate, 8000 | 16000 | 24000) {
            anyhow::bail!("invalid [exotel] sample_rate {}: use 8000, 16000 or 24000", self.exotel.sample_rate);
        }
        let mut seen = std::collections::HashSet::new();
        for n in &self.numbers {
            let norm = crate::telephony_config::normalize_number(&n.number);
            if norm.trim_start_matches('+').is_empty() {
                anyhow::bail!("invalid [[numbers]] entry `{}`: not a phone number", n.number);
            }
            if !seen.insert(norm) {
                anyhow::bail!("[[numbers]] lists `{}` twice", n.number);
            }
        }
        if !matches!(self.server.public_ws_scheme.as_str(), "ws" | "wss") {
            anyhow::bail!("invalid [server] public_ws_scheme `{}`: use `wss` or `ws`", self.server.public_ws_scheme);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.toml");
        let c = Config::load(Some(&p)).unwrap();
        assert_eq!(c.providers.chains("hi-IN").1, vec!["sarvam".to_string()]);
    }

    #[test]
    fn file_and_env_override_defaults() {
        let dir = std::env::temp_dir().join(format!("cf-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(&f, "[server]\nlisten = \"127.0.0.1:9999\"\n[turn]\nmin_barge_in_ms = 500\n").unwrap();
        let c = Config::load(Some(&f)).unwrap();
        assert_eq!(c.server.listen.port(), 9999);
        assert_eq!(c.turn.min_barge_in_ms, 500);
        assert_eq!(c.turn.pause_ms, TurnConfig::default().pause_ms);
        std::fs::write(&f, "[turn]\nvad_start = 0.2\nvad_stop = 0.6\n").unwrap();
        assert!(Config::load(Some(&f)).unwrap_err().to_string().contains("vad_stop"));
        std::fs::write(&f, "[playout]\nframe_ms = 30\n").unwrap();
        assert!(Config::load(Some(&f)).unwrap_err().to_string().contains("invalid [playout]: frame_ms (30) must be a multiple of 20"));
        std::fs::write(&f, "[playout]\nframe_ms = 60\n").unwrap();
        assert_eq!(Config::load(Some(&f)).unwrap().playout.frame_samples(), 480);
        std::fs::write(&f, "[server]\nlisen = \"x\"\n").unwrap();
        assert!(Config::load(Some(&f)).unwrap_err().to_string().contains("lisen"));
        assert!(Config::load(Some(&dir.join("missing.toml"))).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
