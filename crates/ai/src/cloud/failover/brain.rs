//! Brain failover: a turn whose brain fails before saying anything (an error at `respond`, or
//! `Failed` before the first text) is asked of the next brain in the chain, with the same
//! input and history. A brain that already spoke finishes the turn as it can (the Claude brain
//! continues on its fallback model itself).

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{Mutex, mpsc};

use super::{Breaker, count_failover, order};
use crate::{AiError, Brain, BrainEvent, BrainSession, CallContext, Message, Result, TurnInput};

#[derive(Clone)]
pub struct BrainChain(Arc<Vec<(Arc<dyn Brain>, Breaker)>>);

impl BrainChain {
    pub fn new(members: Vec<Arc<dyn Brain>>) -> Self {
        BrainChain(Arc::new(members.into_iter().map(|m| { let b = Breaker::new(m.name()); (m, b) }).collect()))
    }
}

#[async_trait]
impl Brain for BrainChain {
    fn name(&self) -> &'static str {
        self.0.first().map_or("brain-chain", |m| m.0.name())
    }

    async fn session(&self, ctx: CallContext) -> Result<Box<dyn BrainSession>> {
        let mut sessions = Vec::with_capacity(self.0.len());
        for (b, _) in self.0.iter() {
            // a brain that cannot start a session is skipped for this call
            sessions.push(match b.session(ctx.clone()).await {
                Ok(s) => Some(Arc::new(Mutex::new(s))),
                Err(e) => {
                    tracing::warn!(brain = b.name(), error = %e, "brain session failed to start");
                    None
                }
            });
        }
        if sessions.iter().all(Option::is_none) {
            return Err(AiError::Provider { provider: "brain", message: "no brain could start a session".into() });
        }
        Ok(Box::new(ChainSession { chain: self.clone(), sessions }))
    }
}

type Shared = Arc<Mutex<Box<dyn BrainSession>>>;

struct ChainSession {
    chain: BrainChain,
    sessions: Vec<Option<Shared>>,
}

#[async_trait]
impl BrainSession for ChainSession {
    async fn respond(&mut self, input: TurnInput, history: &[Message]) -> Result<mpsc::Receiver<BrainEvent>> {
        let breakers: Vec<&Breaker> = self.chain.0.iter().map(|m| &m.1).collect();
        let order: Vec<usize> = order(&breakers).into_iter().filter(|&i| self.sessions[i].is_some()).collect();
        let (tx, rx) = mpsc::channel(64);
        let members: Vec<(usize, Shared)> = order.iter().filter_map(|&i| self.sessions[i].clone().map(|s| (i, s))).collect();
        let chain = self.chain.clone();
        let history = history.to_vec();
        tokio::spawn(async move {
            let mut last_error = String::from("no brain available");
            for (n, (i, session)) in members.iter().enumerate() {
                if n > 0 {
                    count_failover("brain", chain.0[members[n - 1].0].0.name(), chain.0[*i].0.name());
                }
                let started = session.lock().await.respond(input.clone(), &history).await;
                let mut inner = match started {
                    Ok(r) => r,
                    Err(e) => {
                        chain.0[*i].1.failure();
                        last_error = e.to_string();
                        continue;
                    }
                };
                let mut spoke = false;
                let mut failed = None;
                loop {
                    tokio::select! {
                        _ = tx.closed() => return, // cancelled: dropping `inner` cancels the brain
                        ev = inner.recv() => match ev {
                            None => break,
                            Some(BrainEvent::Failed(e)) if !spoke => { failed = Some(e); break; }
                            Some(ev) => {
                                spoke |= matches!(ev, BrainEvent::Text(_));
                                if tx.send(ev).await.is_err() { return; }
                            }
                        }
                    }
                }
                match failed {
                    None => {
                        chain.0[*i].1.success();
                        return;
                    }
                    Some(e) => {
                        chain.0[*i].1.failure();
                        last_error = e;
                    }
                }
            }
            let _ = tx.send(BrainEvent::Failed(last_error)).await;
        });
        Ok(rx)
    }
}

/// The last link of an LLM chain: when every model is down, say this (and keep the call) rather
/// than go silent.
pub struct ApologyBrain(pub String);

#[async_trait]
impl Brain for ApologyBrain {
    fn name(&self) -> &'static str {
        "apology"
    }

    async fn session(&self, _ctx: CallContext) -> Result<Box<dyn BrainSession>> {
        Ok(Box::new(ApologySession(self.0.clone())))
    }
}

struct ApologySession(String);

#[async_trait]
impl BrainSession for ApologySession {
    async fn respond(&mut self, _input: TurnInput, _history: &[Message]) -> Result<mpsc::Receiver<BrainEvent>> {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.send(BrainEvent::Text(self.0.clone())).await;
        Ok(rx)
    }
}
