//! Graceful drain. SIGTERM (the orchestrator's stop) → `/readyz` answers 503 so traffic moves
//! away, new calls are refused with 503 `draining` (a proxy in front tries another node:
//! nginx `proxy_next_upstream http_503`), the campaign dialer stops placing calls, and the calls
//! running here finish on their own — bounded by `[server] drain_timeout_s`, after which the
//! rest are ended. Then the work calls left behind (recording uploads, ledger lines) and the
//! timeline buffer are flushed, and the process exits 0.

use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};

/// A request that would start a call on this node: a carrier's webhook for a new inbound call,
/// the API placing one, or a media stream for a call not already running here.
fn starts_a_call(s: &AppState, method: &Method, path: &str) -> bool {
    match (method, path) {
        (&Method::POST, "/twilio/voice") | (&Method::GET, "/exotel/voicebot") | (&Method::POST, "/v1/calls") => true,
        (_, p) if p.starts_with("/twilio/media/") || p.starts_with("/exotel/media") => {
            let call_id = p.split('/').nth(3).unwrap_or_default();
            s.registry.get_active(call_id).is_none()
        }
        _ => false,
    }
}

pub async fn refuse_new_calls(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if s.draining.is_cancelled() && starts_a_call(&s, req.method(), req.uri().path()) {
        tracing::info!(path = %req.uri().path(), "draining: new call refused");
        callfunnel_metrics::call_refused("draining");
        let mut r = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "draining", "this node is shutting down; try another").into_response();
        r.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        return r;
    }
    next.run(req).await
}

/// What a drain did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainReport {
    /// Calls that were live when the drain began.
    pub live_at_start: usize,
    /// Calls still live at the deadline (ended by the shutdown).
    pub cut: usize,
    pub waited: Duration,
}

impl AppState {
    /// Drains the node (see the module docs) and then stops the server: live calls get up to
    /// `[server] drain_timeout_s` to end. Returns once the shutdown has been signalled; await
    /// the server's task and then [`AppState::finish`].
    pub async fn drain(&self) -> DrainReport {
        let s = self;
        let started = Instant::now();
        s.draining.cancel();
        let live_at_start = s.registry.active_count();
        tracing::info!(live = live_at_start, "draining: not ready, no new calls; waiting for the live calls");
        let deadline = started + Duration::from_secs(s.config.server.drain_timeout_s);
        while s.registry.active_count() > 0 && Instant::now() < deadline && !s.shutdown.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let cut = s.registry.active_count();
        if cut > 0 {
            tracing::warn!(cut, "drain deadline reached: ending the calls still running");
        }
        s.shutdown.cancel();
        DrainReport { live_at_start, cut, waited: started.elapsed() }
    }

    /// After the server task ended: waits (up to `limit`) for the work calls left behind
    /// (recording uploads, ledger lines), then ships the timeline buffer.
    pub async fn finish(&self, limit: Duration) {
        let bg = &self.calls.data.background;
        bg.close();
        if tokio::time::timeout(limit, bg.wait()).await.is_err() {
            tracing::warn!(left = bg.len(), "background work not finished in time (unfinished recordings stay in the spool directory)");
        }
        if tokio::time::timeout(limit, self.stores.flush()).await.is_err() {
            tracing::warn!("timeline buffer not drained in time; the rest ships at the next start");
        }
    }
}
