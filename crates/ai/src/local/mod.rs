//! On-box providers for the embedded mode: Silero VAD, Smart Turn, Whisper, Piper, MiniLM.
