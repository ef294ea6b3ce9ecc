//! In-process hot state: one mutex over plain maps, the same semantics as the Redis backend.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::{
    DialJob, EventStream, HotConfig, HotState, NewDialJob, RateDecision, check_duration, check_ids, check_rate_key,
    now_ms, unix_ms,
};
use crate::{DataError, Result};

/// Every this many writes, expired entries leave the maps kept by time (placements, plans,
/// rate keys). Sweeping on every write would cost a pass over each map per call.
const SWEEP_EVERY: u64 = 1024;

struct Lease {
    tenant: String,
    node: String,
    expires_ms: u64,
}

#[derive(Default)]
struct Inner {
    placement: HashMap<String, (String, u64)>,
    /// call → (the plan as compact JSON text, expiry): a parsed document costs several times
    /// more memory, and a node keeps every call's tombstone for hours
    plans: HashMap<String, (Box<str>, u64)>,
    leases: HashMap<String, Lease>,
    /// key → (its window in ms, the hits within it)
    hits: HashMap<String, (u64, VecDeque<u64>)>,
    /// Writes since the last sweep of expired entries.
    writes_since_sweep: u64,
    jobs: HashMap<String, DialJob>,
    /// tenant → (due at ms, job id)
    ready: HashMap<String, BTreeSet<(u64, String)>>,
    /// tenants with waiting jobs → their turn (lowest served first, ties by name)
    rr: HashMap<String, u64>,
    rr_seq: u64,
    /// job id → visible again at ms
    inflight: HashMap<String, u64>,
    seq: u64,
    channels: HashMap<String, broadcast::Sender<serde_json::Value>>,
    /// flag → raised until (ms); a handful of names, so never swept
    flags: HashMap<String, u64>,
}

impl Inner {
    /// Counts a write; every `SWEEP_EVERY`, drops what has expired.
    fn wrote(&mut self, now: u64) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= SWEEP_EVERY {
            self.writes_since_sweep = 0;
            self.placement.retain(|_, (_, exp)| *exp > now);
            self.plans.retain(|_, (_, exp)| *exp > now);
            // keys are made per call (`analysis.CALL`) as well as per tenant
            self.hits.retain(|_, (w, h)| h.back().is_some_and(|t| *t + *w > now));
        }
    }

    fn prune_leases(&mut self, now: u64) {
        self.leases.retain(|_, l| l.expires_ms > now);
    }

    /// A job waits again; its tenant joins the rotation at the current turn (if not in it).
    fn make_ready(&mut self, id: &str, due: u64) {
        let Some(tenant) = self.jobs.get(id).map(|j| j.tenant_id.clone()) else { return };
        self.ready.entry(tenant.clone()).or_default().insert((due, id.to_string()));
        let turn = self.rr_seq;
        self.rr.entry(tenant).or_insert(turn);
    }

    /// In-flight jobs past their timeout become due again.
    fn requeue_expired(&mut self, now: u64) {
        let mut expired: Vec<String> = self.inflight.iter().filter(|(_, t)| **t <= now).map(|(id, _)| id.clone()).collect();
        expired.sort();
        for id in expired {
            self.inflight.remove(&id);
            self.make_ready(&id, now);
        }
    }

    /// The oldest due job of the tenant whose turn it is.
    fn take_due(&mut self, now: u64) -> Option<String> {
        let mut order: Vec<(u64, String)> = self.rr.iter().map(|(t, turn)| (*turn, t.clone())).collect();
        order.sort();
        for (_, tenant) in order {
            let Some(set) = self.ready.get_mut(&tenant) else { continue };
            let Some(first) = set.first().filter(|(due, _)| *due <= now).cloned() else { continue };
            set.remove(&first);
            let empty = set.is_empty();
            self.rr_seq += 1;
            self.rr.insert(tenant.clone(), self.rr_seq);
            if empty {
                self.ready.remove(&tenant);
                self.rr.remove(&tenant);
            }
            return Some(first.1);
        }
        None
    }
}

pub struct MemoryHotState {
    config: HotConfig,
    inner: Mutex<Inner>,
}

impl Default for MemoryHotState {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryHotState {
    pub fn new() -> Self {
        Self::with_config(HotConfig::default())
    }

    pub fn with_config(config: HotConfig) -> Self {
        MemoryHotState { config, inner: Mutex::new(Inner::default()) }
    }
}

#[async_trait]
impl HotState for MemoryHotState {
    async fn place_call(&self, call_id: &str, node_id: &str, ttl: Duration) -> Result<()> {
        check_ids(&[call_id, node_id])?;
        let ttl = check_duration("placement ttl", ttl)?;
        let now = now_ms();
        let mut g = self.inner.lock();
        g.wrote(now);
        g.placement.insert(call_id.to_string(), (node_id.to_string(), now + ttl));
        Ok(())
    }

    async fn call_node(&self, call_id: &str) -> Result<Option<String>> {
        check_ids(&[call_id])?;
        let now = now_ms();
        Ok(self.inner.lock().placement.get(call_id).filter(|(_, exp)| *exp > now).map(|(n, _)| n.clone()))
    }

    async fn forget_call(&self, call_id: &str) -> Result<()> {
        check_ids(&[call_id])?;
        self.inner.lock().placement.remove(call_id);
        Ok(())
    }

    async fn put_plan(&self, call_id: &str, plan: &serde_json::Value, ttl: Duration) -> Result<()> {
        check_ids(&[call_id])?;
        let ttl = check_duration("plan ttl", ttl)?;
        let now = now_ms();
        let text: Box<str> = plan.to_string().into();
        let mut g = self.inner.lock();
        g.wrote(now);
        g.plans.insert(call_id.to_string(), (text, now + ttl));
        Ok(())
    }

    async fn get_plan(&self, call_id: &str) -> Result<Option<serde_json::Value>> {
        check_ids(&[call_id])?;
        let now = now_ms();
        let text = self.inner.lock().plans.get(call_id).filter(|(_, exp)| *exp > now).map(|(p, _)| p.clone());
        text.map(|t| serde_json::from_str(&t).map_err(|e| DataError::invalid("stored plan", e.to_string()))).transpose()
    }

    async fn acquire_call(&self, tenant_id: &str, call_id: &str, node_id: &str, tenant_limit: Option<u32>) -> Result<()> {
        check_ids(&[tenant_id, call_id, node_id])?;
        let ttl = check_duration("lease ttl", self.config.lease_ttl)?;
        let now = now_ms();
        let mut g = self.inner.lock();
        g.prune_leases(now);
        if let Some(l) = g.leases.get_mut(call_id) {
            if l.tenant == tenant_id {
                l.node = node_id.to_string();
                l.expires_ms = now + ttl;
                return Ok(());
            }
            return Err(DataError::Conflict(format!("call `{call_id}` already holds a lease of another tenant")));
        }
        if let Some(limit) = tenant_limit {
            let live = g.leases.values().filter(|l| l.tenant == tenant_id).count() as u64;
            if live >= u64::from(limit) {
                return Err(DataError::Limit(format!("tenant `{tenant_id}` already has {live} live calls (limit {limit})")));
            }
        }
        let lease = Lease { tenant: tenant_id.to_string(), node: node_id.to_string(), expires_ms: now + ttl };
        g.leases.insert(call_id.to_string(), lease);
        Ok(())
    }

    async fn heartbeat(&self, node_id: &str) -> Result<u64> {
        check_ids(&[node_id])?;
        let ttl = check_duration("lease ttl", self.config.lease_ttl)?;
        let now = now_ms();
        let mut g = self.inner.lock();
        g.prune_leases(now);
        let mut n = 0;
        for l in g.leases.values_mut().filter(|l| l.node == node_id) {
            l.expires_ms = now + ttl;
            n += 1;
        }
        Ok(n)
    }

    async fn release_call(&self, call_id: &str) -> Result<bool> {
        check_ids(&[call_id])?;
        let mut g = self.inner.lock();
        g.prune_leases(now_ms());
        Ok(g.leases.remove(call_id).is_some())
    }

    async fn active_calls_node(&self, node_id: &str) -> Result<u64> {
        check_ids(&[node_id])?;
        let now = now_ms();
        Ok(self.inner.lock().leases.values().filter(|l| l.node == node_id && l.expires_ms > now).count() as u64)
    }

    async fn active_calls_tenant(&self, tenant_id: &str) -> Result<u64> {
        check_ids(&[tenant_id])?;
        let now = now_ms();
        Ok(self.inner.lock().leases.values().filter(|l| l.tenant == tenant_id && l.expires_ms > now).count() as u64)
    }

    async fn active_calls_total(&self) -> Result<u64> {
        let now = now_ms();
        Ok(self.inner.lock().leases.values().filter(|l| l.expires_ms > now).count() as u64)
    }

    async fn rate_check(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision> {
        check_rate_key(key)?;
        let window = check_duration("rate window", window)?;
        let now = now_ms();
        let mut g = self.inner.lock();
        g.wrote(now);
        let (w, hits) = g.hits.entry(key.to_string()).or_default();
        *w = window;
        while hits.front().is_some_and(|t| *t + window <= now) {
            hits.pop_front();
        }
        if (hits.len() as u64) < u64::from(limit) {
            hits.push_back(now);
            return Ok(RateDecision::Allowed { remaining: limit - hits.len() as u32 });
        }
        let oldest = hits.front().copied().unwrap_or(now);
        Ok(RateDecision::Denied { retry_after: Duration::from_millis((oldest + window).saturating_sub(now).max(1)) })
    }

    async fn enqueue(&self, job: NewDialJob) -> Result<String> {
        check_ids(&[&job.tenant_id, &job.campaign_id])?;
        let not_before_ms = job.not_before.map_or(0, unix_ms);
        let mut g = self.inner.lock();
        g.seq += 1;
        let id = super::job_id(g.seq);
        let due = not_before_ms.max(now_ms());
        let stored = DialJob {
            id: id.clone(),
            tenant_id: job.tenant_id,
            campaign_id: job.campaign_id,
            payload: job.payload,
            not_before_ms,
            attempts: 0,
        };
        g.jobs.insert(id.clone(), stored);
        g.make_ready(&id, due);
        Ok(id)
    }

    async fn dequeue(&self, node_id: &str, visibility_timeout: Duration) -> Result<Option<DialJob>> {
        check_ids(&[node_id])?;
        let vis = check_duration("visibility timeout", visibility_timeout)?;
        let now = now_ms();
        let mut g = self.inner.lock();
        g.requeue_expired(now);
        let Some(id) = g.take_due(now) else { return Ok(None) };
        g.inflight.insert(id.clone(), now + vis);
        let job = g.jobs.get_mut(&id).ok_or_else(|| DataError::backend("hot state", "queued job without a body"))?;
        job.attempts += 1;
        Ok(Some(job.clone()))
    }

    async fn ack(&self, job_id: &str) -> Result<bool> {
        check_ids(&[job_id])?;
        let mut g = self.inner.lock();
        g.inflight.remove(job_id);
        let Some(job) = g.jobs.remove(job_id) else { return Ok(false) };
        if let Some(set) = g.ready.get_mut(&job.tenant_id) {
            set.retain(|(_, id)| id != job_id);
            if set.is_empty() {
                g.ready.remove(&job.tenant_id);
                g.rr.remove(&job.tenant_id);
            }
        }
        Ok(true)
    }

    async fn nack(&self, job_id: &str, retry_at: Option<SystemTime>) -> Result<bool> {
        check_ids(&[job_id])?;
        let now = now_ms();
        let mut g = self.inner.lock();
        if g.inflight.remove(job_id).is_none() {
            return Ok(false);
        }
        let due = retry_at.map_or(now, unix_ms).max(now);
        g.make_ready(job_id, due);
        Ok(true)
    }

    async fn queue_depth(&self) -> Result<u64> {
        let now = now_ms();
        let g = self.inner.lock();
        let due: usize = g.ready.values().map(|set| set.iter().take_while(|(t, _)| *t <= now).count()).sum();
        let timed_out = g.inflight.values().filter(|t| **t <= now).count();
        Ok((due + timed_out) as u64)
    }

    async fn set_flag(&self, name: &str, ttl: Duration) -> Result<()> {
        check_ids(&[name])?;
        let ttl = check_duration("flag ttl", ttl)?;
        self.inner.lock().flags.insert(name.to_string(), now_ms() + ttl);
        Ok(())
    }

    async fn flag(&self, name: &str) -> Result<bool> {
        check_ids(&[name])?;
        Ok(self.inner.lock().flags.get(name).is_some_and(|until| *until > now_ms()))
    }

    async fn publish(&self, call_id: &str, event: &serde_json::Value) -> Result<()> {
        check_ids(&[call_id])?;
        let mut g = self.inner.lock();
        if let Some(tx) = g.channels.get(call_id)
            && tx.send(event.clone()).is_err()
        {
            g.channels.remove(call_id); // nobody listens any more
        }
        Ok(())
    }

    async fn subscribe(&self, call_id: &str) -> Result<EventStream> {
        check_ids(&[call_id])?;
        let rx = {
            let mut g = self.inner.lock();
            g.channels.entry(call_id.to_string()).or_insert_with(|| broadcast::channel(1024).0).subscribe()
        };
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(v) => return Some((v, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(Box::pin(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::HotState;

    #[tokio::test]
    async fn rate_keys_whose_hits_expired_are_forgotten() {
        let h = MemoryHotState::new();
        for i in 0..SWEEP_EVERY - 2 {
            h.rate_check(&format!("analysis.call{i}"), 1, Duration::from_millis(1)).await.unwrap();
        }
        h.rate_check("tenant:acme:dials", 5, Duration::from_secs(60)).await.unwrap();
        assert_eq!(h.inner.lock().hits.len() as u64, SWEEP_EVERY - 1, "no sweep before the {SWEEP_EVERY}th check");
        tokio::time::sleep(Duration::from_millis(5)).await;
        // the next check (the SWEEP_EVERY-th write) sweeps: only the key still inside its window is left, besides its own
        assert!(matches!(h.rate_check("analysis.new", 1, Duration::from_secs(60)).await.unwrap(), RateDecision::Allowed { .. }));
        let mut keys: Vec<String> = h.inner.lock().hits.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["analysis.new", "tenant:acme:dials"]);
        // and a forgotten key starts afresh, a remembered one still counts
        assert!(matches!(h.rate_check("analysis.new", 1, Duration::from_secs(60)).await.unwrap(), RateDecision::Denied { .. }));
        assert_eq!(h.rate_check("tenant:acme:dials", 5, Duration::from_secs(60)).await.unwrap(), RateDecision::Allowed { remaining: 3 });
    }
}
