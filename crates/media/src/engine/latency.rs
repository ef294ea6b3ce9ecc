//! Per-turn latency by stage: speech end → turn decided → transcript → first brain token →
//! first TTS audio → first byte to the carrier. A turn's latency, once complete, is also
//! counted in the process metrics (`callfunnel_turn_stage_seconds`), once per turn.

use std::sync::atomic::{AtomicBool, Ordering};

use callfunnel_metrics::{Stage, TURN_STAGES};
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
    /// Set when the complete turn has been counted in the metrics.
    pub(crate) reported: Reported,
}

#[derive(Debug, Default)]
pub(crate) struct Reported(AtomicBool);

impl Clone for Reported {
    fn clone(&self) -> Self {
        Reported(AtomicBool::new(self.0.load(Ordering::Relaxed)))
    }
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
    /// All stages in milliseconds, once the first byte has gone out. The first complete
    /// answer is counted in the metrics ([`TurnLatency::observe`]); later calls are not.
    pub fn latency(&self) -> Option<TurnLatency> {
        let l = TurnLatency {
            end_of_turn: ms(self.speech_end, self.turn_decided)?,
            stt: ms(self.turn_decided, self.transcript)?,
            brain_first_token: ms(self.transcript, self.first_token)?,
            tts_first_audio: ms(self.first_token, self.first_audio)?,
            send: ms(self.first_audio, self.first_byte)?,
            total: ms(self.speech_end, self.first_byte)?,
        };
        if !self.reported.0.swap(true, Ordering::Relaxed) {
            l.observe();
        }
        Some(l)
    }
}

impl TurnLatency {
    /// Time not spent waiting on a model or provider (dispatch, queues, pacing).
    pub fn engine_overhead(&self) -> f64 {
        (self.total - self.end_of_turn - self.stt - self.brain_first_token - self.tts_first_audio).max(0.0)
    }

    /// Counts every stage, and the engine overhead, in `callfunnel_turn_stage_seconds`.
    pub fn observe(&self) {
        let stages = [
            (Stage::EndOfTurn, self.end_of_turn),
            (Stage::Stt, self.stt),
            (Stage::BrainFirstToken, self.brain_first_token),
            (Stage::TtsFirstAudio, self.tts_first_audio),
            (Stage::Send, self.send),
            (Stage::EngineOverhead, self.engine_overhead()),
            (Stage::Total, self.total),
        ];
        for (stage, ms) in stages {
            TURN_STAGES.observe(stage, ms / 1000.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_complete_turn_is_counted_once() {
        let t0 = Instant::now();
        let at = |ms: u64| Some(t0 + Duration::from_millis(ms));
        let mut t = TurnTimes { speech_end: at(0), turn_decided: at(200), transcript: at(260), first_token: at(560), ..Default::default() };
        let count = |s| TURN_STAGES.get(s).count();
        let before = Stage::ALL.map(count);
        assert!(t.latency().is_none(), "not complete yet");
        assert!(!t.reported.0.load(Ordering::Relaxed));
        t.first_audio = at(660);
        t.first_byte = at(700);
        let l = t.latency().unwrap();
        assert_eq!((l.stt, l.total, l.engine_overhead()), (60.0, 700.0, 40.0));
        assert!(t.reported.0.load(Ordering::Relaxed) && t.clone().reported.0.load(Ordering::Relaxed), "asking again (or a copy) counts nothing more");
        // Other tests may run turns at the same time: at least this one was counted.
        for (s, b) in Stage::ALL.iter().zip(before) {
            assert!(count(*s) > b, "{s:?}");
        }
    }
}
