//! Plan limits, enforced when a call is admitted — never by cutting a live call: the tenant's
//! monthly minutes, its concurrent calls (an atomic lease in hot state, taken here and kept by
//! the call) and the providers its plan allows.

use callfunnel_data::DataError;
use callfunnel_data::control::{Metric, Plan};

use crate::config::Config;
use crate::stores::Stores;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the tenant's monthly call minutes ({0}) are used up")]
    MonthlyMinutes(u32),
    #[error("the tenant already has its maximum of {0} calls in progress")]
    Concurrency(u32),
    #[error("the tenant's plan does not allow `{0}` (nor any fallback for it)")]
    Provider(String),
    #[error("the tenant `{0}` is unknown")]
    UnknownTenant(String),
    #[error("admission could not be checked: {0}")]
    Unavailable(String),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::MonthlyMinutes(_) => "monthly_minutes_exhausted",
            Refusal::Concurrency(_) => "concurrent_call_limit",
            Refusal::Provider(_) => "provider_not_allowed",
            Refusal::UnknownTenant(_) => "tenant_not_found",
            Refusal::Unavailable(_) => "admission_unavailable",
        }
    }

    /// The API's answer to a call it may not place: 503, 429 or 402 with the refusal's code.
    pub fn api_error(&self) -> crate::http::ApiError {
        use axum::http::StatusCode;
        let status = match self {
            Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Concurrency(_) => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::PAYMENT_REQUIRED,
        };
        crate::http::ApiError::new(status, self.code(), self.to_string())
    }
}

/// What a call with `agent_id` of `tenant` would use: the agent (its latest version published
/// through the API, else its file) and its STT / TTS failover chains.
pub struct AgentNeeds {
    pub stt: Vec<String>,
    pub tts: Vec<String>,
    /// `anthropic` for an LLM agent, `local` for a rule-book.
    pub brain: String,
}

pub async fn agent_needs(stores: &Stores, cfg: &Config, tenant: &str, agent_id: &str) -> AgentNeeds {
    let mut file = None;
    if let Ok(a) = stores.control.agent(tenant, agent_id).await
        && a.latest_version > 0
        && let Ok(v) = stores.control.agent_version(tenant, agent_id, Some(a.latest_version)).await
    {
        file = crate::agents::AgentFile::from_version(&v.spec).ok();
    }
    if file.is_none() && callfunnel_data::check_id(agent_id).is_ok() {
        file = crate::agents::AgentFile::load(&cfg.agents.dir.join(format!("{agent_id}.toml"))).ok();
    }
    let profile = file.as_ref().map(|f| f.profile.clone()).unwrap_or_default();
    let llm = file.is_some_and(|f| matches!(f.brain, crate::agents::AgentBrain::Llm(_)));
    let language = profile.language.clone().unwrap_or_else(|| cfg.agents.language.clone());
    let (stt, tts) = cfg.providers.chains(&language);
    AgentNeeds { stt: profile.stt.unwrap_or(stt), tts: profile.tts.unwrap_or(tts), brain: if llm { "anthropic".into() } else { "local".into() } }
}

/// The members of `chain` a plan allows (`None`: all of them).
pub fn allowed_chain(chain: &[String], allowed: Option<&[String]>) -> Vec<String> {
    chain.iter().filter(|p| allowed.is_none_or(|a| a.contains(p))).cloned().collect()
}

/// Refuses when the plan leaves a capability with no provider (the chains themselves are
/// filtered to the allowed members when the call starts) or forbids the agent's brain.
fn check_providers(needs: &AgentNeeds, allowed: Option<&[String]>) -> Result<(), Refusal> {
    let Some(a) = allowed else { return Ok(()) };
    if !a.contains(&needs.brain) {
        return Err(Refusal::Provider(needs.brain.clone()));
    }
    for chain in [&needs.stt, &needs.tts] {
        if allowed_chain(chain, Some(a)).is_empty() {
            return Err(Refusal::Provider(chain.first().cloned().unwrap_or_default()));
        }
    }
    Ok(())
}

pub fn month_start_ms(now: chrono::DateTime<chrono::Utc>) -> i64 {
    use chrono::Datelike;
    chrono::NaiveDate::from_ymd_opt(now.year(), now.month(), 1).and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc().timestamp_millis()).unwrap_or_default()
}

/// Admits `call_id` for `tenant` or says why not. On success the call holds an active-call
/// lease on this node (released when the call ends or never connects).
pub async fn admit(stores: &Stores, cfg: &Config, tenant: &str, agent_id: &str, call_id: &str) -> Result<(), Refusal> {
    let r = admit_plan(stores, cfg, tenant, agent_id, call_id).await;
    if let Err(refusal) = &r {
        callfunnel_metrics::call_refused(refusal.code());
    }
    r
}

async fn admit_plan(stores: &Stores, cfg: &Config, tenant: &str, agent_id: &str, call_id: &str) -> Result<(), Refusal> {
    let plan: Option<Plan> = match stores.control.tenant(tenant).await {
        Ok(t) => Some(t.plan),
        // tenants of the configuration (the default one, `[[numbers]]`) need no row: no limits
        Err(DataError::NotFound { .. }) if tenant == cfg.agents.default_tenant || cfg.numbers.iter().any(|n| n.tenant_id == tenant) => None,
        Err(DataError::NotFound { .. }) => return Err(Refusal::UnknownTenant(tenant.into())),
        Err(e) => return Err(Refusal::Unavailable(e.to_string())),
    };
    let plan = plan.unwrap_or(Plan { max_concurrent_calls: None, monthly_minutes: None, retention_days: 90, allowed_providers: None });
    if plan.allowed_providers.is_some() {
        check_providers(&agent_needs(stores, cfg, tenant, agent_id).await, plan.allowed_providers.as_deref())?;
    }
    if let Some(minutes) = plan.monthly_minutes {
        let now = chrono::Utc::now();
        let used = stores.control.usage_summary(tenant, month_start_ms(now), now.timestamp_millis() + 1).await.map_err(|e| Refusal::Unavailable(e.to_string()))?;
        let ms: i64 = used.iter().filter(|u| u.metric == Metric::CallMs).map(|u| u.quantity).sum();
        if ms >= i64::from(minutes) * 60_000 {
            return Err(Refusal::MonthlyMinutes(minutes));
        }
    }
    match stores.hot.acquire_call(tenant, call_id, &stores.node_id, plan.max_concurrent_calls).await {
        Ok(()) => Ok(()),
        Err(DataError::Limit(_)) => Err(Refusal::Concurrency(plan.max_concurrent_calls.unwrap_or(0))),
        Err(e) => Err(Refusal::Unavailable(e.to_string())),
    }
}

/// Releases the lease of an admitted call whose stream has not started within `wait` (the
/// caller hung up while ringing, the carrier never connected): leases must not leak.
pub fn release_unless_started(stores: Stores, registry: std::sync::Arc<crate::calls::CallRegistry>, call_id: String, wait: std::time::Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        // the stream may have started on another node (the hot state places a live call)
        let elsewhere = matches!(stores.hot.call_node(&call_id).await, Ok(Some(_)));
        if !elsewhere && registry.get_active(&call_id).is_none() && registry.end_of(&call_id).is_none() {
            registry.plans.remove(&call_id);
            release(&stores, &call_id).await;
        }
    });
}

/// Gives back the lease of a call that was admitted but never connected.
pub async fn release(stores: &Stores, call_id: &str) {
    if let Err(e) = stores.hot.release_call(call_id).await {
        tracing::warn!(call_id, error = %e, "active-call lease not released");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn plans_filter_chains_and_refuse_only_when_nothing_is_left() {
        let needs = AgentNeeds { stt: v(&["deepgram", "local"]), tts: v(&["cartesia", "local"]), brain: "anthropic".into() };
        assert_eq!(check_providers(&needs, None), Ok(()));
        assert_eq!(check_providers(&needs, Some(&v(&["local", "anthropic"]))), Ok(()), "the on-box fallbacks carry the call");
        assert_eq!(allowed_chain(&needs.stt, Some(&v(&["local", "anthropic"]))), v(&["local"]));
        assert_eq!(check_providers(&needs, Some(&v(&["deepgram", "cartesia", "local"]))), Err(Refusal::Provider("anthropic".into())), "the brain is not allowed");
        assert_eq!(check_providers(&needs, Some(&v(&["cartesia", "anthropic"]))), Err(Refusal::Provider("deepgram".into())), "no STT left");
        assert_eq!(allowed_chain(&needs.tts, None), needs.tts);
    }
}
