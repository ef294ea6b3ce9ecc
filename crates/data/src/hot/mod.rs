//! Hot state: which node holds each call, active-call leases, rate limits, the outbound-dial
//! queue, live call events. Redis in production ([`RedisHotState`]), in-process embedded
//! ([`MemoryHotState`]); both keep the same semantics, checked by one contract-test suite.

use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::{DataError, Result};

mod memory;
mod redis;
mod scripts;

pub use memory::MemoryHotState;
pub use self::redis::RedisHotState;

/// Settings shared by both backends.
#[derive(Debug, Clone)]
pub struct HotConfig {
    /// How long an active-call lease lives without a heartbeat from its node. A node that
    /// crashes leaks nothing: its leases expire after this.
    pub lease_ttl: Duration,
}

impl Default for HotConfig {
    fn default() -> Self {
        HotConfig { lease_ttl: Duration::from_secs(30) }
    }
}

/// The answer of a rate check (sliding window: at most `limit` hits in any `window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Counted; `remaining` more hits fit in the current window.
    Allowed { remaining: u32 },
    /// Not counted; the oldest hit in the window leaves it after `retry_after`.
    Denied { retry_after: Duration },
}

impl RateDecision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, RateDecision::Allowed { .. })
    }
}

/// A job to put on the outbound-dial queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDialJob {
    pub tenant_id: String,
    pub campaign_id: String,
    pub payload: serde_json::Value,
    /// Not handed out before this time (None: at once).
    pub not_before: Option<SystemTime>,
}

/// A job taken from the queue. It stays in flight until acked, nacked, or its visibility
/// timeout passes (then it is handed out again, `attempts` counting each hand-out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DialJob {
    pub id: String,
    pub tenant_id: String,
    pub campaign_id: String,
    pub payload: serde_json::Value,
    /// Milliseconds since the Unix epoch; 0 when the job was due at once.
    pub not_before_ms: u64,
    pub attempts: u32,
}

/// Live events of one call, in publish order (events published before subscribing are not
/// replayed; a subscriber that falls far behind may miss some).
pub type EventStream = Pin<Box<dyn Stream<Item = serde_json::Value> + Send>>;

#[async_trait]
pub trait HotState: Send + Sync {
    // --- call placement: which node holds a call, for routing control requests ---
    /// Records that `node_id` holds `call_id` for `ttl` (placing again moves or refreshes it).
    async fn place_call(&self, call_id: &str, node_id: &str, ttl: Duration) -> Result<()>;
    async fn call_node(&self, call_id: &str) -> Result<Option<String>>;
    async fn forget_call(&self, call_id: &str) -> Result<()>;
    /// Stores what was decided about a call before its media arrives (a JSON document), for
    /// `ttl`: the node that takes the stream may not be the one that answered the webhook.
    async fn put_plan(&self, call_id: &str, plan: &serde_json::Value, ttl: Duration) -> Result<()>;
    async fn get_plan(&self, call_id: &str) -> Result<Option<serde_json::Value>>;

    // --- active-call leases ---
    /// Takes a lease for a live call. `Limit` when the tenant already has `tenant_limit` live
    /// calls (checked and added atomically). Acquiring a call that already holds a lease on
    /// the same tenant refreshes it and moves it to `node_id` (the media of a call admitted by
    /// one node's webhook may reach another node); another tenant's → `Conflict`.
    async fn acquire_call(&self, tenant_id: &str, call_id: &str, node_id: &str, tenant_limit: Option<u32>) -> Result<()>;
    /// Extends every live lease of the node by the lease TTL; returns how many.
    async fn heartbeat(&self, node_id: &str) -> Result<u64>;
    /// Ends a lease; false when the call held none (or it had expired).
    async fn release_call(&self, call_id: &str) -> Result<bool>;
    async fn active_calls_node(&self, node_id: &str) -> Result<u64>;
    async fn active_calls_tenant(&self, tenant_id: &str) -> Result<u64>;
    /// All live calls: the autoscaling signal.
    async fn active_calls_total(&self) -> Result<u64>;

    // --- rate limits ---
    /// Counts a hit on `key` if fewer than `limit` hits fall in the last `window`.
    async fn rate_check(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision>;

    // --- outbound-dial queue ---
    /// Adds a job; returns its id. A tenant's jobs due at the same time come out in enqueue order.
    async fn enqueue(&self, job: NewDialJob) -> Result<String>;
    /// Takes a due job (or None) and hides it for `visibility_timeout`. Tenants take turns
    /// (the one served longest ago first), so a big campaign does not starve the others; each
    /// tenant's jobs come oldest-due first.
    async fn dequeue(&self, node_id: &str, visibility_timeout: Duration) -> Result<Option<DialJob>>;
    /// Done with a job: removes it for good. False when unknown.
    async fn ack(&self, job_id: &str) -> Result<bool>;
    /// Gives an in-flight job back, due again at `retry_at` (None: at once). False when the
    /// job is not in flight.
    async fn nack(&self, job_id: &str, retry_at: Option<SystemTime>) -> Result<bool>;
    /// Jobs that a worker could take now (due, or in flight past their timeout): the KEDA signal.
    async fn queue_depth(&self) -> Result<u64>;

    // --- flags ---
    /// Raises `name` for `ttl` (raising it again extends it): a fleet-wide "someone is doing
    /// this", such as a node having watchers of the live call events.
    async fn set_flag(&self, name: &str, ttl: Duration) -> Result<()>;
    /// Whether `name` is raised (set within its ttl).
    async fn flag(&self, name: &str) -> Result<bool>;

    // --- live call events ---
    async fn publish(&self, call_id: &str, event: &serde_json::Value) -> Result<()>;
    /// Events published on the call from now on (the subscription is live when this returns).
    async fn subscribe(&self, call_id: &str) -> Result<EventStream>;
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

/// Ids used in keys: a safe alphabet (as [`crate::check_id`]).
pub(crate) fn check_ids(ids: &[&str]) -> Result<()> {
    ids.iter().try_for_each(|id| crate::check_id(id))
}

pub(crate) fn check_duration(what: &'static str, d: Duration) -> Result<u64> {
    let ms = d.as_millis();
    if ms == 0 || ms > u128::from(u32::MAX) {
        return Err(DataError::invalid(what, format!("{ms} ms: use 1 ms to about 49 days")));
    }
    Ok(ms as u64)
}

/// Rate-limit keys may also use ':' and '.' to name their scope (`tenant:acme:dials`).
pub(crate) fn check_rate_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'));
    if ok { Ok(()) } else { Err(DataError::InvalidId(key.chars().take(64).collect())) }
}

/// Job ids sort in enqueue order (zero-padded sequence), as in the Redis script.
pub(crate) fn job_id(seq: u64) -> String {
    format!("j{seq:016}")
}

