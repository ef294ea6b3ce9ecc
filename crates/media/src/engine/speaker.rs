//! One agent turn: brain events → TTS → playout. Cancelled (barge-in) through its token,
//! which drops the brain and TTS streams, so the providers stop at once.

use std::sync::Arc;

use callfunnel_ai::{BrainEvent, TextToSpeech, TtsConfig, TtsEvent, TtsInput};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::playout::PlayoutCmd;

#[derive(Debug, Clone, PartialEq)]
pub enum SpeakerEvent {
    FirstToken { turn: u64, at: Instant },
    FirstAudio { turn: u64, at: Instant },
    /// Intent, tool call or call action from the brain.
    Brain { turn: u64, event: BrainEvent },
    /// All of the turn's audio is queued for playout; `text` is the whole reply.
    Synthesized { turn: u64, text: String },
    Failed { turn: u64, error: String },
}

pub struct Speaker {
    pub turn: u64,
    pub tts: Arc<dyn TextToSpeech>,
    pub tts_config: TtsConfig,
    pub playout: mpsc::Sender<PlayoutCmd>,
    pub events: mpsc::Sender<SpeakerEvent>,
    pub meter: Arc<super::usage::UsageMeter>,
}

impl Speaker {
    pub async fn run(self, brain: mpsc::Receiver<BrainEvent>, cancel: CancellationToken) {
        tokio::select! {
            _ = cancel.cancelled() => {}
            r = self.speak(brain) => if let Err(error) = r {
                let _ = self.events.send(SpeakerEvent::Failed { turn: self.turn, error }).await;
            }
        }
    }

    async fn speak(&self, mut brain: mpsc::Receiver<BrainEvent>) -> Result<(), String> {
        let turn = self.turn;
        let tts = self.tts.open(self.tts_config.clone()).await.map_err(|e| e.to_string())?;
        let (tts_in, mut tts_out) = (tts.input, tts.events);
        let mut text = String::new();
        let (mut brain_open, mut first_token, mut first_audio) = (true, true, true);
        loop {
            tokio::select! {
                ev = brain.recv(), if brain_open => match ev {
                    Some(BrainEvent::Text(t)) => {
                        if first_token {
                            first_token = false;
                            let _ = self.events.send(SpeakerEvent::FirstToken { turn, at: Instant::now() }).await;
                        }
                        // pieces carry their own spacing (LLM tokens, rule-book phrases)
                        text.push_str(&t);
                        self.meter.tts_text(&t);
                        tts_in.send(TtsInput::Text(t)).await.map_err(|_| "TTS stream closed".to_string())?;
                    }
                    Some(event) => {
                        // metered here: an interrupted turn's tokens are billed too
                        if let BrainEvent::Usage(u) = &event {
                            self.meter.llm(u);
                        }
                        let _ = self.events.send(SpeakerEvent::Brain { turn, event }).await;
                    }
                    None => {
                        brain_open = false;
                        tts_in.send(TtsInput::Flush).await.map_err(|_| "TTS stream closed".to_string())?;
                    }
                },
                ev = tts_out.recv() => match ev {
                    Some(TtsEvent::Audio(chunk)) => {
                        if first_audio {
                            first_audio = false;
                            let _ = self.events.send(SpeakerEvent::FirstAudio { turn, at: Instant::now() }).await;
                        }
                        self.playout.send(PlayoutCmd::Audio { turn, text: chunk.text, pcm: chunk.pcm }).await.map_err(|_| "playout closed".to_string())?;
                    }
                    Some(TtsEvent::Done) if !brain_open => break,
                    Some(TtsEvent::Done) => {}
                    None => return Err("TTS stream ended early".into()),
                },
            }
        }
        self.playout.send(PlayoutCmd::EndTurn { turn }).await.map_err(|_| "playout closed".to_string())?;
        let _ = self.events.send(SpeakerEvent::Synthesized { turn, text: text.trim().to_string() }).await;
        Ok(())
    }
}
