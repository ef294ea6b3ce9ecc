//! Records a call's timeline without blocking the call: events go through a bounded channel
//! to a writer task that appends them to the store in batches.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use callfunnel_data::{TimelineEvent, TimelineStore};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

#[derive(Clone)]
pub struct Recorder {
    t0: Instant,
    unix0: u64,
    tx: mpsc::Sender<TimelineEvent>,
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Recorder {
    pub fn start(tenant_id: String, call_id: String, store: Arc<dyn TimelineStore>) -> (Recorder, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<TimelineEvent>(1024);
        let writer = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(64);
            while let Some(e) = rx.recv().await {
                batch.push(e);
                while batch.len() < 64 {
                    match rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                if let Err(e) = store.append(&tenant_id, &call_id, &batch).await {
                    tracing::error!(tenant_id, call_id, error = %e, lost = batch.len(), "timeline write failed");
                }
                batch.clear();
            }
        });
        (Recorder { t0: Instant::now(), unix0: unix_ms(), tx }, writer)
    }

    /// Milliseconds since the call started.
    pub fn elapsed_ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    pub fn record(&self, kind: &str, data: serde_json::Value) {
        let at_ms = self.elapsed_ms();
        let e = TimelineEvent::new(at_ms, self.unix0 + at_ms, kind, data);
        if let Err(e) = self.tx.try_send(e) {
            tracing::warn!(kind, error = %e, "timeline queue full: event dropped");
        }
    }
}
