//! AI services plane: one trait per capability ([`Vad`], [`TurnDetector`], [`SpeechToText`],
//! [`Brain`], [`TextToSpeech`], [`Embedder`]) and one adapter per provider.
//!
//! Every streaming capability is a pair of bounded channels (input, events) so the per-call
//! engine composes them as small tasks; dropping a stream's halves cancels it.

pub mod error;
pub mod knowledge;
pub mod models;
pub mod traits;
pub mod text;
pub mod local;
pub mod rulebook;
pub mod analysis;
pub mod cloud;
pub mod net_guard;

pub use error::{AiError, Result};
pub use traits::*;
