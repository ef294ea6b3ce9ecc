//! On-box providers for the embedded mode: Silero VAD, Whisper, Piper, MiniLM.

pub mod ort_env;
pub mod silero;
pub mod espeak;
pub mod piper;
pub mod whisper;
pub mod wordpiece;
pub mod minilm;
