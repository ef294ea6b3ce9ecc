//! Builds the providers a call runs on. Models load lazily (once, shared by every call), so the
//! server is ready at once and the first call — or the background preload — pays the load.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use callfunnel_ai::local::{minilm::MiniLm, ort_env, piper::PiperTts, silero::SileroVadFactory, smart_turn::SmartTurn, whisper::WhisperStt};
use callfunnel_ai::models::ModelPaths;
use callfunnel_ai::rulebook::{RuleBook, RuleBookBrain};
use callfunnel_ai::{Brain, Embedder, SpeechToText, TextToSpeech, TurnDetector, VadFactory};
use callfunnel_media::engine::Providers;
use tokio::sync::{Mutex, OnceCell};

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

/// Provider registry for the server: local models plus one brain per agent.
pub struct ProviderHub {
    paths: ModelPaths,
    whisper_threads: usize,
    agents_dir: PathBuf,
    models: OnceCell<LocalModels>,
    brains: Mutex<HashMap<String, Arc<dyn Brain>>>,
}

impl ProviderHub {
    pub fn new(paths: ModelPaths, whisper_threads: usize, agents_dir: PathBuf) -> Self {
        ProviderHub { paths, whisper_threads, agents_dir, models: OnceCell::new(), brains: Mutex::new(HashMap::new()) }
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

    /// The rule-book brain of `agent_id` (`AGENTS_DIR/AGENT_ID.toml`), built once.
    pub async fn brain(&self, agent_id: &str) -> anyhow::Result<Arc<dyn Brain>> {
        callfunnel_data::check_id(agent_id)?;
        let mut brains = self.brains.lock().await;
        if let Some(b) = brains.get(agent_id) {
            return Ok(b.clone());
        }
        let path = self.agents_dir.join(format!("{agent_id}.toml"));
        if !path.exists() {
            anyhow::bail!("unknown agent `{agent_id}`: no rule-book at {}", path.display());
        }
        let book = RuleBook::from_file(&path)?;
        let embedder = self.models().await?.embedder;
        let brain: Arc<dyn Brain> = Arc::new(RuleBookBrain::new(book, Some(embedder)).await?);
        brains.insert(agent_id.to_string(), brain.clone());
        Ok(brain)
    }

    /// Everything a call of `agent_id` runs on.
    pub async fn for_agent(&self, agent_id: &str) -> anyhow::Result<Providers> {
        let m = self.models().await?;
        let brain = self.brain(agent_id).await?;
        Ok(Providers { vad: m.vad, turn_detector: m.turn, stt: m.stt, brain, tts: m.tts })
    }
}
