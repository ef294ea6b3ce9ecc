//! Per-turn latency by stage: speech end → turn decided → transcript → first brain token →
//! first TTS audio → first byte to the carrier.

use serde::Serialize;
use tokio::time::Instant;

#[derive(Debug, Clone, Default)]
pub struct TurnTimes {
    pub speech_end: Option<Instant>,
    pub turn_decided: Option<Instant>,
    pub transcript: Option<Instant>,
    pub first_token: Option<Instant>,
    pub first_audio: Option<Instant>,
    pub first_byte: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TurnLatency {
    pub end_of_turn: f64,
    pub stt: f64,
    pub brain_first_token: f64,
    pub tts_first_audio: f64,
    pub send: f64,
    pub total: f64,
}

fn ms(a: Option<Instant>, b: Option<Instant>) -> Option<f64> {
    Some(b?.saturating_duration_since(a?).as_secs_f64() * 1000.0)
}

impl TurnTimes {
    /// All stages in milliseconds, once the first byte has gone out.
    pub fn latency(&self) -> Option<TurnLatency> {
        Some(TurnLatency {
            end_of_turn: ms(self.speech_end, self.turn_decided)?,
            stt: ms(self.turn_decided, self.transcript)?,
            brain_first_token: ms(self.transcript, self.first_token)?,
            tts_first_audio: ms(self.first_token, self.first_audio)?,
            send: ms(self.first_audio, self.first_byte)?,
            total: ms(self.speech_end, self.first_byte)?,
        })
    }
}

impl TurnLatency {
    /// Time not spent waiting on a model or provider (dispatch, queues, pacing).
    pub fn engine_overhead(&self) -> f64 {
        (self.total - self.end_of_turn - self.stt - self.brain_first_token - self.tts_first_audio).max(0.0)
    }
}
