//! The per-call engine: small tasks joined by bounded channels.
//!
//! ```text
//! carrier ─► listener (VAD → turn-taking → gated audio) ─► STT ─┐
//!               │ marks ─► playout ◄─ speaker (brain → TTS) ◄───┤
//!               └ speech / turn / DTMF events ─────────► controller (history, barge-in)
//! playout ─► carrier (20 ms frames, marks, clear)
//! ```
//! One task tree per call under a cancellation token: when the controller returns, every
//! other task of the call ends with it.

pub mod config;
pub mod heard;
pub mod latency;
pub mod playout;
pub mod turn;

mod controller;
mod listener;
mod recorder;
mod speaker;

use std::sync::Arc;

use callfunnel_ai::{Brain, CallContext, SpeechToText, SttConfig, TextToSpeech, TtsConfig, TurnDetector, VadFactory};
use callfunnel_data::TimelineStore;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::{PlayoutConfig, TurnConfig};
pub use recorder::Recorder;
pub use callfunnel_ai::text::SentenceSplitter;

/// What the carrier transport hands the engine (PCM16 mono 8 kHz audio, 20 ms frames).
#[derive(Debug, Clone, PartialEq)]
pub enum CarrierIn {
    Audio(Vec<i16>),
    Dtmf(char),
    Mark(String),
    Hangup(String),
}

/// What the engine asks the carrier transport to do.
#[derive(Debug, Clone, PartialEq)]
pub enum CarrierOut {
    Audio(Vec<i16>),
    Mark(String),
    Clear,
    /// End the media stream; the transport performs the call control (hang up or transfer).
    Close(CallEnd),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum CallEnd {
    CallerHungUp,
    AgentEnded { reason: String },
    Transferred { to: String, reason: String },
    Shutdown,
    Failed { error: String },
}

/// The providers a call runs on (local models or cloud adapters alike).
#[derive(Clone)]
pub struct Providers {
    pub vad: Arc<dyn VadFactory>,
    pub turn_detector: Option<Arc<dyn TurnDetector>>,
    pub stt: Arc<dyn SpeechToText>,
    pub brain: Arc<dyn Brain>,
    pub tts: Arc<dyn TextToSpeech>,
}

#[derive(Debug, Clone)]
pub struct CallSetup {
    pub call_id: String,
    pub context: CallContext,
    pub turn: TurnConfig,
    pub playout: PlayoutConfig,
    pub stt: SttConfig,
    pub tts: TtsConfig,
}

pub struct CarrierIo {
    pub inbound: mpsc::Receiver<CarrierIn>,
    pub outbound: mpsc::Sender<CarrierOut>,
}

/// Channel sizes: a few seconds of 20 ms frames at most.
pub(crate) const AUDIO_QUEUE: usize = 256;
pub(crate) const EVENT_QUEUE: usize = 64;

/// Runs one call to its end. Returns how it ended; its timeline is in `store`.
pub async fn run_call(
    setup: CallSetup,
    providers: Providers,
    io: CarrierIo,
    store: Arc<dyn TimelineStore>,
    shutdown: CancellationToken,
) -> CallEnd {
    let call_cancel = shutdown.child_token();
    let (recorder, writer) = Recorder::start(setup.call_id.clone(), store);
    let end = controller::Controller::run(setup, providers, io, recorder.clone(), call_cancel.clone()).await;
    call_cancel.cancel();
    recorder.record("call_ended", serde_json::to_value(&end).unwrap_or_default());
    drop(recorder);
    let _ = writer.await;
    end
}
