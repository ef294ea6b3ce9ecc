//! `GET /metrics`: this process in the Prometheus text exposition format 0.0.4 — live calls,
//! how calls ended or were refused, turn latency by stage, provider errors and failovers, the
//! dial and analysis queues, webhook and analysis outcomes, build, CPU, memory and file
//! descriptors. `GET /metrics/active-calls`: `{"active_calls": N, "dial_backlog": M}` for
//! KEDA's metrics-api trigger. Both are unauthenticated: serve them to the cluster's scrapers only (the nginx in
//! `deploy/` does not route them).

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use callfunnel_metrics::{Kind, SCRAPE_ERRORS, Text};

use super::AppState;

/// A slow Redis must not hang the scrape: past this the last value read is reported.
const QUEUE_TIMEOUT: Duration = Duration::from_millis(500);
const UNREAD: u64 = u64::MAX;
static DIAL_DEPTH: AtomicU64 = AtomicU64::new(UNREAD);
static ANALYSIS_DEPTH: AtomicU64 = AtomicU64::new(UNREAD);

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics)).route("/metrics/active-calls", get(active_calls))
}

async fn active_calls(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"active_calls": s.registry.active_count(), "dial_backlog": s.dialer.backlog()}))
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let (dial, analysis) = tokio::join!(
        depth(std::future::ready(Ok::<u64, std::convert::Infallible>(s.dialer.backlog())), &DIAL_DEPTH, "dial_queue", QUEUE_TIMEOUT),
        depth(s.stores.work.queue_depth(), &ANALYSIS_DEPTH, "analysis_queue", QUEUE_TIMEOUT),
    );
    let mut t = Text::new();
    gauge(&mut t, "callfunnel_build_info", "The running version (always 1).", &[("version", env!("CARGO_PKG_VERSION"))], Some(1));
    gauge(&mut t, "callfunnel_active_calls", "Calls running on this process now.", &[], Some(s.registry.active_count() as u64));
    gauge(&mut t, "callfunnel_dial_queue_depth", "Campaign contacts waiting to be dialled in open calling windows (the fleet's backlog: the same on every node).", &[], dial);
    gauge(&mut t, "callfunnel_analysis_queue_depth", "Post-call analysis jobs a worker could take now.", &[], analysis);
    callfunnel_metrics::encode(&mut t);
    ([(CONTENT_TYPE, callfunnel_metrics::text::CONTENT_TYPE)], t.finish())
}

fn gauge(t: &mut Text, name: &str, help: &str, labels: &[(&str, &str)], v: Option<u64>) {
    if let Some(v) = v {
        t.family(name, help, Kind::Gauge);
        t.sample(name, labels, v);
    }
}

/// A queue's depth read within `limit`. On an error or a timeout: a scrape error counted
/// under `source`, and the last value read (none before the first read succeeds).
async fn depth<E: Display>(read: impl Future<Output = Result<u64, E>>, last: &AtomicU64, source: &str, limit: Duration) -> Option<u64> {
    match tokio::time::timeout(limit, read).await {
        Ok(Ok(n)) => {
            last.store(n, Ordering::Relaxed);
            return Some(n);
        }
        Ok(Err(e)) => tracing::warn!(source, error = %e, "metrics: queue depth not read"),
        Err(_) => tracing::warn!(source, limit_ms = limit.as_millis() as u64, "metrics: queue depth not read in time"),
    }
    SCRAPE_ERRORS.inc([source]);
    Some(last.load(Ordering::Relaxed)).filter(|n| *n != UNREAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_slow_or_failing_queue_reports_its_last_value_and_an_error() {
        static LAST: AtomicU64 = AtomicU64::new(UNREAD);
        let src = "test_queue";
        let limit = Duration::from_millis(500);
        let slow = async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<u64, String>(9)
        };
        assert_eq!(depth(slow, &LAST, src, limit).await, None, "nothing read yet");
        assert_eq!(SCRAPE_ERRORS.get([src]), 1);
        assert_eq!(depth(async { Ok::<u64, String>(4) }, &LAST, src, limit).await, Some(4));
        let started = tokio::time::Instant::now();
        assert_eq!(depth(std::future::pending::<Result<u64, String>>(), &LAST, src, limit).await, Some(4), "the last value");
        assert_eq!(started.elapsed(), limit, "the scrape waited only the limit");
        assert_eq!(depth(async { Err::<u64, _>("redis down") }, &LAST, src, limit).await, Some(4));
        assert_eq!(SCRAPE_ERRORS.get([src]), 3);
    }
}
