//! Builds the providers a call runs on. Models load lazily (once, shared by every call), so the
//! server is ready at once and the first call — or the background preload — pays the load.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use std::sync::Arc;

use callfunnel_ai::local::{minilm::MiniLm, ort_env, piper::PiperTts, silero::SileroVadFactory, smart_turn::SmartTurn, whisper::WhisperStt};
use callfunnel_ai::models::ModelPaths;
use callfunnel_ai::analysis::{AnalysisSpec, CallAnalyzer, ClaudeAnalyzer, LocalAnalyzer};
use callfunnel_ai::cloud::anthropic::{AnthropicClient, ClaudeBrain};
use callfunnel_ai::cloud::cartesia::{CartesiaConfig, CartesiaTts};
use callfunnel_ai::cloud::deepgram::{DeepgramConfig, DeepgramStt};
use callfunnel_ai::cloud::failover::{ApologyBrain, BrainChain, SttChain, TtsChain};
use callfunnel_ai::cloud::sarvam::stt::SarvamSttConfig;
use callfunnel_ai::cloud::sarvam::tts::SarvamTtsConfig;
use callfunnel_ai::cloud::sarvam::{SarvamStt, SarvamTts};
use callfunnel_ai::cloud::{Endpoint, SecretSource};
use callfunnel_ai::net_guard::ToolHttp;
use callfunnel_ai::rulebook::RuleBookBrain;
use callfunnel_ai::{Brain, Embedder, SpeechToText, TextToSpeech, TurnDetector, VadFactory};
use callfunnel_media::engine::Providers;
use tokio::sync::{Mutex, OnceCell};

use crate::agents::{AgentBrain, AgentFile, AgentProfile};
use crate::provider_config::ProvidersConfig;
use crate::tools_config::ToolsConfig;

/// The shared on-box models.
#[derive(Clone)]
pub struct LocalModels {
    pub vad: Arc<dyn VadFactory>,
    /// End-of-turn model; without one, a fixed silence ends the turn.
    pub turn: Option<Arc<dyn TurnDetector>>,
    pub stt: Arc<dyn SpeechToText>,
    pub tts: Arc<dyn TextToSpeech>,
    pub embedder: Arc<dyn Embedder>,
}

impl LocalModels {
    /// Loads every model (blocking: call from `spawn_blocking`).
    pub fn load(paths: &ModelPaths, whisper_threads: usize) -> anyhow::Result<LocalModels> {
        ort_env::init(paths)?;
        Ok(LocalModels {
            vad: Arc::new(SileroVadFactory::load(paths)?),
            turn: Some(Arc::new(SmartTurn::load(paths)?)),
            stt: Arc::new(WhisperStt::load_with_threads(paths, whisper_threads)?),
            tts: Arc::new(PiperTts::load(paths)?),
            embedder: Arc::new(MiniLm::load(paths)?),
        })
    }
}

/// What one call runs on, and how the agent speaks.
pub struct CallProviders {
    pub providers: Providers,
    pub voice: String,
    pub language: String,
    /// The agent's answer to voicemail on outbound calls.
    pub voicemail: Option<callfunnel_media::engine::VoicemailAction>,
}

struct LoadedAgent {
    profile: AgentProfile,
    brain: Arc<dyn Brain>,
    analysis: AnalysisSpec,
    /// An LLM agent (its calls are analyzed by Claude unless `[analysis] provider` says not).
    llm: bool,
}

/// Provider registry for the server: the shared local models, one brain per agent, and cloud
/// adapters and failover chains per tenant (built once, so circuit breakers and pooled
/// connections are shared by that tenant's calls).
pub struct ProviderHub {
    paths: ModelPaths,
    whisper_threads: usize,
    agents_dir: PathBuf,
    config: ProvidersConfig,
    secrets: Arc<dyn SecretSource>,
    models: OnceCell<LocalModels>,
    agents: Mutex<HashMap<String, Arc<LoadedAgent>>>,
    stt_chains: Mutex<HashMap<String, Arc<dyn SpeechToText>>>,
    tts_chains: Mutex<HashMap<String, Arc<dyn TextToSpeech>>>,
    /// The client (and `[tools]` network policy) every agent's HTTP tools run on.
    tool_http: ToolHttp,
    /// Agents published through the API (their latest version wins over agent files).
    control: Option<Arc<dyn callfunnel_data::control::ControlStore>>,
    /// Knowledge bases' chunks, searched by the agents whose id names a knowledge base.
    vectors: Option<Arc<dyn callfunnel_data::vectors::VectorStore>>,
}

const APOLOGY: &str = "I'm sorry, I'm having trouble right now. Could you say that again?";

impl ProviderHub {
    pub fn new(paths: ModelPaths, whisper_threads: usize, agents_dir: PathBuf, config: ProvidersConfig, secrets: Arc<dyn SecretSource>) -> Self {
        ProviderHub {
            paths,
            whisper_threads,
            agents_dir,
            config,
            secrets,
            models: OnceCell::new(),
            agents: Mutex::new(HashMap::new()),
            stt_chains: Mutex::new(HashMap::new()),
            tts_chains: Mutex::new(HashMap::new()),
            tool_http: ToolHttp::default(),
            control: None,
            vectors: None,
        }
    }

    /// Agents answer from the knowledge base named like them (if the tenant has one).
    pub fn with_vectors(mut self, vectors: Arc<dyn callfunnel_data::vectors::VectorStore>) -> Self {
        self.vectors = Some(vectors);
        self
    }

    /// The knowledge base of `agent_id` (the tenant's knowledge base with the same id), as the
    /// brain searches it; resolved when the agent is loaded.
    async fn knowledge_for(&self, tenant_id: &str, agent_id: &str) -> Option<Arc<dyn callfunnel_ai::knowledge::KnowledgeSearch>> {
        let (control, vectors) = (self.control.as_ref()?, self.vectors.as_ref()?);
        let kb = control.kbs(tenant_id).await.ok()?.into_iter().find(|k| k.id == agent_id)?;
        match self.embedder(tenant_id, &kb.embed_model, kb.dim as usize).await {
            Ok(embedder) => Some(Arc::new(crate::knowledge::KbSearch { vectors: vectors.clone(), embedder, tenant: tenant_id.to_string(), kb })),
            Err(e) => {
                tracing::warn!(tenant_id, agent_id, error = %e, "knowledge base unusable: the agent answers without it");
                None
            }
        }
    }

    /// Agents come from the control store's published versions first, then from agent files.
    pub fn with_control(mut self, control: Arc<dyn callfunnel_data::control::ControlStore>) -> Self {
        self.control = Some(control);
        self
    }

    /// The latest published version number of `agent_id`, if the control store has one.
    async fn latest_published(&self, tenant_id: &str, agent_id: &str) -> Option<i32> {
        match self.control.as_ref()?.agent(tenant_id, agent_id).await {
            Ok(a) if a.latest_version > 0 => Some(a.latest_version),
            Ok(_) | Err(callfunnel_data::DataError::NotFound { .. }) => None,
            Err(e) => {
                tracing::warn!(tenant_id, agent_id, error = %e, "control store unavailable: using the agent file");
                None
            }
        }
    }

    async fn published(&self, tenant_id: &str, agent_id: &str, latest: i32) -> Option<AgentFile> {
        let control = self.control.as_ref()?;
        match control.agent_version(tenant_id, agent_id, Some(latest)).await.map_err(anyhow::Error::from).and_then(|v| AgentFile::from_version(&v.spec)) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::error!(tenant_id, agent_id, version = latest, error = %e, "published agent version unusable: using the agent file");
                None
            }
        }
    }

    /// Agents' HTTP tools follow `policy` (the `[tools]` section); without it, the strict
    /// default (https only, no private networks).
    pub fn with_tools(mut self, policy: &ToolsConfig) -> anyhow::Result<Self> {
        self.tool_http = crate::tools_config::tool_http(policy)?;
        Ok(self)
    }

    pub fn models_loaded(&self) -> bool {
        self.models.initialized()
    }

    /// What is missing for calls to run (model files), empty when ready.
    pub fn missing(&self) -> Vec<&'static str> {
        callfunnel_ai::models::fetch::missing(&self.paths)
    }

    pub async fn models(&self) -> anyhow::Result<LocalModels> {
        self.models
            .get_or_try_init(|| async {
                let (paths, threads) = (self.paths.clone(), self.whisper_threads);
                let t = std::time::Instant::now();
                let m = tokio::task::spawn_blocking(move || LocalModels::load(&paths, threads)).await??;
                tracing::info!(ms = t.elapsed().as_millis() as u64, "local models loaded");
                Ok(m)
            })
            .await
            .cloned()
    }

    /// A provider key of `tenant_id`, or a clear error naming the variables that provide it.
    async fn endpoint(&self, tenant_id: &str, provider: &str, url: &str) -> anyhow::Result<Endpoint> {
        match self.secrets.provider_key(tenant_id, provider).await? {
            Some(key) => Ok(Endpoint::new(url, key)),
            None => {
                let up = provider.to_ascii_uppercase();
                anyhow::bail!("no API key for `{provider}` (tenant `{tenant_id}`): set CALLFUNNEL_{up}_API_KEY or {up}_API_KEY")
            }
        }
    }

    /// The embedder of a knowledge base's model: MiniLM on the box, or Voyage with the
    /// tenant's key (`voyage-*`, at the knowledge base's dimension).
    pub async fn embedder(&self, tenant_id: &str, model: &str, dim: usize) -> anyhow::Result<Arc<dyn callfunnel_ai::Embedder>> {
        match model {
            "minilm-l6-v2" => Ok(self.models().await?.embedder),
            m if m.starts_with("voyage-") => {
                let c = &self.config.voyage;
                let cfg = callfunnel_ai::cloud::voyage::VoyageConfig { model: m.to_string(), output_dimension: dim, ..Default::default() };
                Ok(Arc::new(callfunnel_ai::cloud::voyage::VoyageEmbedder::new(self.endpoint(tenant_id, "voyage", &c.url).await?, cfg)))
            }
            other => anyhow::bail!("unknown embedding model `{other}`"),
        }
    }

    /// The brain of `agent_id` (`AGENTS_DIR/AGENT_ID.toml`), built once per tenant and agent.
    pub async fn brain(&self, tenant_id: &str, agent_id: &str) -> anyhow::Result<Arc<dyn Brain>> {
        Ok(self.agent(tenant_id, agent_id).await?.brain.clone())
    }

    /// Whether `agent_id` loads for `tenant_id` (published, or an agent file).
    pub async fn check_agent(&self, tenant_id: &str, agent_id: &str) -> anyhow::Result<()> {
        self.agent(tenant_id, agent_id).await.map(|_| ())
    }

    async fn agent(&self, tenant_id: &str, agent_id: &str) -> anyhow::Result<Arc<LoadedAgent>> {
        callfunnel_data::check_id(agent_id)?;
        let latest = self.latest_published(tenant_id, agent_id).await;
        let key = match latest {
            Some(v) => format!("{tenant_id}/{agent_id}@v{v}"),
            None => format!("{tenant_id}/{agent_id}"),
        };
        let mut agents = self.agents.lock().await;
        if let Some(a) = agents.get(&key) {
            return Ok(a.clone());
        }
        let published = match latest {
            Some(v) => self.published(tenant_id, agent_id, v).await,
            None => None,
        };
        // a newer version replaces the older ones in the cache
        let prefix = format!("{tenant_id}/{agent_id}@");
        agents.retain(|k, _| !k.starts_with(&prefix));
        let file = match published {
            Some(f) => f,
            None => {
                let path = self.agents_dir.join(format!("{agent_id}.toml"));
                if !path.exists() {
                    anyhow::bail!("unknown agent `{agent_id}`: no published version and no agent file at {}", path.display());
                }
                AgentFile::load(&path)?
            }
        };
        let llm = matches!(file.brain, AgentBrain::Llm(_));
        let brain: Arc<dyn Brain> = match file.brain {
            AgentBrain::RuleBook(book) => {
                let embedder = self.models().await?.embedder;
                let mut brain = RuleBookBrain::new(*book, Some(embedder)).await?.with_tool_http(self.tool_http.clone());
                if let Some(k) = self.knowledge_for(tenant_id, agent_id).await {
                    brain = brain.with_knowledge(k);
                }
                Arc::new(brain)
            }
            AgentBrain::Llm(mut agent) => {
                let c = &self.config.anthropic;
                if let Some(m) = &c.model {
                    agent.model = m.clone();
                }
                if agent.fallback_model.is_none() {
                    agent.fallback_model = c.fallback_model.clone();
                }
                let client = AnthropicClient::new(self.endpoint(tenant_id, "anthropic", &c.url).await?);
                let mut claude = ClaudeBrain::new(client, *agent).with_tool_http(self.tool_http.clone());
                if let Some(k) = self.knowledge_for(tenant_id, agent_id).await {
                    claude = claude.with_knowledge(k);
                }
                Arc::new(BrainChain::new(vec![Arc::new(claude), Arc::new(ApologyBrain(APOLOGY.into()))]))
            }
        };
        let loaded = Arc::new(LoadedAgent { profile: file.profile, brain, analysis: file.analysis, llm });
        agents.insert(key, loaded.clone());
        Ok(loaded)
    }

    /// The post-call analyzer of an agent and what it should extract: Claude (the tenant's
    /// key, an offline client) for LLM agents or `[analysis] provider = "anthropic"`, else the
    /// local one. `None` when the agent turned analysis off.
    pub async fn analyzer(&self, tenant_id: &str, agent_id: &str) -> anyhow::Result<Option<(Arc<dyn CallAnalyzer>, AnalysisSpec)>> {
        let agent = self.agent(tenant_id, agent_id).await?;
        let spec = agent.analysis.clone();
        if !spec.enabled {
            return Ok(None);
        }
        let provider = spec.provider.clone().unwrap_or_else(|| if agent.llm { "anthropic".into() } else { "local".into() });
        let analyzer: Arc<dyn CallAnalyzer> = match provider.as_str() {
            "anthropic" => {
                let c = &self.config.anthropic;
                let model = spec.model.clone().or_else(|| c.model.clone()).unwrap_or_else(|| callfunnel_ai::cloud::anthropic::brain::DEFAULT_MODEL.to_string());
                Arc::new(ClaudeAnalyzer::new(AnthropicClient::offline(self.endpoint(tenant_id, "anthropic", &c.url).await?), model))
            }
            _ => Arc::new(LocalAnalyzer),
        };
        Ok(Some((analyzer, spec)))
    }

    async fn stt_member(&self, tenant_id: &str, name: &str, local: &LocalModels) -> anyhow::Result<Arc<dyn SpeechToText>> {
        let c = &self.config;
        Ok(match name {
            "local" => local.stt.clone(),
            "deepgram" => Arc::new(DeepgramStt::new(self.endpoint(tenant_id, name, &c.deepgram.url).await?, DeepgramConfig { model: c.deepgram.model.clone(), ..Default::default() })),
            "sarvam" => Arc::new(SarvamStt::new(self.endpoint(tenant_id, name, &c.sarvam.url).await?, SarvamSttConfig { model: c.sarvam.stt_model.clone(), mode: c.sarvam.stt_mode.clone(), ..Default::default() })),
            other => anyhow::bail!("unknown speech-to-text provider `{other}`"),
        })
    }

    async fn tts_member(&self, tenant_id: &str, name: &str, local: &LocalModels) -> anyhow::Result<Arc<dyn TextToSpeech>> {
        let c = &self.config;
        Ok(match name {
            "local" => local.tts.clone(),
            "cartesia" => Arc::new(CartesiaTts::new(self.endpoint(tenant_id, name, &c.cartesia.url).await?, CartesiaConfig { model: c.cartesia.model.clone(), default_voice: c.cartesia.voice.clone(), ..Default::default() })),
            "sarvam" => Arc::new(SarvamTts::new(self.endpoint(tenant_id, name, &c.sarvam.url).await?, SarvamTtsConfig { model: c.sarvam.tts_model.clone(), default_speaker: c.sarvam.speaker.clone(), ..Default::default() })),
            other => anyhow::bail!("unknown text-to-speech provider `{other}`"),
        })
    }

    /// The STT chain `names` for a tenant: members without a key are left out (with a warning)
    /// unless none is left.
    async fn stt_chain(&self, tenant_id: &str, names: &[String], local: &LocalModels) -> anyhow::Result<Arc<dyn SpeechToText>> {
        let key = format!("{tenant_id}|{}", names.join(","));
        let mut chains = self.stt_chains.lock().await;
        if let Some(c) = chains.get(&key) {
            return Ok(c.clone());
        }
        let mut members = Vec::new();
        let mut errors = Vec::new();
        for n in names {
            match self.stt_member(tenant_id, n, local).await {
                Ok(m) => members.push(m),
                Err(e) => {
                    tracing::warn!(tenant_id, provider = %n, error = %e, "speech-to-text provider left out");
                    errors.push(e.to_string());
                }
            }
        }
        let chain: Arc<dyn SpeechToText> = match members.len() {
            0 => anyhow::bail!("no speech-to-text provider available: {}", errors.join("; ")),
            1 => members.remove(0),
            _ => Arc::new(SttChain::new(members, Duration::from_millis(self.config.stt_finalize_timeout_ms))),
        };
        chains.insert(key, chain.clone());
        Ok(chain)
    }

    async fn tts_chain(&self, tenant_id: &str, names: &[String], local: &LocalModels) -> anyhow::Result<Arc<dyn TextToSpeech>> {
        let key = format!("{tenant_id}|{}", names.join(","));
        let mut chains = self.tts_chains.lock().await;
        if let Some(c) = chains.get(&key) {
            return Ok(c.clone());
        }
        let mut members = Vec::new();
        let mut errors = Vec::new();
        for n in names {
            match self.tts_member(tenant_id, n, local).await {
                Ok(m) => members.push(m),
                Err(e) => {
                    tracing::warn!(tenant_id, provider = %n, error = %e, "text-to-speech provider left out");
                    errors.push(e.to_string());
                }
            }
        }
        let chain: Arc<dyn TextToSpeech> = match members.len() {
            0 => anyhow::bail!("no text-to-speech provider available: {}", errors.join("; ")),
            // a single provider still gets the chain: it retries a failed turn on a new context
            _ => {
                // The first-audio deadline catches a stalled cloud connection. An on-box model is
                // never stalled, only slowed when the cores are busy (a long Whisper decode beside
                // it): cutting it off would fail a turn that is merely late.
                let on_box = names.iter().all(|n| n == "local");
                let deadline = if on_box { self.config.tts_first_audio_timeout_ms.max(10_000) } else { self.config.tts_first_audio_timeout_ms };
                Arc::new(TtsChain::new(members, Duration::from_millis(deadline)))
            }
        };
        chains.insert(key, chain.clone());
        Ok(chain)
    }

    /// Everything a call of `agent_id` for `tenant_id` runs on; `voice`/`language` are the
    /// defaults when the agent's profile names none.
    pub async fn for_call(&self, tenant_id: &str, agent_id: &str, voice: &str, language: &str) -> anyhow::Result<CallProviders> {
        let m = self.models().await?;
        let agent = self.agent(tenant_id, agent_id).await?;
        let language = agent.profile.language.clone().unwrap_or_else(|| language.to_string());
        let (stt_names, tts_names) = self.config.chains(&language);
        // the tenant's plan may allow only some providers: the chains keep just those
        let allowed = match &self.control {
            Some(c) => c.tenant(tenant_id).await.ok().and_then(|t| t.plan.allowed_providers),
            None => None,
        };
        let stt_names = crate::admission::allowed_chain(&agent.profile.stt.clone().unwrap_or(stt_names), allowed.as_deref());
        let tts_names = crate::admission::allowed_chain(&agent.profile.tts.clone().unwrap_or(tts_names), allowed.as_deref());
        if stt_names.is_empty() || tts_names.is_empty() {
            anyhow::bail!("the tenant's plan allows no speech-to-text or text-to-speech provider of this agent");
        }
        let stt = self.stt_chain(tenant_id, &stt_names, &m).await?;
        let tts = self.tts_chain(tenant_id, &tts_names, &m).await?;
        let voice = agent.profile.voice.clone().unwrap_or_else(|| voice.to_string());
        Ok(CallProviders { providers: Providers { vad: m.vad, turn_detector: m.turn, stt, brain: agent.brain.clone(), tts }, voice, language, voicemail: agent.profile.voicemail.clone() })
    }
}
