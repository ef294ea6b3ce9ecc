//! Exotel: the Voicebot applet's dynamic URL endpoint, its WebSocket (Basic auth on the
//! upgrade), status callbacks, and the Passthru applet that follows the bot in a flow
//! (200 → branch A: the bot finished; 302 → branch B: put the caller through to a person).

use std::collections::HashMap;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use callfunnel_media::carrier::Carrier;
use callfunnel_media::engine::{CallCommand, CallEnd};
use callfunnel_media::exotel::ExotelCodec;
use serde_json::json;

use super::media::StreamAuth;
use super::{ApiError, AppState};
use crate::routing::{call_id_for, new_call_id, CallPlan, Direction};
use crate::telephony_config::Route;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/exotel/voicebot", get(voicebot_url))
        .route("/exotel/media", any(media_static))
        .route("/exotel/media/{call_id}", any(media))
        .route("/exotel/media/{call_id}/{token}", any(media_with_token))
        .route("/exotel/status", post(status))
        .route("/exotel/status/{call_id}", post(status_for))
        .route("/exotel/passthru", get(passthru))
}

type Q = Query<HashMap<String, String>>;

fn q<'a>(m: &'a HashMap<String, String>, keys: &[&str]) -> &'a str {
    keys.iter().find_map(|k| m.get(*k).map(String::as_str)).unwrap_or_default()
}

/// Constant-time comparison of the Basic credentials Exotel sent with the configured ones.
fn authorized(s: &AppState, headers: &HeaderMap) -> bool {
    let Some(expected) = s.carriers.exotel_stream_auth.as_ref() else { return true };
    let Some(given) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic ")) else { return false };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(given.trim()) else { return false };
    let want = expected.expose().as_bytes();
    decoded.len() == want.len() && decoded.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The Voicebot applet's "dynamic URL": Exotel asks per call which WebSocket to open.
async fn voicebot_url(State(s): State<AppState>, Query(p): Q) -> Response {
    let sid = q(&p, &["CallSid"]);
    let Some(call_id) = call_id_for(Carrier::Exotel, sid) else {
        return ApiError::bad_request("invalid_call_sid", "CallSid is missing or not a plain id").into_response();
    };
    let (from, to) = (q(&p, &["CallFrom", "From"]), q(&p, &["CallTo", "To"]));
    if let (Route::Agent { tenant_id, agent_id }, _) = s.calls.route(to).await {
        let plan = CallPlan { tenant_id, agent_id, from: from.into(), to: to.into(), direction: Direction::Inbound, carrier: Carrier::Exotel, carrier_sid: sid.into(), screening: None };
        s.registry.plans.insert_shared(&call_id, plan).await;
    }
    // An unknown number still gets a stream: the call handler speaks the refusal on it.
    let url = s.media_url("exotel", &call_id, Some(s.config.exotel.sample_rate));
    Json(json!({"url": url})).into_response()
}

type Ws = Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>;

/// The static stream URL of an Exotel flow: no call token can be in it, so it is accepted only
/// when Exotel authenticates with the configured Basic credentials.
async fn media_static(State(s): State<AppState>, headers: HeaderMap, ws: Ws) -> Response {
    let auth = if s.carriers.exotel_stream_auth.is_some() { StreamAuth::Carrier } else { StreamAuth::CallToken(None) };
    upgrade(s, new_call_id(), auth, headers, ws)
}

async fn media(State(s): State<AppState>, Path(call_id): Path<String>, headers: HeaderMap, ws: Ws) -> Response {
    upgrade(s, call_id, StreamAuth::CallToken(None), headers, ws)
}

async fn media_with_token(State(s): State<AppState>, Path((call_id, token)): Path<(String, String)>, headers: HeaderMap, ws: Ws) -> Response {
    upgrade(s, call_id, StreamAuth::CallToken(Some(&token)), headers, ws)
}

fn upgrade(s: AppState, call_id: String, auth: StreamAuth, headers: HeaderMap, ws: Ws) -> Response {
    if !authorized(&s, &headers) {
        tracing::warn!(call_id, "Exotel stream refused: bad or missing Basic credentials");
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Basic realm=\"callfunnel\"")], ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "Basic credentials required")).into_response();
    }
    super::media::upgrade(&s, call_id, auth, ws, ExotelCodec::default())
}

async fn status(State(s): State<AppState>, Form(f): Form<HashMap<String, String>>) -> Response {
    let sid = q(&f, &["CallSid"]);
    let call_id = s.registry.call_for_sid(sid).or_else(|| call_id_for(Carrier::Exotel, sid));
    match call_id {
        Some(id) => record_status(&s, &id, &f).await,
        None => ApiError::bad_request("invalid_call_sid", "CallSid is missing or not a plain id").into_response(),
    }
}

async fn status_for(State(s): State<AppState>, Path(call_id): Path<String>, Form(f): Form<HashMap<String, String>>) -> Response {
    if let Err(e) = callfunnel_data::check_id(&call_id) {
        return ApiError::bad_request("invalid_call_id", e.to_string()).into_response();
    }
    record_status(&s, &call_id, &f).await
}

/// Exotel's callback has no sequence number: a final status is final, the rest are recorded.
async fn record_status(s: &AppState, call_id: &str, f: &HashMap<String, String>) -> Response {
    let status = q(f, &["Status", "CallStatus"]).to_string();
    let applied = s.registry.observe_status(call_id, None, &status);
    s.calls
        .record(call_id, "carrier_status", json!({"carrier": "exotel", "status": status, "stale": !applied, "event": f.get("EventType"),
            "call_sid": q(f, &["CallSid"]), "updated": f.get("DateUpdated")}))
        .await;
    if applied && matches!(status.as_str(), "busy" | "no-answer" | "failed") {
        s.registry.plans.remove(call_id);
        crate::admission::release(&s.stores, call_id).await;
    }
    if applied && status == "completed" && s.registry.get_active(call_id).is_some() {
        s.registry.command(call_id, CallCommand::Hangup { reason: "carrier reported the call completed".into() }).await;
    }
    StatusCode::OK.into_response()
}

/// After the Voicebot applet: 302 (branch B) when the agent transferred the caller, else 200.
async fn passthru(State(s): State<AppState>, Query(p): Q) -> Response {
    let sid = q(&p, &["CallSid"]);
    let call_id = s.registry.call_for_sid(sid).or_else(|| call_id_for(Carrier::Exotel, sid));
    let end = match call_id.as_deref() {
        Some(id) => s.registry.wait_end(id, std::time::Duration::from_secs(5)).await,
        None => None,
    };
    let digits = q(&p, &["digits"]).trim_matches('"').to_string();
    let (code, branch) = match &end {
        Some(CallEnd::Transferred { .. }) => (StatusCode::FOUND, "B"),
        _ => (StatusCode::OK, "A"),
    };
    if let Some(id) = &call_id {
        s.calls.record(id, "carrier_passthru", json!({"branch": branch, "end": end, "digits": digits, "stream_status": p.get("Stream[Status]"), "disconnected_by": p.get("Stream[DisconnectedBy]")})).await;
    }
    tracing::info!(call_id = call_id.as_deref().unwrap_or("?"), branch, "Exotel passthru");
    match (code, end) {
        (StatusCode::FOUND, Some(CallEnd::Transferred { to, .. })) => (StatusCode::FOUND, [(header::LOCATION, format!("tel:{to}"))], "").into_response(),
        _ => (StatusCode::OK, "").into_response(),
    }
}
