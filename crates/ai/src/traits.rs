//! The capability traits. Cloud adapters (Deepgram, Claude, Cartesia, Sarvam, Voyage) implement
//! the same traits as the local models, so the engine never knows which one it runs.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::Result;

// ---------------------------------------------------------------- VAD

/// A per-call voice activity detector. Stateful (recurrent state, context samples), cheap to
/// create: the model weights are shared by all calls through the [`VadFactory`].
#[async_trait]
pub trait Vad: Send {
    /// Sample rate the detector runs at (8000 or 16000).
    fn sample_rate(&self) -> u32;
    /// Samples per analysis frame at that rate (256 at 8 kHz, 512 at 16 kHz for Silero).
    fn frame_len(&self) -> usize;
    /// Speech probability (0..1) of one frame of exactly `frame_len` samples in [-1, 1].
    fn process(&mut self, frame: &[f32]) -> Result<f32>;
    /// The same, awaited: a model shared by many calls may batch their frames. Calls use this.
    async fn score(&mut self, frame: &[f32]) -> Result<f32> {
        self.process(frame)
    }
    /// Forget all state (new stream).
    fn reset(&mut self);
}

pub trait VadFactory: Send + Sync {
    /// A new detector running natively at `sample_rate` (8000 or 16000).
    fn create(&self, sample_rate: u32) -> Result<Box<dyn Vad>>;
}

// ---------------------------------------------------------------- end of turn

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TurnPrediction {
    /// The caller has finished their turn.
    pub complete: bool,
    /// Model probability that the turn is complete.
    pub probability: f32,
}

/// Decides whether a pause ends the caller's turn (semantic/acoustic end-of-turn model).
#[async_trait]
pub trait TurnDetector: Send + Sync {
    /// `pcm_8k`: the caller's current turn at the telephony rate, 8 kHz mono PCM16 (the model
    /// looks at the last 8 s at most).
    async fn predict(&self, pcm_8k: Vec<i16>) -> Result<TurnPrediction>;
}

// ---------------------------------------------------------------- speech to text

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SttConfig {
    /// BCP-47 language, e.g. `en-US`, `hi-IN`.
    pub language: String,
    /// Sample rate of the PCM16 audio the engine sends.
    pub sample_rate: u32,
}

#[derive(Debug, Clone)]
pub enum SttInput {
    /// Caller audio, PCM16 mono at `SttConfig::sample_rate`.
    Audio(Vec<i16>),
    /// Speech paused and the turn may be about to end: a provider may start transcribing
    /// early (optional; more audio afterwards means the caller went on).
    Prepare,
    /// The turn detector ended the turn: transcribe everything sent so far now.
    Finalize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SttEvent {
    /// A partial hypothesis that may still change.
    Interim { text: String },
    /// Final text for a stretch of audio. `flushed` is true on the result that answers a
    /// [`SttInput::Finalize`] (all audio up to it is now transcribed).
    Final { text: String, confidence: f32, flushed: bool },
    /// The provider's own speech detection fired (cloud STT `vad_events`).
    SpeechStarted,
    /// A recoverable provider error; the stream goes on.
    Warning(String),
}

/// One live recognition stream per call.
pub struct SttStream {
    pub input: mpsc::Sender<SttInput>,
    pub events: mpsc::Receiver<SttEvent>,
}

#[async_trait]
pub trait SpeechToText: Send + Sync {
    fn name(&self) -> &'static str;
    async fn open(&self, config: SttConfig) -> Result<SttStream>;
}

// ---------------------------------------------------------------- brain (LLM / rule-book)

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Agent,
}

/// One message of the conversation as the caller experienced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub text: String,
    /// The agent was cut off: `text` holds only what the caller heard.
    #[serde(default)]
    pub interrupted: bool,
}

/// What starts an agent turn.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnInput {
    /// The call was answered: greet.
    CallStarted,
    /// The caller finished a turn with this transcript.
    UserSaid(String),
    /// The caller pressed keys.
    Dtmf(String),
    /// The caller has said nothing for a while.
    Silence,
}

/// Call control the brain asks for; the engine performs it after the turn's audio has played.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CallAction {
    /// Put the caller through to `to` (E.164 number or SIP URI). A warm transfer briefs the
    /// human first with `summary` (or a summary of the call so far).
    Transfer {
        to: String,
        reason: String,
        #[serde(default)]
        warm: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
    },
    EndCall { reason: String },
    /// Press keys (navigate an IVR): in-band DTMF tones after the turn's speech.
    SendDtmf { digits: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum BrainEvent {
    /// The next piece of the agent's reply (a token, a word or a sentence).
    Text(String),
    /// A tool call finished (for the timeline).
    ToolCalled { name: String, ok: bool, detail: String },
    /// Call control to perform once this turn has been spoken.
    Action(CallAction),
    /// A recognised intent (for the timeline / analytics).
    Intent { name: String, score: f32 },
    /// What a provider billed for this turn (one event per provider request).
    Usage(ProviderUsage),
    /// The turn failed (provider down, invalid output). Text already sent stands; the channel
    /// closes after this event.
    Failed(String),
}

/// Units a provider billed: LLM tokens (cache reads and writes counted apart).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderUsage {
    pub provider: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation_input_tokens: u64,
}

/// Facts about the call a brain may use.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub call_id: String,
    pub tenant_id: String,
    pub agent_id: String,
    pub caller: String,
    pub language: String,
}

#[async_trait]
pub trait Brain: Send + Sync {
    fn name(&self) -> &'static str;
    /// A per-call session (holds dialogue state).
    async fn session(&self, ctx: CallContext) -> Result<Box<dyn BrainSession>>;
}

#[async_trait]
pub trait BrainSession: Send {
    /// Start an agent turn. `history` is the conversation as heard (the latest user message
    /// included). Events stream on the returned channel, which closes when the turn is done;
    /// dropping the receiver cancels the turn.
    async fn respond(&mut self, input: TurnInput, history: &[Message]) -> Result<mpsc::Receiver<BrainEvent>>;
}

// ---------------------------------------------------------------- text to speech

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TtsConfig {
    pub voice: String,
    pub language: String,
    /// Output sample rate the engine wants (PCM16 mono), e.g. 8000 for telephony.
    pub sample_rate: u32,
}

#[derive(Debug, Clone)]
pub enum TtsInput {
    /// More text of the agent's reply (any granularity: the provider aggregates sentences).
    Text(String),
    /// No more text this turn: synthesize what is buffered.
    Flush,
}

/// Audio for part of the reply. `text` is set on the first chunk of each spoken segment
/// (a sentence or word) and names that segment, so the engine can tell which words were heard.
#[derive(Debug, Clone)]
pub struct TtsChunk {
    pub pcm: Vec<i16>,
    pub text: Option<String>,
}

#[derive(Debug, Clone)]
pub enum TtsEvent {
    Audio(TtsChunk),
    /// Everything flushed has been synthesized.
    Done,
}

/// One synthesis context per agent turn (a Cartesia `context_id`). Dropping it cancels.
pub struct TtsStream {
    pub input: mpsc::Sender<TtsInput>,
    pub events: mpsc::Receiver<TtsEvent>,
}

#[async_trait]
pub trait TextToSpeech: Send + Sync {
    fn name(&self) -> &'static str;
    async fn open(&self, config: TtsConfig) -> Result<TtsStream>;
}

// ---------------------------------------------------------------- embeddings

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedKind {
    Query,
    Document,
}

#[async_trait]
pub trait Embedder: Send + Sync {
    fn name(&self) -> &'static str;
    fn dim(&self) -> usize;
    /// L2-normalised embeddings, one per text.
    async fn embed(&self, texts: Vec<String>, kind: EmbedKind) -> Result<Vec<Vec<f32>>>;
}
