//! Fault injection: the next N requests or connections get a fault. Driven in-process through
//! [`Faults`] or over HTTP: `POST /__sim/faults {"fault": {...}, "times": N}`,
//! `DELETE /__sim/faults`, `GET /__sim/stats`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::Ctx;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Cut the connection in the middle of a stream (no close frame, no final event).
    DropMidStream,
    /// 429 with `retry-after` / `retry-after-ms`.
    RateLimited { retry_after_ms: u64 },
    /// 529 (Anthropic) / 503 (others).
    Overloaded,
    /// Start fine, then report an error inside the stream (Anthropic `error` event, TTS `error`).
    ErrorAfterOk,
    /// Send a frame that is not valid JSON.
    Malformed,
    /// Wait this long before answering.
    Slow { ms: u64 },
    /// Close a WebSocket with 1011 after the first result (Deepgram's NET-0000).
    Close1011,
    /// Refuse the WebSocket handshake / request with this status.
    RejectHandshake { status: u16 },
    /// Anthropic structured output (a forced tool) whose input breaks the tool's schema.
    InvalidOutput,
}

#[derive(Default)]
struct Inner {
    queue: Mutex<VecDeque<Fault>>,
    stats: StatsInner,
}

#[derive(Default)]
struct StatsInner {
    connections: AtomicU64,
    requests: AtomicU64,
    messages: AtomicU64,
    faults_fired: AtomicU64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub connections: u64,
    pub requests: u64,
    pub messages: u64,
    pub faults_fired: u64,
}

/// Shared fault queue and counters of one simulator.
#[derive(Clone, Default)]
pub struct Faults(Arc<Inner>);

impl Faults {
    /// The next `times` requests/connections get `fault`.
    pub fn inject(&self, fault: Fault, times: u32) {
        let mut q = self.0.queue.lock();
        q.extend(std::iter::repeat_n(fault, times as usize));
    }

    pub fn clear(&self) {
        self.0.queue.lock().clear();
    }

    /// The fault for the request/connection starting now, if any.
    pub(crate) fn take(&self) -> Option<Fault> {
        let f = self.0.queue.lock().pop_front();
        if f.is_some() {
            self.0.stats.faults_fired.fetch_add(1, Ordering::Relaxed);
        }
        f
    }

    pub(crate) fn connection(&self) {
        self.0.stats.connections.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn request(&self) {
        self.0.stats.requests.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn message(&self) {
        self.0.stats.messages.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> Stats {
        let s = &self.0.stats;
        Stats {
            connections: s.connections.load(Ordering::Relaxed),
            requests: s.requests.load(Ordering::Relaxed),
            messages: s.messages.load(Ordering::Relaxed),
            faults_fired: s.faults_fired.load(Ordering::Relaxed),
        }
    }
}

#[derive(Deserialize)]
struct Inject {
    fault: Fault,
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route(
            "/__sim/faults",
            post(|State(c): State<Ctx>, Json(i): Json<Inject>| async move {
                c.faults.inject(i.fault, i.times);
                Json(serde_json::json!({"ok": true}))
            })
            .delete(|State(c): State<Ctx>| async move {
                c.faults.clear();
                Json(serde_json::json!({"ok": true}))
            }),
        )
        .route("/__sim/stats", get(|State(c): State<Ctx>| async move { Json(c.faults.stats()) }))
}
