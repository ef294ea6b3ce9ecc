//! Tenant webhooks: `call.started`, `call.ended`, `call.analyzed`, `campaign.completed`.
//! Each event becomes one delivery per subscribed endpoint, saved before the first attempt
//! (the per-tenant delivery log), POSTed with an HMAC signature (see [`sign`]) and retried with
//! exponential backoff until delivered or out of attempts. Pending deliveries survive a restart:
//! the worker also polls the store for due ones. At-least-once: receivers dedupe on
//! `Callfunnel-Delivery`.

pub mod sign;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use callfunnel_data::control::{ControlStore, DeliveryStatus, WebhookDelivery};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

pub const EVENTS: [&str; 4] = ["call.started", "call.ended", "call.analyzed", "campaign.completed"];

/// Attempts before a delivery is marked failed.
pub const MAX_ATTEMPTS: i32 = 8;

/// Sends the HTTP request of one attempt: (status, error). Tests and the SSRF guard plug in here.
#[async_trait::async_trait]
pub trait Sender: Send + Sync {
    async fn post(&self, url: &str, headers: Vec<(&'static str, String)>, body: String) -> Result<u16, String>;
}

pub struct Webhooks {
    control: Arc<dyn ControlStore>,
    sender: Arc<dyn Sender>,
    queue: mpsc::Sender<WebhookDelivery>,
    in_flight: Mutex<HashSet<String>>,
    base_backoff: Duration,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Backoff before attempt `n + 1` after `n` failures: base · 2^(n-1), at most an hour.
pub fn backoff(base: Duration, failures: i32) -> Duration {
    let f = base.saturating_mul(1 << (failures - 1).clamp(0, 20) as u32);
    f.min(Duration::from_secs(3600))
}

impl Webhooks {
    /// Starts the delivery worker; `base_backoff` is the first retry delay (1 s in production).
    pub fn start(control: Arc<dyn ControlStore>, sender: Arc<dyn Sender>, base_backoff: Duration, shutdown: CancellationToken) -> Arc<Webhooks> {
        let (tx, rx) = mpsc::channel(1024);
        let w = Arc::new(Webhooks { control, sender, queue: tx, in_flight: Mutex::new(HashSet::new()), base_backoff });
        tokio::spawn(w.clone().worker(rx, shutdown));
        w
    }

    /// As [`Webhooks::emit`], in the background (a call's setup never waits on the store).
    pub fn emit_later(self: &Arc<Self>, tenant: &str, event: &'static str, data: Value) {
        let (me, tenant) = (self.clone(), tenant.to_string());
        if event == "call.ended" { callfunnel_metrics::call_ended(data["direction"].as_str().unwrap_or("unknown"), data["carrier"].as_str().unwrap_or("unknown"), data["end"]["end"].as_str().unwrap_or("unknown")) }
        tokio::spawn(async move { me.emit(&tenant, event, data).await });
    }

    /// Records `event` for every endpoint of `tenant` subscribed to it and queues the deliveries.
    pub async fn emit(&self, tenant: &str, event: &str, data: Value) {
        let hooks = match self.control.webhooks(tenant).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(tenant, event, error = %e, "webhooks not read: event not delivered");
                return;
            }
        };
        for h in hooks.into_iter().filter(|h| h.events.iter().any(|e| e == event || e == "*")) {
            let id = format!("dlv_{}", uuid::Uuid::new_v4().simple());
            let at = now_ms();
            let payload = json!({"id": id, "event": event, "created_at": at, "tenant_id": tenant, "data": data}).to_string();
            let d = WebhookDelivery { id, tenant_id: tenant.into(), webhook_id: h.id, event: event.into(), payload, status: DeliveryStatus::Pending, attempts: 0, last_error: None, response_status: None, next_attempt_at: Some(at), created_at: at, updated_at: at };
            if let Err(e) = self.control.save_delivery(&d).await {
                tracing::warn!(tenant, event, error = %e, "webhook delivery not recorded");
                continue;
            }
            // a full queue is fine: the poller finds the saved delivery
            let _ = self.queue.try_send(d);
        }
    }

    async fn worker(self: Arc<Self>, mut rx: mpsc::Receiver<WebhookDelivery>, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(16));
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            let batch = tokio::select! {
                _ = shutdown.cancelled() => return,
                d = rx.recv() => match d { Some(d) => vec![d], None => return },
                _ = tick.tick() => match self.control.due_deliveries(now_ms(), 64).await {
                    Ok(d) => d,
                    Err(e) => { tracing::warn!(error = %e, "due webhook deliveries not read"); Vec::new() }
                },
            };
            for d in batch {
                if !self.in_flight.lock().insert(d.id.clone()) {
                    continue;
                }
                let Ok(permit) = slots.clone().acquire_owned().await else { return };
                let me = self.clone();
                tokio::spawn(async move {
                    let id = d.id.clone();
                    me.attempt(d).await;
                    me.in_flight.lock().remove(&id);
                    drop(permit);
                });
            }
        }
    }

    async fn attempt(&self, mut d: WebhookDelivery) {
        let hook = match self.control.webhooks(&d.tenant_id).await {
            Ok(hs) => hs.into_iter().find(|h| h.id == d.webhook_id),
            Err(e) => {
                tracing::warn!(error = %e, "webhook not read; retrying later");
                return;
            }
        };
        let now = now_ms();
        d.attempts += 1;
        d.updated_at = now;
        let outcome = match &hook {
            None => Err((None, "the webhook was deleted".to_string(), false)),
            Some(h) => {
                let ts = now / 1000;
                let headers = vec![
                    ("content-type", "application/json".to_string()),
                    ("user-agent", "callfunnel-webhooks/1".to_string()),
                    ("callfunnel-event", d.event.clone()),
                    ("callfunnel-delivery", d.id.clone()),
                    (sign::HEADER, sign::sign(&h.secret, ts, d.payload.as_bytes())),
                ];
                match self.sender.post(&h.url, headers, d.payload.clone()).await {
                    Ok(st) if (200..300).contains(&st) => Ok(st),
                    Ok(st) => Err((Some(st as i32), format!("HTTP {st}"), true)),
                    Err(e) => Err((None, e, true)),
                }
            }
        };
        match outcome {
            Ok(st) => {
                d.status = DeliveryStatus::Delivered;
                d.response_status = Some(st as i32);
                d.last_error = None;
                d.next_attempt_at = None;
            }
            Err((st, err, retry)) => {
                d.response_status = st;
                d.last_error = Some(err.chars().take(500).collect());
                if retry && d.attempts < MAX_ATTEMPTS {
                    d.next_attempt_at = Some(now + backoff(self.base_backoff, d.attempts).as_millis() as i64);
                } else {
                    d.status = DeliveryStatus::Failed;
                    d.next_attempt_at = None;
                }
            }
        }
        callfunnel_metrics::WEBHOOK_DELIVERIES.inc([match d.status { DeliveryStatus::Delivered => "delivered", DeliveryStatus::Failed => "failed", DeliveryStatus::Pending => "retry" }]);
        tracing::debug!(delivery = d.id, status = %d.status, attempts = d.attempts, "webhook attempt");
        if let Err(e) = self.control.save_delivery(&d).await {
            tracing::warn!(delivery = d.id, error = %e, "webhook delivery outcome not saved");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let b = Duration::from_secs(1);
        assert_eq!([1, 2, 3, 4].map(|n| backoff(b, n).as_secs()), [1, 2, 4, 8]);
        assert_eq!(backoff(b, 30), Duration::from_secs(3600));
    }
}
