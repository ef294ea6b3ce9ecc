use std::path::PathBuf;

/// Errors of the AI services plane.
#[derive(Debug, thiserror::Error)]
pub enum AiError {
    /// A model file is not in the models directory.
    #[error("model `{what}` not found at {path}: run `callfunnel models fetch` (or `make models`) to fetch it")]
    ModelMissing { what: &'static str, path: PathBuf },
    /// A model loaded but inference failed.
    #[error("{provider}: inference failed: {message}")]
    Inference { provider: &'static str, message: String },
    /// Configuration is invalid (bad rule-book, unknown voice, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A provider could not be reached or answered with an error.
    #[error("{provider}: {message}")]
    Provider { provider: &'static str, message: String },
    /// The stream was closed (cancelled or the other side went away).
    #[error("stream closed")]
    Closed,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl AiError {
    pub fn inference(provider: &'static str, e: impl std::fmt::Display) -> Self {
        AiError::Inference { provider, message: e.to_string() }
    }
}

pub type Result<T, E = AiError> = std::result::Result<T, E>;
