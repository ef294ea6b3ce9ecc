//! Speech-to-text failover. The chain forwards audio to the current provider and keeps the
//! audio of the utterance not yet flushed; partial finals are held back and sent as one final
//! at the flush, so when a provider dies (stream closed, or no answer to `Finalize` in time)
//! the next one gets the whole utterance again and nothing is heard twice or lost.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{Breaker, count_failover, order};
use crate::{AiError, Result, SpeechToText, SttConfig, SttEvent, SttInput, SttStream};

/// Audio kept for replay: 30 s at 16 kHz at most (older audio is dropped).
const MAX_REPLAY: usize = 30 * 16_000;

/// An ordered chain of STT providers (cheap to clone; breakers are shared).
#[derive(Clone)]
pub struct SttChain(Arc<Inner>);

struct Inner {
    members: Vec<(Arc<dyn SpeechToText>, Breaker)>,
    /// No flushed final this long after `Finalize`: the provider is failing.
    finalize_timeout: Duration,
}

impl SttChain {
    pub fn new(members: Vec<Arc<dyn SpeechToText>>, finalize_timeout: Duration) -> Self {
        let members = members.into_iter().map(|m| { let b = Breaker::new(m.name()); (m, b) }).collect();
        SttChain(Arc::new(Inner { members, finalize_timeout }))
    }

    pub fn breaker(&self, i: usize) -> &Breaker {
        &self.0.members[i].1
    }
}

impl Inner {
    /// Opens a stream on the first provider that accepts, starting at `from` in `order`.
    async fn open_from(&self, order: &[usize], from: usize, config: &SttConfig) -> Option<(usize, usize, SttStream)> {
        for (k, &i) in order.iter().enumerate().skip(from) {
            let (p, b) = &self.members[i];
            match p.open(config.clone()).await {
                Ok(s) => return Some((k, i, s)),
                Err(e) => {
                    tracing::warn!(provider = p.name(), error = %e, "stt: open failed");
                    b.failure();
                }
            }
        }
        None
    }
}

#[async_trait]
impl SpeechToText for SttChain {
    fn name(&self) -> &'static str {
        self.0.members.first().map_or("stt-chain", |m| m.0.name())
    }

    async fn open(&self, config: SttConfig) -> Result<SttStream> {
        let breakers: Vec<&Breaker> = self.0.members.iter().map(|m| &m.1).collect();
        let order = order(&breakers);
        let Some((k, i, inner)) = self.0.open_from(&order, 0, &config).await else {
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
                        chain.members[i].1.success();
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
        let from = chain.members[i].0.name();
        chain.members[i].1.failure();
        let Some((nk, ni, next)) = chain.open_from(&order, k + 1, &config).await else {
            tracing::error!(provider = from, %why, "stt: no provider left");
            let _ = out.send(SttEvent::Warning(format!("speech-to-text failed ({why}) and no other provider is available"))).await;
            return;
        };
        tracing::warn!(provider = from, %why, "stt: provider failed mid-stream");
        count_failover("stt", from, chain.members[ni].0.name());
        let _ = out.send(SttEvent::Warning(format!("{from}: {why}; switched to {}", chain.members[ni].0.name()))).await;
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
