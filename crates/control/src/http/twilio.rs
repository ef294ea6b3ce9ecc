//! Twilio: voice webhooks (inbound and our outbound calls), status and AMD callbacks, the
//! after-stream step (hang up or transfer, warm with a whispered brief) and the Media Streams
//! WebSocket. Every route sits behind the `X-Twilio-Signature` check.

use std::collections::HashMap;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Form, Router};
use callfunnel_media::carrier::Carrier;
use callfunnel_media::engine::{CallCommand, CallEnd};
use callfunnel_media::twilio::{twiml, TwilioCodec};
use serde_json::json;

use super::AppState;
use super::media::StreamAuth;
use crate::routing::{call_id_for, CallPlan, Direction};
use crate::telephony_config::Route;

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/twilio/voice", post(voice))
        .route("/twilio/outbound/{call_id}", post(outbound))
        .route("/twilio/status/{call_id}", post(status))
        .route("/twilio/amd/{call_id}", post(amd))
        .route("/twilio/after/{call_id}", post(after_stream))
        .route("/twilio/whisper/{call_id}", post(whisper))
        .route("/twilio/media/{call_id}", any(media))
        .route("/twilio/media/{call_id}/{token}", any(media_with_token))
        .layer(axum::middleware::from_fn_with_state(state, super::twilio_auth::require_signature))
}

fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

type Params = Form<HashMap<String, String>>;

fn param<'a>(f: &'a HashMap<String, String>, k: &str) -> &'a str {
    f.get(k).map(String::as_str).unwrap_or_default()
}

/// `<Connect><Stream>` to our media WebSocket for `call_id` (the id travels in the path:
/// Twilio forbids a query string), with the after-stream step as `action`.
fn stream_twiml(s: &AppState, call_id: &str, plan: &CallPlan) -> Response {
    let ws = s.media_url("twilio", call_id, None);
    let action = s.public_http(&format!("/twilio/after/{call_id}"));
    xml(twiml::connect_stream(&ws, Some(&action), &[("tenant_id", &plan.tenant_id), ("agent_id", &plan.agent_id), ("from", &plan.from), ("to", &plan.to)]))
}

/// An incoming call: route by the number called; unknown numbers hear a polite refusal.
async fn voice(State(s): State<AppState>, Form(f): Params) -> Response {
    let sid = param(&f, "CallSid");
    let call_id = call_id_for(Carrier::Twilio, sid).unwrap_or_else(crate::routing::new_call_id);
    let (from, to) = (param(&f, "From"), param(&f, "To"));
    match s.calls.route(to).await.0 {
        Route::Unknown => {
            tracing::warn!(call_id, to, "call to an unknown number refused");
            callfunnel_metrics::call_refused("unknown_number");
            s.calls.record(&call_id, "call_refused", json!({"carrier": "twilio", "to": to, "reason": "unknown number"})).await;
            xml(twiml::say_and_hangup(&s.config.telephony.unknown_number_message))
        }
        Route::Agent { tenant_id, agent_id } => {
            if let Err(r) = crate::admission::admit(&s.stores, &s.config, &tenant_id, &agent_id, &call_id).await {
                tracing::warn!(call_id, tenant_id, reason = %r, "incoming call refused by the plan");
                s.registry.plans.note_owner(&call_id, &tenant_id);
                s.calls.record(&call_id, "call_refused", json!({"carrier": "twilio", "to": to, "reason": r.to_string(), "code": r.code()})).await;
                return xml(twiml::say_and_hangup(&s.config.telephony.plan_limit_message));
            }
            crate::admission::release_unless_started(s.stores.clone(), s.registry.clone(), call_id.clone(), std::time::Duration::from_secs(60));
            tracing::info!(call_id, tenant_id, agent_id, "incoming call");
            let plan = CallPlan { tenant_id, agent_id, from: from.into(), to: to.into(), direction: Direction::Inbound, carrier: Carrier::Twilio, carrier_sid: sid.into(), screening: None };
            s.calls.record(&call_id, "carrier_call", json!({"carrier": "twilio", "direction": "inbound", "call_sid": sid, "from": from, "to": to})).await;
            s.registry.plans.insert_shared(&call_id, plan.clone()).await;
            stream_twiml(&s, &call_id, &plan)
        }
    }
}

/// Twilio fetched the TwiML of a call we placed (the plan was made by the outbound API).
async fn outbound(State(s): State<AppState>, Path(call_id): Path<String>, Form(f): Params) -> Response {
    let Some(plan) = s.registry.plans.lookup(&call_id).await else {
        tracing::warn!(call_id, "TwiML requested for an unknown outbound call: hanging up");
        return xml(twiml::hangup());
    };
    s.registry.plans.set_carrier_sid_shared(&call_id, param(&f, "CallSid")).await;
    stream_twiml(&s, &call_id, &plan)
}

/// Call progress (`initiated`, `ringing`, `in-progress`, `completed`, ...) into the timeline,
/// in `SequenceNumber` order: a late callback is recorded as stale and changes nothing.
async fn status(State(s): State<AppState>, Path(call_id): Path<String>, Form(f): Params) -> Response {
    let status = param(&f, "CallStatus").to_string();
    let seq: Option<u64> = f.get("SequenceNumber").and_then(|v| v.parse().ok());
    let applied = s.registry.observe_status(&call_id, seq, &status);
    s.calls
        .record(&call_id, "carrier_status", json!({"carrier": "twilio", "status": status, "sequence": seq, "stale": !applied,
            "call_sid": param(&f, "CallSid"), "duration_s": f.get("CallDuration"), "sip_response_code": f.get("SipResponseCode")}))
        .await;
    if applied && matches!(status.as_str(), "busy" | "no-answer" | "failed" | "canceled") {
        // The callee never answered: the plan will not be used, nor the admission lease.
        s.registry.plans.remove(&call_id);
        crate::admission::release(&s.stores, &call_id).await;
        tracing::info!(call_id, status, "outbound call not answered");
    }
    if applied && status == "completed" && s.registry.get_active(&call_id).is_some() {
        s.registry.command(&call_id, CallCommand::Hangup { reason: "carrier reported the call completed".into() }).await;
    }
    axum::http::StatusCode::NO_CONTENT.into_response()
}

/// Answering-machine detection result for an outbound call.
async fn amd(State(s): State<AppState>, Path(call_id): Path<String>, Form(f): Params) -> Response {
    let by = param(&f, "AnsweredBy").to_string();
    let delivered = s.registry.command(&call_id, CallCommand::AnsweredBy(by.clone())).await;
    if !delivered {
        s.calls.record(&call_id, "carrier_amd", json!({"answered_by": by, "delivered": false})).await;
    }
    axum::http::StatusCode::NO_CONTENT.into_response()
}

/// The stream ended: transfer (warm: the human hears a brief first) or hang up.
async fn after_stream(State(s): State<AppState>, Path(call_id): Path<String>) -> Response {
    match s.registry.wait_end(&call_id, std::time::Duration::from_secs(5)).await {
        Some(CallEnd::Transferred { to, brief: Some(_), .. }) => xml(twiml::dial_with_whisper(&to, &s.public_http(&format!("/twilio/whisper/{call_id}")))),
        Some(CallEnd::Transferred { to, .. }) => xml(twiml::dial(&to)),
        _ => xml(twiml::hangup()),
    }
}

/// What the transfer target hears before being bridged to the caller.
async fn whisper(State(s): State<AppState>, Path(call_id): Path<String>) -> Response {
    match s.registry.end_of(&call_id) {
        Some(CallEnd::Transferred { brief: Some(brief), .. }) => {
            s.calls.record(&call_id, "transfer_briefed", json!({"brief": brief})).await;
            xml(twiml::say(&brief))
        }
        _ => xml(twiml::say("Incoming transfer.")),
    }
}

type Ws = Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>;

async fn media(State(s): State<AppState>, Path(call_id): Path<String>, ws: Ws) -> Response {
    super::media::upgrade(&s, call_id, StreamAuth::CallToken(None), ws, TwilioCodec::default())
}

async fn media_with_token(State(s): State<AppState>, Path((call_id, token)): Path<(String, String)>, ws: Ws) -> Response {
    super::media::upgrade(&s, call_id, StreamAuth::CallToken(Some(&token)), ws, TwilioCodec::default())
}
