//! A call as an OpenTelemetry trace: one `call` span, one `turn` span per agent turn under it,
//! and under each turn a span per stage (`end_of_turn`, `stt`, `brain_first_token`,
//! `tts_first_audio`, `send`), timed from the turn's own timestamps.
//!
//! Only the OpenTelemetry API is used here: without an installed tracer provider (the server
//! installs one when `[telemetry] otlp_endpoint` is set) every call is a no-op. The call span
//! starts with the call and ends with it; turn spans are exported as their turns complete,
//! pointing at it. The trace id is in the timeline's `call_started` event, so a call's trace
//! can be found from the call.

use std::time::SystemTime;

use opentelemetry::global::BoxedSpan;
use opentelemetry::trace::{Span, SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};
use parking_lot::Mutex;
use tokio::time::Instant;

use super::latency::TurnTimes;

const SCOPE: &str = "callfunnel.media";

/// Wall-clock time of a monotonic instant (spans carry Unix times).
fn wall(at: Instant, now: Instant, now_wall: SystemTime) -> SystemTime {
    if at <= now { now_wall - now.duration_since(at) } else { now_wall + at.duration_since(now) }
}

pub struct CallTrace {
    call_id: String,
    turns: std::sync::atomic::AtomicU64,
    attrs: Vec<KeyValue>,
    span: Mutex<Option<BoxedSpan>>,
    parent: Context,
    started: SystemTime,
}

impl CallTrace {
    pub fn start(call_id: &str, tenant_id: &str, agent_id: &str) -> CallTrace {
        let tracer = global::tracer(SCOPE);
        let attrs = vec![KeyValue::new("call.id", call_id.to_string()), KeyValue::new("tenant.id", tenant_id.to_string()), KeyValue::new("agent.id", agent_id.to_string())];
        let started = SystemTime::now();
        let span = tracer.span_builder("call").with_kind(SpanKind::Server).with_start_time(started).with_attributes(attrs.clone()).start_with_context(&tracer, &Context::new());
        let parent = Context::new().with_remote_span_context(span.span_context().clone());
        CallTrace { call_id: call_id.to_string(), turns: Default::default(), attrs, span: Mutex::new(Some(span)), parent, started }
    }

    /// The trace id (32 hex digits) when the call is traced (a provider is installed and the
    /// call was sampled).
    pub fn trace_id(&self) -> Option<String> {
        let sc = self.parent.span().span_context().clone();
        (sc.is_valid() && sc.is_sampled()).then(|| sc.trace_id().to_string())
    }

    /// A complete turn: its span from the caller's speech end (or the turn's start, for a
    /// greeting) to the first byte sent, with a child span per stage.
    pub fn turn(&self, turn: u64, t: &TurnTimes) {
        let Some(first_byte) = t.first_byte else { return };
        self.turns.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tracer = global::tracer(SCOPE);
        let (now, now_wall) = (Instant::now(), SystemTime::now());
        // a turn's speech end is reckoned on the audio's frame clock, which a burst of frames
        // can put a little before the call's start: no span starts before its call
        let at = |i: Instant| wall(i, now, now_wall).max(self.started);
        let marks = [t.speech_end, t.turn_decided, t.transcript, t.first_token, t.first_audio, Some(first_byte)];
        let Some(start) = marks.iter().flatten().next().copied() else { return };
        let mut attrs = self.attrs.clone();
        attrs.push(KeyValue::new("turn", turn as i64));
        attrs.push(KeyValue::new("turn.latency_ms", first_byte.saturating_duration_since(start).as_secs_f64() * 1000.0));
        let mut span = tracer.span_builder("turn").with_kind(SpanKind::Internal).with_start_time(at(start)).with_attributes(attrs).start_with_context(&tracer, &self.parent);
        let cx = Context::new().with_remote_span_context(span.span_context().clone());
        let stages = ["end_of_turn", "stt", "brain_first_token", "tts_first_audio", "send"];
        for (i, name) in stages.iter().enumerate() {
            let (Some(a), Some(b)) = (marks[i], marks[i + 1]) else { continue };
            let mut s = tracer
                .span_builder(*name)
                .with_start_time(at(a))
                .with_attributes([KeyValue::new("call.id", self.call_id.clone()), KeyValue::new("turn", turn as i64)])
                .start_with_context(&tracer, &cx);
            s.end_with_timestamp(at(b));
        }
        span.end_with_timestamp(at(first_byte));
    }

    /// Ends the call span with how the call ended.
    pub fn end(&self, end: &str) {
        let Some(mut span) = self.span.lock().take() else { return };
        span.set_attribute(KeyValue::new("call.end", end.to_string()));
        span.set_attribute(KeyValue::new("call.turns", self.turns.load(std::sync::atomic::Ordering::Relaxed) as i64));
        span.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_times_keep_their_order() {
        let (now, w) = (Instant::now(), SystemTime::now());
        let before = wall(now - std::time::Duration::from_millis(250), now, w);
        assert_eq!(w.duration_since(before).unwrap().as_millis(), 250);
        assert_eq!(wall(now + std::time::Duration::from_millis(5), now, w).duration_since(w).unwrap().as_millis(), 5);
    }

    #[test]
    fn untraced_without_a_provider() {
        let t = CallTrace::start("CA1", "t", "a");
        assert_eq!(t.trace_id(), None);
        t.end("agent_ended");
    }
}
