//! Text-to-speech failover. The chain remembers the turn's text and which segment is being
//! voiced (from the chunk labels); when a provider fails mid-turn (stream closed before
//! `Done`, or no audio in time) the next provider gets the text from the start of the
//! unfinished segment, so the caller may hear a sentence restart but never loses words.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Breaker, Members, count_failover};
use crate::{AiError, Result, TextToSpeech, TtsConfig, TtsEvent, TtsInput, TtsStream};

#[derive(Clone)]
pub struct TtsChain(Arc<Inner>);

struct Inner {
    members: Members<dyn TextToSpeech>,
    /// Text was sent but no audio came this long after: the provider is failing.
    first_audio_timeout: Duration,
}

impl TtsChain {
    pub fn new(members: Vec<Arc<dyn TextToSpeech>>, first_audio_timeout: Duration) -> Self {
        TtsChain(Arc::new(Inner { members: Members::new(members), first_audio_timeout }))
    }

    pub fn breaker(&self, i: usize) -> &Breaker {
        self.0.members.breaker(i)
    }
}

#[async_trait]
impl TextToSpeech for TtsChain {
    fn name(&self) -> &'static str {
        self.0.members.first_name("tts-chain")
    }

    async fn open(&self, config: TtsConfig) -> Result<TtsStream> {
        let order = self.0.members.order();
        let Some((k, i, inner)) = self.0.members.open_from(&order, 0, "tts", |p| { let c = config.clone(); async move { p.open(c).await } }).await else {
            return Err(AiError::Provider { provider: "tts", message: "every text-to-speech provider failed to open".into() });
        };
        let (in_tx, in_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::channel(64);
        tokio::spawn(supervise(self.0.clone(), order, k, i, inner, config, in_rx, ev_tx));
        Ok(TtsStream { input: in_tx, events: ev_rx })
    }
}

/// The turn's text and how far it has been voiced.
#[derive(Default)]
struct Script {
    text: String,
    /// Byte offset where the segment being voiced starts (text before it is fully spoken).
    segment_start: usize,
    /// Search position for the next label.
    cursor: usize,
}

impl Script {
    /// A chunk labelled `label` started: the previous segment is complete.
    fn labelled(&mut self, label: &str) {
        let l = label.trim();
        if l.is_empty() {
            return;
        }
        if let Some(pos) = self.text[self.cursor..].find(l) {
            self.segment_start = self.cursor + pos;
            self.cursor = self.segment_start + l.len();
        }
    }

    fn unspoken(&self) -> &str {
        &self.text[self.segment_start..]
    }
}

#[allow(clippy::too_many_arguments)]
async fn supervise(chain: Arc<Inner>, order: Vec<usize>, mut k: usize, mut i: usize, mut inner: TtsStream, config: TtsConfig, mut input: mpsc::Receiver<TtsInput>, out: mpsc::Sender<TtsEvent>) {
    let mut script = Script::default();
    let mut flushed = false;
    let mut input_open = true;
    // audio expected by this time (set when text is sent and no audio has come since)
    let mut audio_deadline: Option<Instant> = None;
    loop {
        let deadline = audio_deadline;
        let failed: Option<String> = tokio::select! {
            msg = input.recv(), if input_open => match msg {
                None if !flushed => return, // the turn was cancelled: dropping the stream cancels it
                None => { input_open = false; None }
                Some(m) => {
                    match &m {
                        TtsInput::Text(t) => script.text.push_str(t),
                        TtsInput::Flush => flushed = true,
                    }
                    if audio_deadline.is_none() { audio_deadline = Some(Instant::now() + chain.first_audio_timeout); }
                    inner.input.send(m).await.err().map(|_| "input closed".to_string())
                }
            },
            _ = out.closed() => return,
            ev = inner.events.recv() => match ev {
                None => Some("stream closed before done".into()),
                Some(TtsEvent::Audio(chunk)) => {
                    audio_deadline = None;
                    if let Some(l) = &chunk.text { script.labelled(l); }
                    if out.send(TtsEvent::Audio(chunk)).await.is_err() { return; }
                    None
                }
                Some(TtsEvent::Done) => {
                    chain.members.breaker(i).success();
                    audio_deadline = None;
                    if out.send(TtsEvent::Done).await.is_err() || flushed { return; } // the turn is complete
                    None
                }
            },
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                Some("no audio in time".into())
            }
        };
        let Some(why) = failed else { continue };
        if out.is_closed() {
            return;
        }
        let from = chain.members.name(i);
        chain.members.breaker(i).failure();
        let Some((nk, ni, next)) = chain.members.open_from(&order, k + 1, "tts", |p| { let c = config.clone(); async move { p.open(c).await } }).await else {
            tracing::error!(provider = from, %why, "tts: no provider left");
            return; // closing the events channel before Done tells the speaker
        };
        tracing::warn!(provider = from, %why, "tts: provider failed mid-stream");
        count_failover("tts", from, chain.members.name(ni));
        (k, i, inner) = (nk, ni, next);
        script.cursor = script.segment_start;
        let rest = script.unspoken().to_string();
        script.text.truncate(script.segment_start);
        script.text.push_str(&rest);
        if !rest.trim().is_empty() {
            let _ = inner.input.send(TtsInput::Text(rest)).await;
            audio_deadline = Some(Instant::now() + chain.first_audio_timeout);
        }
        if flushed {
            let _ = inner.input.send(TtsInput::Flush).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_tracks_the_segment_in_progress() {
        let mut s = Script { text: "Hello there. We open at nine. Bye.".into(), ..Default::default() };
        assert_eq!(s.unspoken(), "Hello there. We open at nine. Bye.");
        s.labelled("Hello there.");
        s.labelled(" We open at nine. ");
        assert_eq!(s.unspoken(), "We open at nine. Bye.");
        s.labelled("not in the text");
        assert_eq!(s.unspoken(), "We open at nine. Bye.");
    }
}
