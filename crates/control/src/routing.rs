//! Call plans: what we decided about a call before its media stream arrived (tenant, agent,
//! direction, screening), keyed by our call id. A webhook or the outbound API writes the plan;
//! the media WebSocket takes it. The stream's own parameters are never trusted for tenancy when
//! a plan exists.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use callfunnel_media::carrier::Carrier;
use callfunnel_media::engine::ScreeningConfig;
use parking_lot::Mutex;
use serde::Serialize;

/// Plans not taken within this long are dropped (the carrier never connected).
const PLAN_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallPlan {
    pub tenant_id: String,
    pub agent_id: String,
    pub from: String,
    pub to: String,
    pub direction: Direction,
    pub carrier: Carrier,
    /// The carrier's id for the call (Twilio `CallSid`, Exotel `CallSid`) once known.
    pub carrier_sid: String,
    #[serde(skip)]
    pub screening: Option<ScreeningConfig>,
}

#[derive(Default)]
pub struct Plans {
    plans: Mutex<HashMap<String, (CallPlan, Instant)>>,
    /// Whose call each planned call is, kept after the plan is removed: carrier callbacks
    /// that come after the stream ended still land in the right tenant's timeline.
    owners: Mutex<HashMap<String, (String, Instant)>>,
}

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

    /// The plan of `call_id`, left in place (the carrier may reconnect the stream once).
    pub fn get(&self, call_id: &str) -> Option<CallPlan> {
        self.plans.lock().get(call_id).filter(|(_, at)| at.elapsed() < PLAN_TTL).map(|(p, _)| p.clone())
    }

    pub fn set_carrier_sid(&self, call_id: &str, sid: &str) {
        if let Some((p, _)) = self.plans.lock().get_mut(call_id) {
            p.carrier_sid = sid.to_string();
        }
    }

    pub fn remove(&self, call_id: &str) {
        self.plans.lock().remove(call_id);
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
