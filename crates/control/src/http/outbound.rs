//! Placing an outbound call through Twilio or Exotel and hanging up a call: the work behind
//! `POST /v1/calls`, `POST /v1/calls/{id}/hangup` and the campaign dialer.

use axum::http::StatusCode;
use callfunnel_media::carrier::Carrier;
use callfunnel_media::engine::{CallCommand, VoicemailAction};
use callfunnel_telephony::exotel::rest::{ConnectFlow, ConnectStream};
use callfunnel_telephony::twilio::rest::{CreateCall, HangupOutcome};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::calls::outbound_screening;
use crate::routing::{new_call_id, CallPlan, Direction};

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceCall {
    /// The number to call, E.164 (`+15550100199`).
    pub to: String,
    /// Caller id (default: the carrier's configured number).
    #[serde(default)]
    pub from: Option<String>,
    /// `twilio` (default) or `exotel`.
    #[serde(default)]
    pub carrier: Option<String>,
    /// The tenant's agent that talks (default: the configured default agent).
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Check for voicemail before greeting (default true).
    #[serde(default)]
    pub screen: Option<bool>,
    /// Override the agent's voicemail answer.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub voicemail: Option<VoicemailAction>,
    /// Template variables for this call (recorded on its timeline).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Value>,
    /// Set by the campaign dialer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
}

pub fn valid_number(n: &str) -> bool {
    let digits = n.strip_prefix('+').unwrap_or(n);
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Places a call for `tenant` after admission (plan limits); returns `{call_id, carrier, carrier_sid, status}`.
pub async fn place_call(s: &AppState, tenant: &str, req: PlaceCall) -> Result<Value, ApiError> {
    if !valid_number(&req.to) {
        return Err(ApiError::bad_request("invalid_number", format!("`to` must be a phone number like +15550100199, got `{}`", req.to.chars().take(40).collect::<String>())));
    }
    let carrier = match req.carrier.as_deref().unwrap_or("twilio") {
        "twilio" => Carrier::Twilio,
        "exotel" => Carrier::Exotel,
        other => return Err(ApiError::bad_request("invalid_carrier", format!("carrier `{other}`: use `twilio` or `exotel`"))),
    };
    let a = &s.config.agents;
    let agent_id = req.agent_id.clone().unwrap_or_else(|| a.default_agent.clone());
    callfunnel_data::check_id(&agent_id).map_err(|e| ApiError::bad_request("invalid_agent_id", e.to_string()))?;
    let call_id = new_call_id();
    if let Err(r) = crate::admission::admit(&s.stores, &s.config, tenant, &agent_id, &call_id).await {
        return Err(r.api_error());
    }
    let placed = place_admitted(s, tenant, agent_id, carrier, &call_id, req).await;
    match &placed {
        Err(_) => crate::admission::release(&s.stores, &call_id).await,
        // ringing, answering machine detection and the stream's start fit well within this
        Ok(_) => crate::admission::release_unless_started(s.stores.clone(), s.registry.clone(), call_id.clone(), std::time::Duration::from_secs(u64::from(s.config.twilio.ring_timeout_secs) + 120)),
    }
    placed
}

async fn place_admitted(s: &AppState, tenant: &str, agent_id: String, carrier: Carrier, call_id: &str, req: PlaceCall) -> Result<Value, ApiError> {
    let call_id = call_id.to_string();
    let mut screening = (req.screen != Some(false)).then(outbound_screening);
    if let (Some(sc), Some(v)) = (screening.as_mut(), req.voicemail.clone()) {
        sc.voicemail = v;
    }
    let mut plan = CallPlan {
        tenant_id: tenant.to_string(),
        agent_id,
        from: String::new(),
        to: req.to.clone(),
        direction: Direction::Outbound,
        carrier,
        carrier_sid: String::new(),
        screening,
    };
    let (sid, status) = match carrier {
        Carrier::Twilio => {
            let client = s.carriers.twilio.as_ref().ok_or_else(|| not_configured("Twilio", "[twilio] account_sid and TWILIO_AUTH_TOKEN"))?;
            let t = &s.config.twilio;
            plan.from = req.from.clone().unwrap_or_else(|| t.from_number.clone());
            if plan.from.is_empty() {
                return Err(ApiError::bad_request("missing_from", "give `from` or set [twilio] from_number"));
            }
            s.registry.plans.insert_shared(&call_id, plan.clone()).await;
            let create = CreateCall {
                to: req.to.clone(),
                from: plan.from.clone(),
                url: s.public_http(&format!("/twilio/outbound/{call_id}")),
                status_callback: Some(s.public_http(&format!("/twilio/status/{call_id}"))),
                machine_detection: (!t.machine_detection.is_empty() && plan.screening.is_some()).then(|| t.machine_detection.clone()),
                async_amd_status_callback: Some(s.public_http(&format!("/twilio/amd/{call_id}"))),
                timeout_secs: Some(t.ring_timeout_secs),
                ..Default::default()
            };
            let call = client.create_call(&create).await.map_err(|e| {
                s.registry.plans.remove(&call_id);
                carrier_error("Twilio", e)
            })?;
            (call.sid, call.status)
        }
        Carrier::Web => return Err(ApiError::bad_request("invalid_carrier", "browser calls are made with POST /v1/calls/web")),
        Carrier::Exotel => {
            let client = s.carriers.exotel.as_ref().ok_or_else(|| not_configured("Exotel", "[exotel] account_sid, EXOTEL_API_KEY and EXOTEL_API_TOKEN"))?;
            let e = &s.config.exotel;
            plan.from = req.from.clone().unwrap_or_else(|| e.caller_id.clone());
            if plan.from.is_empty() {
                return Err(ApiError::bad_request("missing_from", "give `from` or set [exotel] caller_id"));
            }
            s.registry.plans.insert_shared(&call_id, plan.clone()).await;
            let status_callback = Some(s.public_http(&format!("/exotel/status/{call_id}")));
            let result = if e.flow_app_id.is_empty() {
                let stream = ConnectStream {
                    from: req.to.clone(),
                    caller_id: plan.from.clone(),
                    stream_url: with_credentials(&s.media_url("exotel", &call_id, Some(e.sample_rate)), s.carriers.exotel_stream_auth.as_ref().map(|a| a.expose())),
                    status_callback,
                    custom_field: Some(call_id.clone()),
                    ..Default::default()
                };
                client.connect_stream(&stream).await
            } else {
                let flow = ConnectFlow {
                    from: req.to.clone(),
                    caller_id: plan.from.clone(),
                    url: format!("http://my.exotel.com/{}/exoml/start_voice/{}", e.account_sid, e.flow_app_id),
                    status_callback,
                    custom_field: Some(call_id.clone()),
                    ..Default::default()
                };
                client.connect_flow(&flow).await
            };
            let call = result.map_err(|err| {
                s.registry.plans.remove(&call_id);
                carrier_error("Exotel", err)
            })?;
            (call.sid, call.status)
        }
    };
    s.registry.plans.set_carrier_sid_shared(&call_id, &sid).await;
    s.registry.note_sid(&sid, &call_id);
    s.calls
        .record(&call_id, "carrier_call", json!({"carrier": carrier, "direction": "outbound", "call_sid": sid, "from": plan.from, "to": plan.to, "tenant_id": plan.tenant_id, "agent_id": plan.agent_id, "variables": req.variables, "campaign_id": req.campaign_id}))
        .await;
    tracing::info!(call_id, carrier = carrier.as_str(), carrier_sid = %sid, "outbound call placed");
    Ok(json!({"call_id": call_id, "carrier": carrier, "carrier_sid": sid, "status": status}))
}

/// Exotel authenticates its WebSocket with credentials written into the URL (`wss://u:p@host`).
fn with_credentials(url: &str, auth: Option<&str>) -> String {
    match (auth, url.split_once("://")) {
        (Some(a), Some((scheme, rest))) => format!("{scheme}://{a}@{rest}"),
        _ => url.to_string(),
    }
}

fn not_configured(carrier: &str, what: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "carrier_not_configured", format!("{carrier} is not configured: set {what}"))
}

fn carrier_error(carrier: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(carrier, error = %e, "carrier refused the call");
    ApiError::new(StatusCode::BAD_GATEWAY, "carrier_error", format!("{carrier}: {e}"))
}

/// Ends `tenant`'s live call: the engine stops at once, and the carrier is told to hang up (a
/// call the carrier already ended counts as done). Another tenant's call is "not active". A
/// call running on another node is hung up there (the answer names the node).
pub async fn hangup_call(s: &AppState, tenant: &str, call_id: &str) -> Result<Value, ApiError> {
    callfunnel_data::check_id(call_id).map_err(|e| ApiError::bad_request("invalid_call_id", e.to_string()))?;
    if s.registry.get_active(call_id).is_none()
        && let Some(node) = crate::node_bus::remote_node(s, call_id).await
    {
        return crate::node_bus::forward_hangup(s, &node, tenant, call_id).await;
    }
    hangup_here(s, tenant, call_id).await
}

/// [`hangup_call`] for a call this node runs (or placed and is still ringing).
pub async fn hangup_here(s: &AppState, tenant: &str, call_id: &str) -> Result<Value, ApiError> {
    callfunnel_data::check_id(call_id).map_err(|e| ApiError::bad_request("invalid_call_id", e.to_string()))?;
    let call_id = call_id.to_string();
    let active = s.registry.get_active(&call_id).filter(|a| a.tenant_id == tenant);
    let planned = s.registry.plans.untaken(&call_id).await.filter(|p| p.tenant_id == tenant);
    let (carrier, sid) = match (&active, &planned) {
        (Some(a), _) => (a.carrier, a.carrier_sid.clone()),
        (None, Some(p)) => (p.carrier, p.carrier_sid.clone()),
        (None, None) => return Err(ApiError::not_found("call_not_active", format!("no live call `{call_id}`"))),
    };
    let engine_stopped = s.registry.command(&call_id, CallCommand::Hangup { reason: "hung up through the API".into() }).await;
    s.registry.plans.remove(&call_id);
    let mut carrier_result = "not_needed";
    if carrier == Carrier::Twilio && !sid.is_empty() {
        if let Some(client) = s.carriers.twilio.as_ref() {
            carrier_result = match client.hangup(&sid).await {
                Ok(HangupOutcome::Completed) => "completed",
                Ok(HangupOutcome::AlreadyEnded) => "already_ended",
                Err(e) => return Err(carrier_error("Twilio", e)),
            };
        }
    }
    s.calls.record(&call_id, "hangup_api", json!({"engine_stopped": engine_stopped, "carrier": carrier_result})).await;
    Ok(json!({"call_id": call_id, "hung_up": true, "carrier": carrier_result}))
}
