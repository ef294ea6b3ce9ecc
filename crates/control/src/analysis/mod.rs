//! Post-call analysis off the call path. A call that ends puts a job on the work queue (the
//! hot state's fair queue: Redis in production, so any node may take it); a worker takes
//! jobs, rebuilds the call from its timeline, runs the agent's analyzer and stores the result
//! as a `call_analyzed` timeline event, then sends `call.analyzed`. A provider outage puts the
//! job back with backoff; a job whose node died comes back after its visibility timeout. A
//! call whose timeline already holds a result is not analyzed twice.

mod record;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use callfunnel_ai::analysis::{AnalysisError, CallAnalysis};
use callfunnel_data::TimelineEvent;
use callfunnel_data::hot::{DialJob, NewDialJob, RateDecision};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use record::call_record;

use crate::providers::ProviderHub;
use crate::stores::Stores;
use crate::webhooks::Webhooks;

/// The queue's group name for analysis jobs.
const GROUP: &str = "analysis";
/// Hand-outs of one job before it is given up (provider errors each time).
pub const MAX_ATTEMPTS: u32 = 6;
/// A taken job comes back to the queue after this if its worker says nothing (crash).
const VISIBILITY: Duration = Duration::from_secs(300);
/// A call is queued at most once in this long: longer than a job's retries take (six
/// hand-outs, backoff at most 5 minutes), so a restarted node's sweep or a retried webhook
/// never queues it twice while it waits. (Each call holds a dedupe key this long: a day's
/// keys of a busy node would be a quarter of a GB in the embedded hot state.)
const ONCE_PER: Duration = Duration::from_secs(3600);
/// The startup sweep looks this far back for ended calls never analyzed.
const SWEEP_WINDOW_MS: u64 = 48 * 3600 * 1000;
/// Timeline events that settle a call's analysis.
pub const DONE_KINDS: [&str; 2] = ["call_analyzed", "call_analysis_failed"];

pub struct PostCall {
    stores: Stores,
    hub: Arc<ProviderHub>,
    webhooks: Arc<Webhooks>,
    wake: Notify,
    /// First retry delay after a provider error (doubles per attempt, at most 5 minutes).
    base_backoff: Duration,
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl PostCall {
    /// Starts the worker, which runs up to `concurrency` analyses at once.
    pub fn start(stores: Stores, hub: Arc<ProviderHub>, webhooks: Arc<Webhooks>, base_backoff: Duration, concurrency: usize, shutdown: CancellationToken) -> Arc<PostCall> {
        let p = Arc::new(PostCall { stores, hub, webhooks, wake: Notify::new(), base_backoff });
        tokio::spawn(p.clone().worker(concurrency.max(1), shutdown));
        p
    }

    /// Queues the analysis of a call that ended (once an hour at most per call: a second
    /// enqueue — a restarted node's sweep, a retried webhook — is dropped; one that comes
    /// later finds the result in the timeline and is acknowledged without a second analysis).
    pub async fn enqueue(&self, tenant_id: &str, call_id: &str, agent_id: &str) -> bool {
        match self.stores.work.rate_check(&format!("analysis.{call_id}"), 1, ONCE_PER).await {
            Ok(RateDecision::Denied { .. }) => {
                tracing::debug!(call_id, "analysis already queued");
                return false;
            }
            Ok(RateDecision::Allowed { .. }) => {}
            Err(e) => tracing::warn!(call_id, error = %e, "analysis dedupe unavailable; queueing anyway"),
        }
        let job = NewDialJob { tenant_id: tenant_id.into(), campaign_id: GROUP.into(), payload: json!({"call_id": call_id, "agent_id": agent_id}), not_before: None };
        match self.stores.work.enqueue(job).await {
            Ok(id) => {
                tracing::debug!(call_id, job = %id, "analysis queued");
                self.wake.notify_one();
                true
            }
            Err(e) => {
                tracing::error!(call_id, error = %e, "analysis not queued");
                false
            }
        }
    }

    /// Queues every call of the last two days that ended without an analysis (a queue kept
    /// in memory dies with its process; a Redis queue may have been flushed). Runs when the
    /// worker starts. Returns how many it queued.
    pub async fn sweep(&self) -> usize {
        let tenants = match self.stores.control.tenants().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "analysis sweep: tenants unreadable");
                return 0;
            }
        };
        let since = unix_ms().saturating_sub(SWEEP_WINDOW_MS);
        let mut queued = 0;
        for t in tenants {
            let calls = self.stores.timeline.calls(&t.id, 500).await.unwrap_or_default();
            for c in calls.into_iter().filter(|c| c.ended && c.started_unix_ms >= since) {
                let events = self.stores.timeline.timeline(&t.id, &c.call_id).await.unwrap_or_default();
                if events.iter().any(|e| DONE_KINDS.contains(&e.kind.as_str())) {
                    continue;
                }
                let Some(agent) = events.iter().find(|e| e.kind == "call_started").and_then(|e| e.data["agent_id"].as_str()) else { continue };
                queued += usize::from(self.enqueue(&t.id, &c.call_id, agent).await);
            }
        }
        if queued > 0 {
            tracing::info!(queued, "analysis sweep: calls left unanalyzed were queued");
        }
        queued
    }

    async fn worker(self: Arc<Self>, concurrency: usize, shutdown: CancellationToken) {
        self.sweep().await;
        // A job is taken only when one of the `concurrency` slots is free: the rest stay on
        // the queue, where another node may take them.
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
        loop {
            let slot = tokio::select! {
                _ = shutdown.cancelled() => return,
                s = slots.clone().acquire_owned() => match s { Ok(s) => s, Err(_) => return },
            };
            let job = match self.stores.work.dequeue(&self.stores.node_id, VISIBILITY).await {
                Ok(j) => j,
                Err(e) => {
                    tracing::warn!(error = %e, "analysis queue unavailable");
                    None
                }
            };
            match job {
                Some(job) => {
                    let (me, shutdown) = (self.clone(), shutdown.clone());
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = shutdown.cancelled() => {} // the job comes back after its visibility timeout
                            _ = me.run(&job) => {}
                        }
                        drop(slot);
                    });
                }
                None => {
                    drop(slot);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    async fn run(&self, job: &DialJob) {
        let tenant = job.tenant_id.as_str();
        let call_id = job.payload["call_id"].as_str().unwrap_or_default().to_string();
        let agent_id = job.payload["agent_id"].as_str().unwrap_or_default().to_string();
        let events = match self.stores.timeline.timeline(tenant, &call_id).await {
            Ok(ev) => ev,
            Err(e) => return self.retry(job, &call_id, &format!("timeline unreadable: {e}")).await,
        };
        if events.iter().any(|e| DONE_KINDS.contains(&e.kind.as_str())) {
            tracing::debug!(call_id, "already analyzed");
            return self.ack(job).await;
        }
        // the call's last events may still be on their way through the timeline's write
        // buffer: wait for `call_ended` a few times, then analyze what is there
        if !events.iter().any(|e| e.kind == "call_ended") && job.attempts < 3 {
            return self.retry(job, &call_id, "the call's timeline has no call_ended yet").await;
        }
        let analyzer = match self.hub.analyzer(tenant, &agent_id).await {
            Ok(Some(a)) => a,
            Ok(None) => return self.ack(job).await,
            Err(e) => return self.give_up(job, &call_id, &agent_id, &format!("no analyzer: {e}")).await,
        };
        let (analyzer, spec) = analyzer;
        let call = call_record(&call_id, &events);
        let started = std::time::Instant::now();
        match analyzer.analyze(&call, &spec).await {
            Ok((analysis, usage)) => {
                let ms = started.elapsed().as_millis() as u64;
                tracing::info!(call_id, analyzer = %analysis.analyzer, success = analysis.success, ms, "call analyzed");
                let mut data = serde_json::to_value(&analysis).unwrap_or_default();
                data["agent_id"] = json!(agent_id);
                data["analysis_ms"] = json!(ms);
                data["attempts"] = json!(job.attempts);
                if let Some(u) = usage {
                    data["usage"] = serde_json::to_value(u).unwrap_or_default();
                }
                if let Err(e) = self.append(tenant, &call_id, &events, "call_analyzed", data).await {
                    return self.retry(job, &call_id, &format!("result not stored: {e}")).await;
                }
                callfunnel_metrics::ANALYSIS.inc(["done"]);
                self.webhooks.emit(tenant, "call.analyzed", hook(&call_id, &agent_id, &analysis)).await;
                self.ack(job).await;
            }
            Err(AnalysisError::Transient(e)) => self.retry(job, &call_id, &e).await,
            Err(AnalysisError::Failed(e)) => self.give_up(job, &call_id, &agent_id, &e).await,
        }
    }

    /// Appends to the call's timeline (`at_ms`: since the call started).
    async fn append(&self, tenant: &str, call_id: &str, events: &[TimelineEvent], kind: &str, data: serde_json::Value) -> callfunnel_data::Result<()> {
        let now = unix_ms();
        let at_ms = events.first().map_or(0, |first| now.saturating_sub(first.unix_ms.saturating_sub(first.at_ms)));
        self.stores.timeline.append(tenant, call_id, &[TimelineEvent::new(at_ms, now, kind, data)]).await
    }

    async fn retry(&self, job: &DialJob, call_id: &str, why: &str) {
        if job.attempts >= MAX_ATTEMPTS {
            let agent_id = job.payload["agent_id"].as_str().unwrap_or_default().to_string();
            return self.give_up(job, call_id, &agent_id, &format!("{why} (after {} attempts)", job.attempts)).await;
        }
        let wait = self.base_backoff.saturating_mul(1 << job.attempts.saturating_sub(1).min(10)).min(Duration::from_secs(300));
        callfunnel_metrics::ANALYSIS.inc(["retry"]);
        tracing::warn!(call_id, attempt = job.attempts, retry_in_ms = wait.as_millis() as u64, error = %why, "analysis failed; retrying");
        if let Err(e) = self.stores.work.nack(&job.id, Some(SystemTime::now() + wait)).await {
            tracing::error!(call_id, error = %e, "analysis job not put back (it returns after its visibility timeout)");
        }
    }

    async fn give_up(&self, job: &DialJob, call_id: &str, agent_id: &str, why: &str) {
        callfunnel_metrics::ANALYSIS.inc(["failed"]);
        tracing::error!(call_id, attempts = job.attempts, error = %why, "call analysis failed");
        let events = self.stores.timeline.timeline(&job.tenant_id, call_id).await.unwrap_or_default();
        let data = json!({"agent_id": agent_id, "error": why, "attempts": job.attempts});
        if let Err(e) = self.append(&job.tenant_id, call_id, &events, "call_analysis_failed", data).await {
            tracing::error!(call_id, error = %e, "analysis failure not recorded");
        }
        self.ack(job).await;
    }

    async fn ack(&self, job: &DialJob) {
        if let Err(e) = self.stores.work.ack(&job.id).await {
            tracing::warn!(job = %job.id, error = %e, "analysis job not acknowledged");
        }
    }
}

/// The `call.analyzed` webhook payload.
pub fn hook(call_id: &str, agent_id: &str, a: &CallAnalysis) -> serde_json::Value {
    json!({"call_id": call_id, "agent_id": agent_id, "summary": a.summary, "extraction": a.extraction, "success": a.success, "success_reason": a.success_reason, "analyzer": a.analyzer})
}
