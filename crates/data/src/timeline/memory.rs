use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{summarize, CallSummary, TimelineEvent, TimelineStore};
use crate::{check_id, Result};

/// Timelines held in memory (tests, and the demo when nothing is to be kept).
#[derive(Default)]
pub struct MemoryTimeline {
    calls: Mutex<HashMap<(String, String), Vec<TimelineEvent>>>,
}

#[async_trait]
impl TimelineStore for MemoryTimeline {
    async fn append(&self, tenant_id: &str, call_id: &str, events: &[TimelineEvent]) -> Result<()> {
        check_id(tenant_id)?;
        check_id(call_id)?;
        let mut g = self.calls.lock();
        let call = g.entry((tenant_id.to_string(), call_id.to_string())).or_default();
        let mut last = call.iter().map(|e| e.seq).max().unwrap_or(0);
        for e in events {
            if e.seq == 0 || e.seq > last {
                last = last.max(e.seq);
                call.push(e.clone());
            }
        }
        Ok(())
    }

    async fn timeline(&self, tenant_id: &str, call_id: &str) -> Result<Vec<TimelineEvent>> {
        check_id(tenant_id)?;
        check_id(call_id)?;
        Ok(self.calls.lock().get(&(tenant_id.to_string(), call_id.to_string())).cloned().unwrap_or_default())
    }

    async fn calls(&self, tenant_id: &str, limit: usize) -> Result<Vec<CallSummary>> {
        check_id(tenant_id)?;
        let mut out: Vec<CallSummary> = self.calls.lock().iter().filter(|((t, _), _)| t == tenant_id).map(|((_, id), ev)| summarize(id, ev)).collect();
        out.sort_by(|a, b| b.started_unix_ms.cmp(&a.started_unix_ms).then_with(|| a.call_id.cmp(&b.call_id)));
        out.truncate(limit);
        Ok(out)
    }
}
