//! The call timeline: an append-only list of events per call.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

mod buffer;
mod file;
mod memory;
mod mongo;
mod wal;

pub use file::FileTimeline;
pub use buffer::{BufferConfig, BufferedTimeline};
pub use memory::MemoryTimeline;
pub use mongo::{MongoTimeline, Retention};

/// One event of a call. `kind` names it (`call_started`, `transcript`, `agent_said`, ...);
/// `data` carries its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// Position in the call's timeline (1, 2, …), given by the store's write buffer; 0 until
    /// then. With the call id it makes re-sent events idempotent.
    #[serde(default)]
    pub seq: u64,
    /// Milliseconds since the call started.
    pub at_ms: u64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    pub kind: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSummary {
    pub call_id: String,
    pub events: usize,
    pub started_unix_ms: u64,
    pub ended: bool,
    /// From `call_started` (empty for a call refused before it started).
    #[serde(default)]
    pub agent_id: String,
    #[serde(default)]
    pub caller: String,
    /// How it ended (`call_ended`'s `end`: `caller_hung_up`, `agent_ended`, …).
    #[serde(default)]
    pub end: Option<String>,
}

/// Every read is scoped to a tenant: another tenant's call is unknown. Events that carry a seq
/// (given by the write buffer, increasing per call) are idempotent: an event whose seq is not
/// above the call's last one is already there and is skipped, so a replay adds nothing.
#[async_trait]
pub trait TimelineStore: Send + Sync {
    /// Appends events to the timeline of `tenant_id`'s call, in order.
    async fn append(&self, tenant_id: &str, call_id: &str, events: &[TimelineEvent]) -> Result<()>;
    /// The whole timeline of a call (empty if unknown to this tenant).
    async fn timeline(&self, tenant_id: &str, call_id: &str) -> Result<Vec<TimelineEvent>>;
    /// The tenant's calls, most recent first.
    async fn calls(&self, tenant_id: &str, limit: usize) -> Result<Vec<CallSummary>>;
}

impl TimelineEvent {
    pub fn new(at_ms: u64, unix_ms: u64, kind: impl Into<String>, data: serde_json::Value) -> Self {
        TimelineEvent { seq: 0, at_ms, unix_ms, kind: kind.into(), data }
    }
}

pub(crate) fn summarize(call_id: &str, events: &[TimelineEvent]) -> CallSummary {
    let started = events.iter().find(|e| e.kind == "call_started").map(|e| &e.data);
    let text = |k: &str| started.and_then(|d| d[k].as_str()).unwrap_or_default().to_string();
    let end = events.iter().find(|e| e.kind == "call_ended").map(|e| e.data["end"].as_str().unwrap_or_default().to_string());
    CallSummary {
        call_id: call_id.to_string(),
        events: events.len(),
        started_unix_ms: events.first().map_or(0, |e| e.unix_ms),
        ended: end.is_some(),
        agent_id: text("agent_id"),
        caller: text("caller"),
        end,
    }
}
