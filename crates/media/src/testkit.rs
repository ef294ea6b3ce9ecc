//! Deterministic, model-free providers for engine tests and benchmarks: an energy VAD, an STT
//! that reports utterance durations, an echo brain and a tone TTS whose length follows the
//! text. They exercise every engine path with no model files.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use callfunnel_ai::*;
use tokio::sync::mpsc;

use crate::engine::Providers;

/// Speech = frame RMS above a threshold.
pub struct EnergyVad;

struct EnergyVadState;

impl Vad for EnergyVadState {
    fn sample_rate(&self) -> u32 { 8000 }
    fn frame_len(&self) -> usize { 256 }
    fn process(&mut self, frame: &[f32]) -> Result<f32> {
        let rms = (frame.iter().map(|s| s * s).sum::<f32>() / frame.len().max(1) as f32).sqrt();
        Ok(if rms > 0.02 { 0.95 } else { 0.02 })
    }
    fn reset(&mut self) {}
}

impl VadFactory for EnergyVad {
    fn create(&self, _rate: u32) -> Result<Box<dyn Vad>> { Ok(Box::new(EnergyVadState)) }
}

/// Always says the turn is complete, after `delay`.
pub struct InstantTurn(pub Duration);

#[async_trait]
impl TurnDetector for InstantTurn {
    async fn predict(&self, _audio: Vec<i16>) -> Result<TurnPrediction> {
        tokio::time::sleep(self.0).await;
        Ok(TurnPrediction { complete: true, probability: 0.9 })
    }
}

/// Transcribes each utterance as the next line of `lines` (or "utterance of N ms").
pub struct ScriptedStt {
    pub lines: Vec<String>,
    pub delay: Duration,
}

#[async_trait]
impl SpeechToText for ScriptedStt {
    fn name(&self) -> &'static str { "scripted" }
    async fn open(&self, cfg: SttConfig) -> Result<SttStream> {
        let (in_tx, mut in_rx) = mpsc::channel::<SttInput>(256);
        let (ev_tx, ev_rx) = mpsc::channel(16);
        let (lines, delay) = (self.lines.clone(), self.delay);
        tokio::spawn(async move {
            let (mut samples, mut n) = (0usize, 0usize);
            while let Some(i) = in_rx.recv().await {
                match i {
                    SttInput::Audio(a) => samples += a.len(),
                    SttInput::Prepare => {}
                    SttInput::Finalize => {
                        tokio::time::sleep(delay).await;
                        let text = lines.get(n).cloned().unwrap_or_else(|| format!("utterance of {} ms", samples * 1000 / cfg.sample_rate as usize));
                        n += 1;
                        samples = 0;
                        if ev_tx.send(SttEvent::Final { text, confidence: 1.0, flushed: true }).await.is_err() { return }
                    }
                }
            }
        });
        Ok(SttStream { input: in_tx, events: ev_rx })
    }
}

/// Greets, repeats what it heard ("You said: ..."), ends the call on "goodbye", presses 1 2 on
/// "menu" and warm-transfers on "person".
pub struct EchoBrain {
    pub greeting: String,
}

struct EchoSession(String);

#[async_trait]
impl Brain for EchoBrain {
    fn name(&self) -> &'static str { "echo" }
    async fn session(&self, _ctx: CallContext) -> Result<Box<dyn BrainSession>> {
        Ok(Box::new(EchoSession(self.greeting.clone())))
    }
}

#[async_trait]
impl BrainSession for EchoSession {
    async fn respond(&mut self, input: TurnInput, _history: &[Message]) -> Result<mpsc::Receiver<BrainEvent>> {
        let (tx, rx) = mpsc::channel(16);
        let mut out = Vec::new();
        match input {
            TurnInput::CallStarted => out.push(BrainEvent::Text(self.0.clone())),
            TurnInput::UserSaid(t) if t.to_lowercase().contains("goodbye") => {
                out.push(BrainEvent::Text("Goodbye.".into()));
                out.push(BrainEvent::Action(CallAction::EndCall { reason: "caller said goodbye".into() }));
            }
            TurnInput::UserSaid(t) if t.to_lowercase().contains("menu") => {
                out.push(BrainEvent::Text("Pressing one, then two.".into()));
                out.push(BrainEvent::Action(CallAction::SendDtmf { digits: "12".into() }));
            }
            TurnInput::UserSaid(t) if t.to_lowercase().contains("person") => {
                out.push(BrainEvent::Text("Putting you through.".into()));
                out.push(BrainEvent::Action(CallAction::Transfer { to: "+15550123000".into(), reason: "asked for a person".into(), warm: true, summary: None }));
            }
            TurnInput::UserSaid(t) => {
                for w in format!("You said: {t}.").split_inclusive(' ') {
                    out.push(BrainEvent::Text(w.to_string()));
                }
            }
            TurnInput::Dtmf(d) => out.push(BrainEvent::Text(format!("You pressed {d}."))),
            TurnInput::Silence => out.push(BrainEvent::Text("Are you still there?".into())),
        }
        tokio::spawn(async move {
            for e in out {
                if tx.send(e).await.is_err() { return }
            }
        });
        Ok(rx)
    }
}

/// A 440 Hz tone, `ms_per_char` long per character, one segment per sentence.
pub struct ToneTts {
    pub ms_per_char: u64,
    pub first_audio_delay: Duration,
}

#[async_trait]
impl TextToSpeech for ToneTts {
    fn name(&self) -> &'static str { "tone" }
    async fn open(&self, cfg: TtsConfig) -> Result<TtsStream> {
        let (in_tx, mut in_rx) = mpsc::channel::<TtsInput>(64);
        let (ev_tx, ev_rx) = mpsc::channel(64);
        let (ms_per_char, delay) = (self.ms_per_char, self.first_audio_delay);
        tokio::spawn(async move {
            let mut split = crate::engine::SentenceSplitter::default();
            let mut phase = 0f32;
            let mut emit = |s: String| {
                let n = (s.chars().count() as u64 * ms_per_char * cfg.sample_rate as u64 / 1000) as usize;
                let pcm: Vec<i16> = (0..n).map(|_| { phase += 2.0 * std::f32::consts::PI * 440.0 / cfg.sample_rate as f32; (phase.sin() * 8000.0) as i16 }).collect();
                pcm.chunks(800).enumerate().map(|(i, c)| TtsEvent::Audio(TtsChunk { pcm: c.to_vec(), text: (i == 0).then(|| s.clone()) })).collect::<Vec<_>>()
            };
            while let Some(i) = in_rx.recv().await {
                let (sentences, done) = match i {
                    TtsInput::Text(t) => (split.push(&t), false),
                    TtsInput::Flush => (split.finish().into_iter().collect(), true),
                };
                for s in sentences {
                    tokio::time::sleep(delay).await;
                    for e in emit(s) {
                        if ev_tx.send(e).await.is_err() { return }
                    }
                }
                if done && ev_tx.send(TtsEvent::Done).await.is_err() { return }
            }
        });
        Ok(TtsStream { input: in_tx, events: ev_rx })
    }
}

/// The test kit wired as engine providers.
pub fn providers(stt_lines: &[&str]) -> Providers {
    Providers {
        vad: Arc::new(EnergyVad),
        turn_detector: Some(Arc::new(InstantTurn(Duration::from_millis(5)))),
        stt: Arc::new(ScriptedStt { lines: stt_lines.iter().map(|s| s.to_string()).collect(), delay: Duration::from_millis(5) }),
        brain: Arc::new(EchoBrain { greeting: "Hello, this is the test agent. How can I help you today?".into() }),
        tts: Arc::new(ToneTts { ms_per_char: 60, first_audio_delay: Duration::from_millis(5) }),
    }
}

/// A caller script for the test kit's agent: a question, a barge-in over the answer, goodbye
/// (the lines [`providers`] transcribes, in order).
pub const BOOKING_SCRIPT: &str = r#"
[[line]]
say = "What are your opening hours?"
[[line]]
say = "I want to book an appointment please"
barge_in_after_ms = 700
[[line]]
say = "Goodbye"
"#;
