//! Turn-taking and playout tuning for one call.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// VAD probability that starts speech.
    pub vad_start: f32,
    /// VAD probability below which speech counts as stopped (hysteresis).
    pub vad_stop: f32,
    /// Speech must last this long to count (filters clicks).
    pub min_speech_ms: u32,
    /// Silence after speech before the end-of-turn model is asked.
    pub pause_ms: u32,
    /// Silence that ends the turn whatever the model says.
    pub max_pause_ms: u32,
    /// Silence that ends the turn when no end-of-turn model is configured.
    pub no_model_pause_ms: u32,
    /// Speech over the agent must be held this long to interrupt it (a cough or "uh-huh" must not).
    pub min_barge_in_ms: u32,
    /// Audio before the detected speech start that is still sent to STT.
    pub preroll_ms: u32,
    /// Keys pressed within this long of each other are one entry (`#` ends an entry at once).
    pub dtmf_timeout_ms: u32,
    /// Energy pre-gate: outside a caller's turn, a VAD frame quieter than this (RMS, dBFS) is
    /// silence without asking Silero; Silero runs on every louder frame, for `vad_gate_hold_ms`
    /// after one, and throughout a turn. -120 turns the gate off (Silero on every frame).
    pub vad_gate_dbfs: f32,
    pub vad_gate_hold_ms: u32,
    /// Ask the end-of-turn model (Smart Turn, about 56 ms of CPU per pause) whether a pause
    /// ends the turn. Off: a pause ends it after `no_model_pause_ms`, or sooner when the
    /// speculative transcript reads as a finished sentence.
    pub end_of_turn_model: bool,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            vad_start: 0.5,
            vad_stop: 0.35,
            min_speech_ms: 64,
            pause_ms: 500,
            max_pause_ms: 1200,
            no_model_pause_ms: 700,
            min_barge_in_ms: 320,
            preroll_ms: 300,
            dtmf_timeout_ms: 1000,
            vad_gate_dbfs: -50.0,
            vad_gate_hold_ms: 320,
            end_of_turn_model: true,
        }
    }
}

impl TurnConfig {
    pub fn validate(&self) -> Result<(), String> {
        let p = |v: f32| (0.0..=1.0).contains(&v);
        if !p(self.vad_start) || !p(self.vad_stop) || self.vad_stop > self.vad_start {
            return Err(format!("vad_stop ({}) must be ≤ vad_start ({}), both in 0..1", self.vad_stop, self.vad_start));
        }
        if !(-120.0..=0.0).contains(&self.vad_gate_dbfs) {
            return Err(format!("vad_gate_dbfs ({}) must be in -120..0", self.vad_gate_dbfs));
        }
        if self.pause_ms > self.max_pause_ms {
            return Err(format!("pause_ms ({}) must be ≤ max_pause_ms ({})", self.pause_ms, self.max_pause_ms));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlayoutConfig {
    /// How far ahead of real time audio is sent to the carrier (bounds what `clear` must drop).
    pub lead_ms: u32,
    /// A mark is sent after this much audio, so what was heard is known to this precision.
    pub mark_every_ms: u32,
    /// Agent audio goes to the carrier in messages of this length (a multiple of 20 ms, up to
    /// 200). Carriers play any length; 40 ms is half the messages, socket writes and wake-ups
    /// of 20 ms frames, and `clear` still drops what was not heard.
    pub frame_ms: u32,
}

impl Default for PlayoutConfig {
    fn default() -> Self {
        PlayoutConfig { lead_ms: 80, mark_every_ms: 100, frame_ms: 40 }
    }
}

impl PlayoutConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.frame_ms == 0 || self.frame_ms % 20 != 0 || self.frame_ms > 200 {
            return Err(format!("frame_ms ({}) must be a multiple of 20 from 20 to 200", self.frame_ms));
        }
        if self.mark_every_ms == 0 {
            return Err("mark_every_ms must be above 0".into());
        }
        Ok(())
    }

    /// Samples in one message to the carrier (8 kHz).
    pub fn frame_samples(&self) -> usize {
        self.frame_ms as usize * 8
    }
}
