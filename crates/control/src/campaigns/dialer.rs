//! The campaign dialer: every tick it settles the calls it placed (from their timelines), then
//! for each running campaign whose window is open it claims due contacts — atomically in the
//! control store, so several nodes can dial one campaign — up to the campaign's concurrency
//! and places their calls. Unanswered, busy, failed and voicemail calls are retried with
//! doubling backoff; a campaign with nothing left to dial is completed (webhook
//! `campaign.completed`). A plan limit puts the contact back without counting an attempt.

use std::collections::HashMap;
use std::time::Duration;

use callfunnel_data::control::{Campaign, CampaignContact, CampaignStatus};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::settings::CampaignSettings;
use crate::http::AppState;
use crate::http::outbound::{PlaceCall, place_call};

struct InFlight {
    tenant: String,
    campaign: String,
    contact: i64,
    attempts: i32,
    settings: CampaignSettings,
    placed: std::time::Instant,
}

#[derive(Default)]
pub struct Dialer {
    in_flight: Mutex<HashMap<String, InFlight>>,
    /// Contacts waiting to be dialled in campaigns whose calling window is open (retries
    /// waiting for their time included), as of the last tick: the fleet's dial backlog, the
    /// same on every node (it is read from the shared store) — the autoscaling signal.
    backlog: std::sync::atomic::AtomicU64,
}

/// A call nobody settled within this long is counted as failed.
const LOST_AFTER: Duration = Duration::from_secs(3 * 3600);

/// What became of a call, from its timeline; `None` while it is still going.
pub fn outcome(events: &[Value]) -> Option<&'static str> {
    for e in events.iter().rev() {
        if e["kind"] == "carrier_status" && e["data"]["stale"] != true {
            match e["data"]["status"].as_str() {
                Some("busy") => return Some("busy"),
                Some("no-answer") => return Some("no-answer"),
                Some("failed") | Some("canceled") => return Some("failed"),
                _ => {}
            }
        }
    }
    if events.iter().any(|e| e["kind"] == "call_ended") {
        let machine = events.iter().any(|e| e["kind"] == "answered_by" && e["data"]["answered_by"].as_str().is_some_and(|a| a.starts_with("machine") || a == "fax"));
        return Some(if machine { "voicemail" } else { "completed" });
    }
    None
}

impl Dialer {
    pub fn in_flight(&self) -> usize {
        self.in_flight.lock().len()
    }

    /// The dial backlog as of the last tick (see the field).
    pub fn backlog(&self) -> u64 {
        self.backlog.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn run(self: std::sync::Arc<Self>, s: AppState, every: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
            self.settle(&s).await;
            self.renew_claims(&s).await;
            if s.draining.is_cancelled() {
                continue; // a draining node settles its calls but places no new ones
            }
            match s.stores.control.running_campaigns().await {
                Ok(cs) => {
                    let mut backlog = 0;
                    for c in cs {
                        backlog += self.dial(&s, &c).await;
                    }
                    self.backlog.store(backlog, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, "running campaigns not read"),
            }
        }
        // contacts claimed but never dialled go back to the queue (none are: claims are dialled at once)
    }

    /// Records the outcome of every placed call that has one.
    async fn settle(&self, s: &AppState) {
        let ids: Vec<(String, String)> = self.in_flight.lock().iter().map(|(id, f)| (id.clone(), f.tenant.clone())).collect();
        for (call_id, tenant) in ids {
            let events: Vec<Value> = match s.store.timeline(&tenant, &call_id).await {
                Ok(ev) => ev.into_iter().filter_map(|e| serde_json::to_value(e).ok()).collect(),
                Err(e) => {
                    tracing::warn!(call_id, error = %e, "campaign call timeline not read");
                    continue;
                }
            };
            let lost = self.in_flight.lock().get(&call_id).is_some_and(|f| f.placed.elapsed() > LOST_AFTER);
            let Some(result) = outcome(&events).or(lost.then_some("failed")) else { continue };
            let Some(f) = self.in_flight.lock().remove(&call_id) else { continue };
            self.finish(s, &f, result, Some(&call_id)).await;
        }
    }

    /// Renews this node's claims on the contacts it is dialling (one write per campaign).
    async fn renew_claims(&self, s: &AppState) {
        let mut mine: HashMap<(String, String), Vec<i64>> = HashMap::new();
        for f in self.in_flight.lock().values() {
            mine.entry((f.tenant.clone(), f.campaign.clone())).or_default().push(f.contact);
        }
        for ((tenant, campaign), ids) in mine {
            if let Err(e) = s.stores.control.touch_contacts(&tenant, &campaign, &ids).await {
                tracing::warn!(campaign, error = %e, "campaign claims not renewed");
            }
        }
    }

    /// Settles contacts claimed by a node that stopped renewing its claims (it crashed or was
    /// cut off): a `node_lost` attempt, retried like `failed`.
    async fn take_over_stale(&self, s: &AppState, c: &Campaign, settings: &CampaignSettings) -> bool {
        let older_than = chrono::Utc::now().timestamp_millis() - s.config.campaigns.claim_stale_ms as i64;
        let stale = match s.stores.control.stale_contacts(&c.tenant_id, &c.id, older_than).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(campaign = c.id, error = %e, "stale campaign claims not read");
                return false;
            }
        };
        let any = !stale.is_empty();
        for contact in stale {
            // claims this node holds are renewed every tick: a stale one is never ours, unless
            // this node stalled for longer than claim_stale_ms (then it is settled twice: the
            // second finish finds it no longer dialing and changes nothing)
            tracing::warn!(campaign = c.id, contact = contact.id, "contact claimed by a node that stopped: taken over");
            let f = InFlight { tenant: c.tenant_id.clone(), campaign: c.id.clone(), contact: contact.id, attempts: contact.attempts, settings: settings.clone(), placed: std::time::Instant::now() };
            self.finish(s, &f, "node_lost", None).await;
        }
        any
    }

    async fn finish(&self, s: &AppState, f: &InFlight, result: &str, call_id: Option<&str>) {
        let attempts = f.attempts + 1;
        let retried_as = if result == "node_lost" { "failed" } else { result };
        let retry = result != "completed" && f.settings.retry_on.iter().any(|r| r == retried_as) && (attempts as u32) < f.settings.max_attempts;
        let retry_at = retry.then(|| chrono::Utc::now().timestamp_millis() + f.settings.backoff_ms(attempts));
        if let Err(e) = s.stores.control.finish_contact(&f.tenant, &f.campaign, f.contact, result, call_id, retry_at).await {
            tracing::warn!(campaign = f.campaign, contact = f.contact, error = %e, "campaign contact outcome not saved");
        }
        tracing::info!(campaign = f.campaign, contact = f.contact, result, retry = retry_at.is_some(), "campaign call settled");
    }

    /// Dials what the campaign's concurrency allows now; returns its backlog (contacts
    /// waiting while its window is open, 0 otherwise).
    async fn dial(&self, s: &AppState, c: &Campaign) -> u64 {
        let settings: CampaignSettings = match serde_json::from_value(c.window.clone()) {
            Ok(st) => st,
            Err(e) => {
                tracing::warn!(campaign = c.id, error = %e, "campaign settings unreadable: not dialling");
                return 0;
            }
        };
        let mine = self.in_flight.lock().values().filter(|f| f.tenant == c.tenant_id && f.campaign == c.id).count() as u32;
        let read = async || s.stores.control.campaign_progress(&c.tenant_id, &c.id).await.map_err(|e| tracing::warn!(campaign = c.id, error = %e, "campaign progress not read")).ok();
        let Some(mut progress) = read().await else { return 0 };
        if progress.dialing > i64::from(mine) && self.take_over_stale(s, c, &settings).await {
            let Some(p) = read().await else { return 0 };
            progress = p;
        }
        if progress.pending == 0 && progress.dialing == 0 && mine == 0 {
            self.complete(s, c, &progress).await;
            return 0;
        }
        if !settings.open_at(chrono::Utc::now()) {
            return 0;
        }
        let backlog = progress.pending.max(0) as u64;
        // the campaign's concurrency counts its calls on every node (`dialing` in the store)
        let free = settings.concurrency.saturating_sub((progress.dialing as u32).max(mine));
        if free == 0 {
            return backlog;
        }
        let contacts = match s.stores.control.next_contacts(&c.tenant_id, &c.id, free).await {
            Ok(cs) => cs,
            Err(e) => {
                tracing::warn!(campaign = c.id, error = %e, "campaign contacts not claimed");
                return backlog;
            }
        };
        for (i, contact) in contacts.iter().enumerate() {
            if !self.place(s, c, &settings, contact).await {
                // a plan limit: every contact not yet dialled goes back, no attempt counted
                for rest in &contacts[i..] {
                    let _ = s.stores.control.release_contact(&c.tenant_id, &c.id, rest.id).await;
                }
                break;
            }
        }
        backlog
    }

    /// Places one contact's call; false when a plan limit refused it (try later).
    async fn place(&self, s: &AppState, c: &Campaign, settings: &CampaignSettings, contact: &CampaignContact) -> bool {
        let req = PlaceCall { to: contact.number.clone(), from: settings.from.clone(), carrier: settings.carrier.clone(), agent_id: Some(c.agent_id.clone()), screen: None, voicemail: None, variables: Some(contact.vars.clone()), campaign_id: Some(c.id.clone()) };
        let f = InFlight { tenant: c.tenant_id.clone(), campaign: c.id.clone(), contact: contact.id, attempts: contact.attempts, settings: settings.clone(), placed: std::time::Instant::now() };
        match place_call(s, &c.tenant_id, req).await {
            Ok(v) => {
                let call_id = v["call_id"].as_str().unwrap_or_default().to_string();
                self.in_flight.lock().insert(call_id, f);
                true
            }
            Err(e) if e.status == axum::http::StatusCode::TOO_MANY_REQUESTS || e.status == axum::http::StatusCode::PAYMENT_REQUIRED => {
                tracing::info!(campaign = c.id, code = e.code, "campaign paused by a plan limit until it frees up");
                false
            }
            Err(e) => {
                tracing::warn!(campaign = c.id, contact = contact.id, code = e.code, message = e.message, "campaign call not placed");
                self.finish(s, &f, "failed", None).await;
                true
            }
        }
    }

    async fn complete(&self, s: &AppState, c: &Campaign, p: &callfunnel_data::control::CampaignProgress) {
        if let Err(e) = s.stores.control.set_campaign_status(&c.tenant_id, &c.id, CampaignStatus::Completed).await {
            return tracing::warn!(campaign = c.id, error = %e, "campaign not completed");
        }
        tracing::info!(campaign = c.id, "campaign completed");
        s.webhooks.emit(&c.tenant_id, "campaign.completed", json!({"campaign_id": c.id, "total": p.total, "done": p.done, "failed": p.failed, "attempts": p.attempts})).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_come_from_the_timeline() {
        let ev = |k: &str, d: Value| json!({"kind": k, "data": d});
        assert_eq!(outcome(&[ev("carrier_call", json!({}))]), None);
        assert_eq!(outcome(&[ev("carrier_status", json!({"status": "ringing"})), ev("carrier_status", json!({"status": "busy"}))]), Some("busy"));
        assert_eq!(outcome(&[ev("carrier_status", json!({"status": "no-answer"}))]), Some("no-answer"));
        assert_eq!(outcome(&[ev("carrier_status", json!({"status": "busy", "stale": true}))]), None, "a stale callback changes nothing");
        assert_eq!(outcome(&[ev("call_started", json!({})), ev("call_ended", json!({}))]), Some("completed"));
        assert_eq!(outcome(&[ev("answered_by", json!({"answered_by": "machine"})), ev("call_ended", json!({}))]), Some("voicemail"));
    }
}
