//! Speech-to-text failover. The chain forwards audio to the current provider and keeps the
//! audio of the utterance not yet flushed; partial finals are held back and sent as one final
//! at the flush, so when a provider dies (stream closed, or no answer to `Finalize` in time)
//! the next one gets the whole utterance again and nothing is heard twice or lost.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{Breaker, Members, count_failover};
use crate::{AiError, Result, SpeechToText, SttConfig, SttEvent, SttInput, SttStream};

/// Audio kept for replay: 30 s at 16 kHz at most (older audio is dropped).
const MAX_REPLAY: usize = 30 * 16_000;

/// An ordered chain of STT providers (cheap to clone; breakers are shared).
#[derive(Clone)]
pub struct SttChain(Arc<Inner>);

struct Inner {
    members: Members<dyn SpeechToText>,
    /// No flushed final this long after `Finalize`: the provider is failing.
    finalize_timeout: Duration,
}

impl SttChain {
    pub fn new(members: Vec<Arc<dyn SpeechToText>>, finalize_timeout: Duration) -> Self {
        SttChain(Arc::new(Inner { members: Members::new(members), finalize_timeout }))
    }

    pub fn breaker(&self, i: usize) -> &Breaker {
        self.0.members.breaker(i)
    }
}

#[async_trait]
impl SpeechToText for SttChain {
    fn name(&self) -> &'static str {
        self.0.members.first_name("stt-chain")
    }

    async fn open(&self, config: SttConfig) -> Result<SttStream> {
        let order = self.0.members.order();
        let Some((k, i, inner)) = self.0.members.open_from(&order, 0, "stt", |p| { let c = config.clone(); async move { p.open(c).await } }).await else {
            return Err(AiError::Provider { provider: "stt", message: "every speech-to-text provider failed to open".into() });
        };
        let (in_tx, in_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::channel(64);
        tokio::spawn(supervise(self.0.clone(), order, k, i, inner, config, in_rx, ev_tx));
        Ok(SttStream { input: in_tx, events: ev_rx })
    }
}

#[allow(clippy::too_many_arguments)]
async fn supervise(chain: Arc<Inner>, order: Vec<usize>, mut k: usize, mut i: usize, mut inner: SttStream, config: SttConfig, mut input: mpsc::Receiver<SttInput>, out: mpsc::Sender<SttEvent>) {
    let mut replay: Vec<i16> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    let mut finalize_deadline: Option<tokio::time::Instant> = None;
    let mut input_open = true;
    loop {
        let deadline = finalize_deadline;
        let failed: Option<String> = tokio::select! {
            msg = input.recv(), if input_open => match msg {
                None => { input_open = false; drop(std::mem::replace(&mut inner.input, mpsc::channel(1).0)); None }
                Some(m) => {
                    match &m {
                        SttInput::Audio(a) => {
                            replay.extend_from_slice(a);
                            if replay.len() > MAX_REPLAY { replay.drain(..replay.len() - MAX_REPLAY); }
                        }
                        SttInput::Finalize => if finalize_deadline.is_none() {
                            finalize_deadline = Some(tokio::time::Instant::now() + chain.finalize_timeout);
                        },
                        SttInput::Prepare => {}
                    }
                    inner.input.send(m).await.err().map(|_| "input closed".to_string())
                }
            },
            _ = out.closed() => return,
            ev = inner.events.recv() => match ev {
                None if !input_open => return, // normal end after our input closed
                None => Some("stream closed".into()),
                Some(SttEvent::Final { text, confidence, flushed }) => {
                    if !text.trim().is_empty() { parts.push(text.trim().to_string()); }
                    if flushed {
                        chain.members.breaker(i).success();
                        finalize_deadline = None;
                        replay.clear();
                        let text = std::mem::take(&mut parts).join(" ");
                        if out.send(SttEvent::Final { text, confidence, flushed: true }).await.is_err() { return; }
                    }
                    None
                }
                Some(e) => { if out.send(e).await.is_err() { return; } None }
            },
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                Some("no transcript after Finalize".into())
            }
        };
        let Some(why) = failed else { continue };
        let from = chain.members.name(i);
        chain.members.breaker(i).failure();
        let Some((nk, ni, next)) = chain.members.open_from(&order, k + 1, "stt", |p| { let c = config.clone(); async move { p.open(c).await } }).await else {
            tracing::error!(provider = from, %why, "stt: no provider left");
            let _ = out.send(SttEvent::Warning(format!("speech-to-text failed ({why}) and no other provider is available"))).await;
            return;
        };
        tracing::warn!(provider = from, %why, "stt: provider failed mid-stream");
        count_failover("stt", from, chain.members.name(ni));
        let _ = out.send(SttEvent::Warning(format!("{from}: {why}; switched to {}", chain.members.name(ni)))).await;
        (k, i, inner) = (nk, ni, next);
        parts.clear();
        if !replay.is_empty() && inner.input.send(SttInput::Audio(replay.clone())).await.is_err() {
            continue;
        }
        if finalize_deadline.is_some() {
            finalize_deadline = Some(tokio::time::Instant::now() + chain.finalize_timeout);
            let _ = inner.input.send(SttInput::Finalize).await;
        }
        if !input_open {
            drop(std::mem::replace(&mut inner.input, mpsc::channel(1).0));
        }
    }
}
