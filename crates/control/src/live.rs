//! Live call events: every timeline event written on this node, as it is written, for whoever
//! watches (the console's live call list and transcripts, `GET /v1/calls/events`).
//!
//! [`LiveTimeline`] wraps the timeline store: appends go to the store and, when anyone is
//! watching, to a bounded broadcast channel. Nobody watching costs one atomic load per batch.
//! A watcher that falls behind by more than the channel holds is told so (`lagged`) and reloads.
//! In a fleet, [`LiveFeed::fleet`] also passes events between the nodes ([`crate::live_fleet`]).

use std::sync::Arc;

use async_trait::async_trait;
use callfunnel_data::hot::HotState;
use callfunnel_data::{CallSummary, Result, TimelineEvent, TimelineStore};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::live_fleet::FleetOut;

/// Events held for slow watchers before they are told they lagged.
const CAPACITY: usize = 1024;

#[derive(Debug, Clone, Serialize)]
pub struct LiveEvent {
    #[serde(skip)]
    pub tenant_id: String,
    pub call_id: String,
    #[serde(flatten)]
    pub event: TimelineEvent,
}

#[derive(Clone)]
pub struct LiveFeed {
    tx: broadcast::Sender<Arc<LiveEvent>>,
    fleet: Option<Arc<FleetOut>>,
}

impl Default for LiveFeed {
    fn default() -> Self {
        LiveFeed { tx: broadcast::channel(CAPACITY).0, fleet: None }
    }
}

impl LiveFeed {
    /// A feed that also carries the other nodes' events, through the shared hot state.
    pub fn fleet(hot: Arc<dyn HotState>, node_id: &str, stop: CancellationToken) -> Self {
        let tx = broadcast::channel(CAPACITY).0;
        let fleet = crate::live_fleet::start(tx.clone(), hot, node_id.to_string(), stop);
        LiveFeed { tx, fleet: Some(fleet) }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        let rx = self.tx.subscribe();
        if let Some(f) = &self.fleet {
            f.watcher_joined();
        }
        rx
    }

    /// Whether some node of the fleet has watchers (always false on a single node).
    pub fn fleet_wanted(&self) -> bool {
        self.fleet.as_ref().is_some_and(|f| f.wanted())
    }

    pub fn watching(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    fn publish(&self, tenant_id: &str, call_id: &str, events: &[TimelineEvent]) {
        for e in events {
            let _ = self.tx.send(Arc::new(LiveEvent { tenant_id: tenant_id.to_string(), call_id: call_id.to_string(), event: e.clone() }));
        }
    }
}

/// A timeline store that also publishes what it appends to a [`LiveFeed`].
pub struct LiveTimeline {
    inner: Arc<dyn TimelineStore>,
    feed: LiveFeed,
}

impl LiveTimeline {
    pub fn new(inner: Arc<dyn TimelineStore>, feed: LiveFeed) -> Self {
        LiveTimeline { inner, feed }
    }
}

#[async_trait]
impl TimelineStore for LiveTimeline {
    async fn append(&self, tenant_id: &str, call_id: &str, events: &[TimelineEvent]) -> Result<()> {
        let r = self.inner.append(tenant_id, call_id, events).await;
        if r.is_ok() {
            if self.feed.watching() {
                self.feed.publish(tenant_id, call_id, events);
            }
            if let Some(f) = self.feed.fleet.as_ref().filter(|f| f.wanted()) {
                f.send(tenant_id, call_id, events);
            }
        }
        r
    }

    async fn timeline(&self, tenant_id: &str, call_id: &str) -> Result<Vec<TimelineEvent>> {
        self.inner.timeline(tenant_id, call_id).await
    }

    async fn calls(&self, tenant_id: &str, limit: usize) -> Result<Vec<CallSummary>> {
        self.inner.calls(tenant_id, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callfunnel_data::MemoryTimeline;
    use serde_json::json;

    #[tokio::test]
    async fn appends_reach_watchers_and_the_store() {
        let feed = LiveFeed::default();
        let t = LiveTimeline::new(Arc::new(MemoryTimeline::default()), feed.clone());
        t.append("acme", "c1", &[TimelineEvent::new(0, 1, "unwatched", json!({}))]).await.unwrap();
        let mut rx = feed.subscribe();
        t.append("acme", "c1", &[TimelineEvent::new(5, 2, "transcript", json!({"text": "hi"}))]).await.unwrap();
        let e = rx.recv().await.unwrap();
        assert_eq!((e.tenant_id.as_str(), e.call_id.as_str(), e.event.kind.as_str()), ("acme", "c1", "transcript"));
        let wire = serde_json::to_value(&*e).unwrap();
        assert_eq!((wire["call_id"].clone(), wire["kind"].clone(), wire["data"]["text"].clone(), wire.get("tenant_id")), (json!("c1"), json!("transcript"), json!("hi"), None));
        assert_eq!(t.timeline("acme", "c1").await.unwrap().len(), 2);
        assert!(rx.try_recv().is_err());
    }
}
