//! Call plans: what we decided about a call before its media stream arrived (tenant, agent,
//! direction, screening), keyed by our call id. A webhook or the outbound API writes the plan;
//! the media WebSocket takes it. The stream's own parameters are never trusted for tenancy when
//! a plan exists. Plans are also published to the hot state (Redis in a fleet): the webhook
//! may reach one node and the media stream another.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use callfunnel_media::carrier::Carrier;
use callfunnel_media::engine::ScreeningConfig;
use parking_lot::Mutex;
use std::sync::{Arc, OnceLock};

use callfunnel_data::hot::HotState;
use serde::{Deserialize, Serialize};

/// Plans not taken within this long are dropped (the carrier never connected).
const PLAN_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallPlan {
    pub tenant_id: String,
    pub agent_id: String,
    pub from: String,
    pub to: String,
    pub direction: Direction,
    pub carrier: Carrier,
    /// The carrier's id for the call (Twilio `CallSid`, Exotel `CallSid`) once known.
    pub carrier_sid: String,
    #[serde(default)]
    pub screening: Option<ScreeningConfig>,
}

#[derive(Default)]
pub struct Plans {
    plans: Mutex<HashMap<String, (CallPlan, Instant)>>,
    /// Whose call each planned call is, kept after the plan is removed: carrier callbacks
    /// that come after the stream ended still land in the right tenant's timeline.
    owners: Mutex<HashMap<String, (String, Instant)>>,
    /// The fleet's copy (set once at start; none in unit tests).
    shared: OnceLock<Arc<dyn HotState>>,
}

/// How long a published plan lives: a carrier may reconnect a stream, and status callbacks
/// name the call, for as long as a call lasts.
const SHARED_TTL: Duration = Duration::from_secs(4 * 3600);
/// A plan lookup in the hot state may not hold up a webhook or a stream longer than this.
const SHARED_DEADLINE: Duration = Duration::from_millis(500);

impl Plans {
    pub fn insert(&self, call_id: &str, plan: CallPlan) {
        let mut g = self.plans.lock();
        g.retain(|_, (_, at)| at.elapsed() < PLAN_TTL);
        self.note_owner(call_id, &plan.tenant_id);
        g.insert(call_id.to_string(), (plan, Instant::now()));
    }

    pub fn note_owner(&self, call_id: &str, tenant_id: &str) {
        let mut o = self.owners.lock();
        o.retain(|_, (_, at)| at.elapsed() < PLAN_TTL);
        o.insert(call_id.to_string(), (tenant_id.to_string(), Instant::now()));
    }

    /// The tenant of a call planned here recently (also after its plan was removed).
    pub fn owner(&self, call_id: &str) -> Option<String> {
        self.owners.lock().get(call_id).filter(|(_, at)| at.elapsed() < PLAN_TTL).map(|(t, _)| t.clone())
    }

    /// Publishes plans to `hot` from now on.
    pub fn share_through(&self, hot: Arc<dyn HotState>) {
        let _ = self.shared.set(hot);
    }

    /// Records a plan here and publishes it to the fleet (before the carrier is told where to
    /// connect, so the node that takes the stream finds it).
    pub async fn insert_shared(&self, call_id: &str, plan: CallPlan) {
        self.insert(call_id, plan.clone());
        self.publish(call_id, &plan).await;
    }

    async fn publish(&self, call_id: &str, plan: &CallPlan) {
        let Some(hot) = self.shared.get() else { return };
        let doc = serde_json::to_value(plan).unwrap_or_default();
        match tokio::time::timeout(SHARED_DEADLINE, hot.put_plan(call_id, &doc, SHARED_TTL)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(call_id, error = %e, "call plan not shared: another node cannot take this call's stream"),
            Err(_) => tracing::error!(call_id, "call plan not shared within 500 ms"),
        }
    }

    /// The plan of `call_id`: this node's, else the fleet's (none once the stream took it).
    pub async fn lookup(&self, call_id: &str) -> Option<CallPlan> {
        if let Some(p) = self.get(call_id) {
            return Some(p);
        }
        let doc = self.shared_doc(call_id).await?;
        if doc["taken"] == true {
            return None;
        }
        serde_json::from_value(doc).map_err(|e| tracing::error!(call_id, error = %e, "shared call plan unreadable")).ok()
    }

    /// A plan no stream has taken yet, on any node (a call still ringing). A plan made here
    /// whose stream another node took is dropped.
    pub async fn untaken(&self, call_id: &str) -> Option<CallPlan> {
        if self.shared.get().is_some() && self.shared_doc(call_id).await.is_some_and(|d| d["taken"] == true) {
            self.remove(call_id);
            return None;
        }
        self.lookup(call_id).await
    }

    async fn shared_doc(&self, call_id: &str) -> Option<serde_json::Value> {
        let hot = self.shared.get()?;
        match tokio::time::timeout(SHARED_DEADLINE, hot.get_plan(call_id)).await {
            Ok(Ok(doc)) => doc,
            Ok(Err(e)) => {
                tracing::warn!(call_id, error = %e, "shared call plans unavailable");
                None
            }
            Err(_) => None,
        }
    }

    /// Whose call this is: planned here, else by any node of the fleet (also after the plan
    /// was taken).
    pub async fn owner_shared(&self, call_id: &str) -> Option<String> {
        match self.owner(call_id) {
            Some(t) => Some(t),
            None => self.shared_doc(call_id).await.and_then(|d| d["tenant_id"].as_str().map(str::to_string)),
        }
    }

    /// Notes the carrier's id for a planned call (here and in the fleet's copy).
    pub async fn set_carrier_sid_shared(&self, call_id: &str, sid: &str) {
        self.set_carrier_sid(call_id, sid);
        if let Some(p) = self.get(call_id) {
            self.publish(call_id, &p).await;
        }
    }

    /// The plan of `call_id`, left in place (the carrier may reconnect the stream once).
    pub fn get(&self, call_id: &str) -> Option<CallPlan> {
        self.plans.lock().get(call_id).filter(|(_, at)| at.elapsed() < PLAN_TTL).map(|(p, _)| p.clone())
    }

    pub fn set_carrier_sid(&self, call_id: &str, sid: &str) {
        if let Some((p, _)) = self.plans.lock().get_mut(call_id) {
            p.carrier_sid = sid.to_string();
        }
    }

    /// The plan is taken (the stream started) or dropped: gone here and in the fleet's copy,
    /// which keeps only whose call it was (carrier callbacks may reach any node).
    /// (A plan this node read from the fleet's copy is retired there too.)
    pub fn remove(&self, call_id: &str) {
        let removed = self.plans.lock().remove(call_id).map(|(p, _)| p.tenant_id);
        let Some(hot) = self.shared.get().cloned() else { return };
        let call_id = call_id.to_string();
        tokio::spawn(async move {
            let tenant = match removed {
                Some(t) => t,
                None => match hot.get_plan(&call_id).await {
                    Ok(Some(doc)) if doc["taken"] != true => doc["tenant_id"].as_str().unwrap_or_default().to_string(),
                    _ => return, // never shared, or already retired
                },
            };
            let tombstone = serde_json::json!({"taken": true, "tenant_id": tenant});
            if let Err(e) = hot.put_plan(&call_id, &tombstone, SHARED_TTL).await {
                tracing::warn!(call_id, error = %e, "shared call plan not retired");
            }
        });
    }
}

/// A call id safe for paths, file names and URLs, derived from a carrier's call id (so every
/// webhook about that call finds it again).
pub fn call_id_for(carrier: Carrier, carrier_sid: &str) -> Option<String> {
    let clean: String = carrier_sid.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(64).collect();
    if clean.is_empty() || clean.len() != carrier_sid.len() {
        return None;
    }
    Some(match carrier {
        Carrier::Twilio => clean,
        Carrier::Exotel => format!("ex-{clean}"),
        Carrier::Web => format!("web-{clean}"),
    })
}

/// A fresh call id for a call we place.
pub fn new_call_id() -> String {
    format!("c{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_are_stable_and_safe() {
        assert_eq!(call_id_for(Carrier::Twilio, "CA0123456789abcdef0123456789abcdef").as_deref(), Some("CA0123456789abcdef0123456789abcdef"));
        assert_eq!(call_id_for(Carrier::Exotel, "b6cf3a5f2c8d41e9").as_deref(), Some("ex-b6cf3a5f2c8d41e9"));
        assert_eq!(call_id_for(Carrier::Exotel, "../etc/passwd"), None);
        assert_eq!(call_id_for(Carrier::Twilio, ""), None);
        assert!(callfunnel_data::check_id(&new_call_id()).is_ok());
    }

    #[tokio::test]
    async fn another_node_takes_the_stream_with_the_shared_plan() {
        let hot: Arc<dyn HotState> = Arc::new(callfunnel_data::hot::MemoryHotState::new());
        let (a, b) = (Plans::default(), Plans::default());
        a.share_through(hot.clone());
        b.share_through(hot);
        let screening = Some(ScreeningConfig { monologue_ms: 4321, ..Default::default() });
        let plan = CallPlan { tenant_id: "t".into(), agent_id: "a".into(), from: "+1".into(), to: "+2".into(), direction: Direction::Outbound, carrier: Carrier::Exotel, carrier_sid: String::new(), screening };
        a.insert_shared("c1", plan).await;
        a.set_carrier_sid_shared("c1", "CA1").await;
        let got = b.lookup("c1").await.expect("node b finds node a's plan");
        assert_eq!((got.tenant_id.as_str(), got.carrier, got.carrier_sid.as_str(), got.direction), ("t", Carrier::Exotel, "CA1", Direction::Outbound));
        assert_eq!(got.screening.unwrap().monologue_ms, 4321, "screening travels too");
        assert!(b.lookup("c2").await.is_none());
        b.remove("c1"); // node b's stream took it (from the fleet's copy)
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(b.lookup("c1").await.is_none(), "a taken plan is not handed out again");
        assert!(a.get("c1").is_some(), "node a still holds its own copy");
        assert!(a.untaken("c1").await.is_none(), "but knows the stream took it");
        assert!(a.get("c1").is_none(), "and drops it");
        assert_eq!(b.owner_shared("c1").await.as_deref(), Some("t"), "but its owner is still known");
    }

    #[test]
    fn plans_are_kept_until_removed() {
        let p = Plans::default();
        let plan = CallPlan { tenant_id: "t".into(), agent_id: "a".into(), from: "+1".into(), to: "+2".into(), direction: Direction::Outbound, carrier: Carrier::Twilio, carrier_sid: String::new(), screening: None };
        p.insert("c1", plan);
        p.set_carrier_sid("c1", "CA1");
        assert_eq!(p.get("c1").unwrap().carrier_sid, "CA1");
        assert_eq!(p.get("c1").unwrap().tenant_id, "t");
        p.remove("c1");
        assert!(p.get("c1").is_none());
        assert_eq!(p.owner("c1").as_deref(), Some("t"), "the owner outlives the plan");
        p.remove("c1");
        assert!(p.get("c1").is_none());
    }
}
