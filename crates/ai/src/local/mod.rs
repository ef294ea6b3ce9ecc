//! On-box providers for the embedded mode: Silero VAD, Smart Turn, Whisper, Piper, MiniLM.

pub mod ort_env;
pub mod silero;
mod silero_batch;
pub mod mel;
pub mod smart_turn;
pub mod espeak;
pub mod piper;
pub mod whisper;
pub mod wordpiece;
pub mod minilm;
