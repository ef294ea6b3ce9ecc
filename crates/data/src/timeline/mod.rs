//! The call timeline: an append-only list of events per call.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

mod file;
mod memory;

pub use file::FileTimeline;
pub use memory::MemoryTimeline;

/// One event of a call. `kind` names it (`call_started`, `transcript`, `agent_said`, ...);
/// `data` carries its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
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
}

#[async_trait]
pub trait TimelineStore: Send + Sync {
    /// Appends events to a call's timeline, in order.
    async fn append(&self, call_id: &str, events: &[TimelineEvent]) -> Result<()>;
    /// The whole timeline of a call (empty if unknown).
    async fn timeline(&self, call_id: &str) -> Result<Vec<TimelineEvent>>;
    /// Calls known to the store, most recent first.
    async fn calls(&self, limit: usize) -> Result<Vec<CallSummary>>;
}

pub(crate) fn summarize(call_id: &str, events: &[TimelineEvent]) -> CallSummary {
    CallSummary {
        call_id: call_id.to_string(),
        events: events.len(),
        started_unix_ms: events.first().map_or(0, |e| e.unix_ms),
        ended: events.iter().any(|e| e.kind == "call_ended"),
    }
}
