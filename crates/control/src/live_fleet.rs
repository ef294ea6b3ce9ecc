//! The live feed across a fleet. A console connects to one node, but the tenant's calls run on
//! all of them: with a shared hot state (Redis), each node passes its timeline writes to the
//! others over one pub/sub channel, and each node hands what the others wrote to its own
//! watchers.
//!
//! Nobody watching costs nothing per event: a node with watchers raises a fleet-wide flag
//! (refreshed while they stay), and the nodes publish only while it is up. A node that gets
//! its first watcher also says so on a second channel every node listens to, so the others
//! start at once; the flag, read once a second, keeps them going and stops them after the
//! watchers left. Publishing is off the call path: a bounded queue, dropped (and counted) when
//! full, never waited on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use callfunnel_data::TimelineEvent;
use callfunnel_data::hot::{EventStream, HotState};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::live::LiveEvent;

/// The pub/sub channel the nodes share (a name in the call-event namespace no call id takes).
const CHANNEL: &str = "_fleet_live_events";
/// Where a node announces its first watcher (every node listens).
const WATCH_CHANNEL: &str = "_fleet_live_watch";
/// Up while some node has watchers.
const FLAG: &str = "_live_watched";
const FLAG_TTL: Duration = Duration::from_secs(10);
const FLAG_REFRESH: Duration = Duration::from_secs(3);
/// How often a node re-reads the flag and its own watchers.
const TICK: Duration = Duration::from_secs(1);
/// A node keeps its subscription this long after its last watcher left (a console reloading).
const IDLE: Duration = Duration::from_secs(30);
/// Batches waiting to be published before new ones are dropped.
const QUEUE: usize = 4096;

/// This node's side of the fleet feed, held by the [`crate::live::LiveFeed`].
pub struct FleetOut {
    node: String,
    /// Whether any node has watchers (the flag, as last read).
    wanted: AtomicBool,
    queue: mpsc::Sender<Value>,
    /// Woken when a watcher connects here, so the flag goes up at once.
    wake: Notify,
    dropped: AtomicU64,
}

impl FleetOut {
    pub(crate) fn wanted(&self) -> bool {
        self.wanted.load(Ordering::Relaxed)
    }

    pub(crate) fn watcher_joined(&self) {
        self.wake.notify_one();
    }

    /// Queues a batch for the other nodes; never waits.
    pub(crate) fn send(&self, tenant_id: &str, call_id: &str, events: &[TimelineEvent]) {
        let msg = json!({"node": self.node, "tenant_id": tenant_id, "call_id": call_id, "events": events});
        if self.queue.try_send(msg).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "live events for other nodes' watchers dropped: the publish queue is full");
            }
        }
    }
}

/// Starts the fleet feed for `local` (this node's live channel): a publisher and a watcher task,
/// both ending with `stop`.
pub(crate) fn start(local: broadcast::Sender<Arc<LiveEvent>>, hot: Arc<dyn HotState>, node: String, stop: CancellationToken) -> Arc<FleetOut> {
    let (queue, rx) = mpsc::channel(QUEUE);
    let out = Arc::new(FleetOut { node, wanted: AtomicBool::new(false), queue, wake: Notify::new(), dropped: AtomicU64::new(0) });
    tokio::spawn(publish(hot.clone(), rx, stop.clone()));
    tokio::spawn(watch(local, out.clone(), hot, stop));
    out
}

async fn publish(hot: Arc<dyn HotState>, mut rx: mpsc::Receiver<Value>, stop: CancellationToken) {
    let mut failing = false;
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        match hot.publish(CHANNEL, &msg).await {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!("cannot pass live events to the other nodes: {e}");
            }
            Err(_) => {}
        }
    }
}

async fn next(sub: &mut Option<EventStream>) -> Option<Value> {
    match sub {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

struct Watch {
    /// The other nodes' events (while this node has watchers).
    sub: Option<EventStream>,
    /// Announcements of first watchers (always).
    announced: Option<EventStream>,
    last_local: Option<Instant>,
    raised: Option<Instant>,
}

impl Watch {
    /// Raises the flag and subscribes while this node has watchers, lets go after `IDLE`
    /// without them, and re-reads whether anyone watches.
    async fn refresh(&mut self, hot: &dyn HotState, local: &broadcast::Sender<Arc<LiveEvent>>, out: &FleetOut) {
        if self.announced.is_none() {
            match hot.subscribe(WATCH_CHANNEL).await {
                Ok(s) => self.announced = Some(s),
                Err(e) => tracing::warn!("cannot hear the other nodes' watchers: {e}"),
            }
        }
        if local.receiver_count() > 0 {
            self.last_local = Some(Instant::now());
            if self.sub.is_none() {
                match hot.subscribe(CHANNEL).await {
                    Ok(s) => {
                        tracing::info!("live events: watchers here, listening to the other nodes");
                        self.sub = Some(s);
                    }
                    Err(e) => tracing::warn!("cannot hear the other nodes' live events: {e}"),
                }
            }
            if self.raised.is_none_or(|t| t.elapsed() >= FLAG_REFRESH) {
                // listening first, then asking: nothing published in between is missed
                let was_down = self.raised.is_none_or(|t| t.elapsed() >= FLAG_TTL);
                match hot.set_flag(FLAG, FLAG_TTL).await {
                    Ok(()) => {
                        if was_down {
                            let _ = hot.publish(WATCH_CHANNEL, &json!({"node": out.node})).await;
                        }
                        self.raised = Some(Instant::now());
                    }
                    Err(e) => tracing::warn!("cannot ask the other nodes for live events: {e}"),
                }
            }
        } else if self.sub.is_some() && self.last_local.is_none_or(|t| t.elapsed() > IDLE) {
            tracing::info!("live events: no watchers here any more, not listening to the other nodes");
            self.sub = None;
            self.raised = None;
        }
        let wanted = hot.flag(FLAG).await.unwrap_or(false);
        set_wanted(out, wanted);
    }
}

fn set_wanted(out: &FleetOut, wanted: bool) {
    if out.wanted.swap(wanted, Ordering::Relaxed) != wanted {
        tracing::info!(wanted, "live events: {} this node's events to the fleet", if wanted { "passing" } else { "no longer passing" });
    }
}

async fn watch(local: broadcast::Sender<Arc<LiveEvent>>, out: Arc<FleetOut>, hot: Arc<dyn HotState>, stop: CancellationToken) {
    let mut w = Watch { sub: None, announced: None, last_local: None, raised: None };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => w.refresh(hot.as_ref(), &local, &out).await,
            _ = out.wake.notified() => w.refresh(hot.as_ref(), &local, &out).await,
            m = next(&mut w.sub) => match m {
                Some(m) => deliver(&local, &out.node, m),
                None => w.sub = None, // the connection ended: subscribe again on the next tick
            },
            m = next(&mut w.announced) => match m {
                Some(_) => set_wanted(&out, true), // a node has a new watcher: start now
                None => w.announced = None,
            },
        }
    }
}

/// Hands another node's batch to this node's watchers.
fn deliver(local: &broadcast::Sender<Arc<LiveEvent>>, node: &str, mut m: Value) {
    if m["node"].as_str() == Some(node) || local.receiver_count() == 0 {
        return;
    }
    let (Some(tenant), Some(call)) = (m["tenant_id"].as_str().map(str::to_string), m["call_id"].as_str().map(str::to_string)) else {
        return;
    };
    let events: Vec<TimelineEvent> = match serde_json::from_value(m["events"].take()) {
        Ok(e) => e,
        Err(e) => return tracing::warn!("skipping another node's live events: {e}"),
    };
    for event in events {
        let _ = local.send(Arc::new(LiveEvent { tenant_id: tenant.clone(), call_id: call.clone(), event }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::{LiveFeed, LiveTimeline};
    use callfunnel_data::hot::MemoryHotState;
    use callfunnel_data::{MemoryTimeline, TimelineStore};

    #[tokio::test]
    async fn another_nodes_writes_reach_this_nodes_watchers_only_while_watched() {
        let hot: Arc<dyn HotState> = Arc::new(MemoryHotState::new());
        let stop = CancellationToken::new();
        let (a, b) = (LiveFeed::fleet(hot.clone(), "node-a", stop.clone()), LiveFeed::fleet(hot.clone(), "node-b", stop.clone()));
        let on_a = LiveTimeline::new(Arc::new(MemoryTimeline::default()), a.clone());
        // nobody watches anywhere: nothing is published
        on_a.append("acme", "c1", &[TimelineEvent::new(0, 1, "unwatched", json!({}))]).await.unwrap();
        assert!(!a.fleet_wanted());
        let mut rx = b.subscribe();
        tokio::time::timeout(Duration::from_secs(3), async {
            while !a.fleet_wanted() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("a watcher on node-b raises the flag that node-a reads");
        on_a.append("acme", "c1", &[TimelineEvent::new(5, 2, "transcript", json!({"text": "hi"}))]).await.unwrap();
        let e = tokio::time::timeout(Duration::from_secs(3), rx.recv()).await.expect("node-a's event reaches node-b").unwrap();
        assert_eq!((e.tenant_id.as_str(), e.call_id.as_str(), e.event.kind.as_str(), e.event.data["text"].as_str()), ("acme", "c1", "transcript", Some("hi")));
        assert!(rx.try_recv().is_err(), "the unwatched event was not replayed");
        // node-a's own watcher gets its events once, locally, not again through the channel
        let mut own = a.subscribe();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        on_a.append("acme", "c2", &[TimelineEvent::new(0, 3, "call_started", json!({}))]).await.unwrap();
        assert_eq!(own.recv().await.unwrap().call_id, "c2");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(own.try_recv().is_err(), "no echo of node-a's own events");
        assert_eq!(rx.recv().await.unwrap().call_id, "c2");
        stop.cancel();
    }
}
