//! The per-call engine: small tasks joined by bounded channels.
//!
//! ```text
//! carrier ─► listener (VAD → turn-taking → gated audio) ─► STT ─┐
//!               │ marks ─► playout ◄─ speaker (brain → TTS) ◄───┤
//!               └ speech / turn / DTMF events ─────────► controller (history, barge-in)
//! playout ─► carrier (40 ms messages by default, marks, clear)
//! ```
//! One task tree per call under a cancellation token: when the controller returns, every
//! other task of the call ends with it.

pub mod config;
pub mod heard;
pub mod latency;
pub mod playout;
pub mod screening;
pub mod trace;
pub mod turn;
pub mod usage;

mod controller;
mod listener;
mod recorder;
mod speaker;
mod tap;

use std::sync::Arc;

use callfunnel_ai::{Brain, CallContext, SpeechToText, SttConfig, TextToSpeech, TtsConfig, TurnDetector, VadFactory};
use callfunnel_data::TimelineStore;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::{PlayoutConfig, TurnConfig};
pub use screening::{ScreeningConfig, VoicemailAction};
pub use recorder::Recorder;
pub use usage::{CallUsage, UsageMeter};
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
    /// The agent's audio pauses here: a carrier that sends audio in large chunks sends its
    /// partial chunk now instead of waiting for more.
    Flush,
    /// End the media stream; the transport performs the call control (hang up or transfer).
    Close(CallEnd),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum CallEnd {
    CallerHungUp,
    AgentEnded { reason: String },
    /// Put through to `to`; a warm transfer carries the `brief` the human hears first.
    Transferred {
        to: String,
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        brief: Option<String>,
    },
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
    /// Write the dual-channel recording (caller left, agent right) here.
    pub recording: Option<std::path::PathBuf>,
    /// Outbound call: find out whether a person or a voicemail answered before greeting.
    pub screening: Option<ScreeningConfig>,
}

impl CallSetup {
    /// A setup with the default turn and playout tuning, no recording and no screening.
    pub fn new(call_id: impl Into<String>, context: CallContext, stt: SttConfig, tts: TtsConfig) -> Self {
        CallSetup { call_id: call_id.into(), context, turn: TurnConfig::default(), playout: PlayoutConfig::default(), stt, tts, recording: None, screening: None }
    }
}

/// Commands from outside the call (the API, carrier callbacks).
#[derive(Debug, Clone, PartialEq)]
pub enum CallCommand {
    /// End the call now.
    Hangup { reason: String },
    /// The carrier's answering-machine detection result (Twilio `AnsweredBy`).
    AnsweredBy(String),
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
    let (_keep, commands) = mpsc::channel(1);
    run_call_with(setup, providers, io, commands, store, shutdown).await
}

/// As [`run_call`], taking [`CallCommand`]s from outside while the call runs.
pub async fn run_call_with(
    setup: CallSetup,
    providers: Providers,
    io: CarrierIo,
    commands: mpsc::Receiver<CallCommand>,
    store: Arc<dyn TimelineStore>,
    shutdown: CancellationToken,
) -> CallEnd {
    run_call_metered(setup, providers, io, commands, store, shutdown).await.0
}

/// As [`run_call_with`], also returning what the call used (for billing). The totals are in
/// the timeline too (`call_usage`).
pub async fn run_call_metered(
    setup: CallSetup,
    providers: Providers,
    io: CarrierIo,
    commands: mpsc::Receiver<CallCommand>,
    store: Arc<dyn TimelineStore>,
    shutdown: CancellationToken,
) -> (CallEnd, CallUsage) {
    let call_cancel = shutdown.child_token();
    let meter = Arc::new(UsageMeter::default());
    let (stt_name, tts_name) = (providers.stt.name(), providers.tts.name());
    let (recorder, writer) = Recorder::start(setup.context.tenant_id.clone(), setup.call_id.clone(), store);
    let tap = setup.recording.clone().and_then(|path| tap::Tap::create(path, recorder.clone())).map(Arc::new);
    let trace = Arc::new(trace::CallTrace::start(&setup.call_id, &setup.context.tenant_id, &setup.context.agent_id));
    let end = controller::Controller::run(setup, providers, io, commands, recorder.clone(), meter.clone(), trace.clone(), tap.clone(), call_cancel.clone()).await;
    call_cancel.cancel();
    if let Some(tap) = tap {
        // Finishing the file ends with an fsync, which a busy disk can hold up for seconds:
        // wait for it only so long, and let it record `recording_saved` later if it must.
        let finishing = tokio::spawn(async move { tap.finish().await });
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), finishing).await;
    }
    let usage = meter.totals(stt_name, tts_name);
    recorder.record("call_usage", serde_json::to_value(&usage).unwrap_or_default());
    let ended = serde_json::to_value(&end).unwrap_or_default();
    trace.end(ended["end"].as_str().unwrap_or("unknown"));
    recorder.record("call_ended", ended);
    drop(recorder);
    let _ = writer.await;
    (end, usage)
}
