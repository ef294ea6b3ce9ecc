//! Failover: ordered provider chains per capability behind the same traits, with a circuit
//! breaker per provider so new calls skip one that keeps failing. A handshake failure, a
//! timeout, an error status or a dropped stream moves the call to the next provider mid-call:
//! STT replays the audio of the unfinished utterance, TTS re-sends the text not yet spoken,
//! a brain turn that failed before saying anything is asked of the next brain.

mod brain;
mod stt;
mod tts;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

pub use brain::{ApologyBrain, BrainChain};
pub use stt::SttChain;
pub use tts::TtsChain;

/// Logs and counts one failover (`capability`: `stt`, `tts`, `brain`, `anthropic`, ...) in
/// `callfunnel_provider_failovers_total`.
pub fn count_failover(capability: &str, from: &str, to: &str) {
    tracing::warn!(capability, from, to, "provider failover");
    callfunnel_metrics::PROVIDER_FAILOVERS.inc([capability, from, to]);
}

/// Failovers so far, keyed `capability:from->to` (for tests).
pub fn failover_counts() -> BTreeMap<String, u64> {
    callfunnel_metrics::PROVIDER_FAILOVERS.snapshot().into_iter().map(|([c, f, t], n)| (format!("{c}:{f}->{t}"), n)).collect()
}

/// A circuit breaker: after `threshold` consecutive failures the provider is skipped for
/// `cooldown`; then one call may try it (half-open) and a success closes it again.
pub struct Breaker {
    pub name: String,
    threshold: u32,
    cooldown: Duration,
    state: Mutex<BreakerState>,
}

#[derive(Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    pub fn new(name: impl Into<String>) -> Self {
        Self::with(name, 3, Duration::from_secs(30))
    }

    pub fn with(name: impl Into<String>, threshold: u32, cooldown: Duration) -> Self {
        Breaker { name: name.into(), threshold: threshold.max(1), cooldown, state: Mutex::new(BreakerState::default()) }
    }

    /// May a new call use this provider?
    pub fn allow(&self) -> bool {
        let mut s = self.state.lock();
        match s.open_until {
            Some(t) if Instant::now() < t => false,
            Some(_) => {
                // half-open: let this one through, and keep others out until it reports
                s.open_until = Some(Instant::now() + self.cooldown);
                true
            }
            None => true,
        }
    }

    pub fn is_open(&self) -> bool {
        self.state.lock().open_until.is_some_and(|t| Instant::now() < t)
    }

    pub fn success(&self) {
        let mut s = self.state.lock();
        s.failures = 0;
        s.open_until = None;
    }

    /// A failure while the provider was in use (counted as `in_call`).
    pub fn failure(&self) {
        self.failed("in_call");
    }

    /// A failure of `kind` (`open`, `in_call`), counted in `callfunnel_provider_errors_total`.
    fn failed(&self, kind: &str) {
        callfunnel_metrics::PROVIDER_ERRORS.inc([&self.name, kind]);
        let mut s = self.state.lock();
        s.failures += 1;
        if s.failures >= self.threshold {
            if s.open_until.is_none() {
                tracing::warn!(provider = %self.name, failures = s.failures, cooldown_s = self.cooldown.as_secs(), "circuit open: new calls skip this provider");
            }
            s.open_until = Some(Instant::now() + self.cooldown);
        }
    }
}

/// A provider with a name (for logs, breakers and failover counts).
pub(crate) trait Named {
    fn provider_name(&self) -> &'static str;
}

impl Named for dyn crate::SpeechToText {
    fn provider_name(&self) -> &'static str {
        self.name()
    }
}

impl Named for dyn crate::TextToSpeech {
    fn provider_name(&self) -> &'static str {
        self.name()
    }
}

/// The members of a chain, each with its circuit breaker.
pub(crate) struct Members<P: ?Sized>(Vec<(Arc<P>, Breaker)>);

impl<P: ?Sized + Named> Members<P> {
    fn new(members: Vec<Arc<P>>) -> Self {
        Members(members.into_iter().map(|m| { let b = Breaker::new(m.provider_name()); (m, b) }).collect())
    }

    fn name(&self, i: usize) -> &'static str {
        self.0[i].0.provider_name()
    }

    fn first_name(&self, default: &'static str) -> &'static str {
        self.0.first().map_or(default, |m| m.0.provider_name())
    }

    fn breaker(&self, i: usize) -> &Breaker {
        &self.0[i].1
    }

    /// The order to try the members in for a new stream.
    fn order(&self) -> Vec<usize> {
        order(&self.0.iter().map(|m| &m.1).collect::<Vec<_>>())
    }

    /// Opens a stream on the first member that accepts, from position `from` of `order`;
    /// returns (position, member, stream). Members that fail to open count a failure.
    async fn open_from<S, F, Fut>(&self, order: &[usize], from: usize, capability: &str, open: F) -> Option<(usize, usize, S)>
    where
        F: Fn(Arc<P>) -> Fut,
        Fut: std::future::Future<Output = crate::Result<S>>,
    {
        for (k, &i) in order.iter().enumerate().skip(from) {
            let (p, b) = &self.0[i];
            match open(p.clone()).await {
                Ok(s) => return Some((k, i, s)),
                Err(e) => {
                    tracing::warn!(capability, provider = p.provider_name(), error = %e, "provider failed to open a stream");
                    b.failed("open");
                }
            }
        }
        None
    }
}

/// The order to try members in: allowed ones first (in configured order), then the rest (a
/// call still gets a provider when every breaker is open).
fn order(breakers: &[&Breaker]) -> Vec<usize> {
    let mut allowed: Vec<usize> = Vec::new();
    let mut rest = Vec::new();
    for (i, b) in breakers.iter().enumerate() {
        if b.allow() { allowed.push(i) } else { rest.push(i) }
    }
    allowed.extend(rest);
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_half_opens_and_closes() {
        let b = Breaker::with("x", 2, Duration::from_secs(10));
        assert!(b.allow());
        b.failure();
        assert!(b.allow(), "one failure is not enough");
        b.failure();
        assert!(!b.allow() && b.is_open());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(b.allow(), "half-open trial");
        assert!(!b.allow(), "only one trial at a time");
        b.success();
        assert!(b.allow() && !b.is_open());
    }

    #[test]
    fn failures_and_failovers_are_counted_with_labels() {
        let b = Breaker::new("metrics-test");
        b.failure();
        b.failure();
        b.failed("open");
        let errors = |kind| callfunnel_metrics::PROVIDER_ERRORS.get(["metrics-test", kind]);
        assert_eq!((errors("in_call"), errors("open")), (2, 1));
        count_failover("stt", "metrics-a", "metrics-b");
        assert_eq!(callfunnel_metrics::PROVIDER_FAILOVERS.get(["stt", "metrics-a", "metrics-b"]), 1);
        assert_eq!(failover_counts()["stt:metrics-a->metrics-b"], 1);
    }

    #[test]
    fn order_puts_open_breakers_last() {
        let a = Breaker::with("a", 1, Duration::from_secs(60));
        let b = Breaker::new("b");
        a.failure();
        assert_eq!(order(&[&a, &b]), vec![1, 0]);
    }
}
