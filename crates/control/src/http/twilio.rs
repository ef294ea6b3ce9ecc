//! Twilio webhooks and the Media Streams WebSocket.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Form, Router};
use callfunnel_media::engine::CallEnd;
use callfunnel_media::twilio::{protocol, transport, twiml};

use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/twilio/voice", post(voice))
        .route("/twilio/after/{call_id}", post(after_stream))
        .route("/twilio/media/{call_id}", any(media))
}

fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

/// Incoming call: answer with a bidirectional stream to this server. The call id travels in
/// the path (Twilio forbids a query string on `<Stream url>`).
async fn voice(State(s): State<AppState>, Form(form): Form<HashMap<String, String>>) -> Response {
    let sid = form.get("CallSid").map(String::as_str).unwrap_or_default();
    let call_id = if sid.len() == 34 && sid.starts_with("CA") && sid.bytes().all(|b| b.is_ascii_alphanumeric()) { sid.to_string() } else { format!("c{}", uuid::Uuid::new_v4().simple()) };
    let cfg = &s.config;
    let ws = format!("{}://{}/twilio/media/{call_id}", cfg.server.public_ws_scheme, cfg.server.public_host);
    let http = if cfg.server.public_ws_scheme == "wss" { "https" } else { "http" };
    let action = format!("{http}://{}/twilio/after/{call_id}", cfg.server.public_host);
    let from = form.get("From").cloned().unwrap_or_default();
    let to = form.get("To").cloned().unwrap_or_default();
    tracing::info!(call_id, "incoming call");
    xml(twiml::connect_stream(&ws, Some(&action), &[
        ("tenant_id", &cfg.agents.default_tenant),
        ("agent_id", &cfg.agents.default_agent),
        ("from", &from),
        ("to", &to),
    ]))
}

/// The stream ended: transfer if the agent asked for it, else hang up.
async fn after_stream(State(s): State<AppState>, Path(call_id): Path<String>) -> Response {
    match s.registry.take_end(&call_id) {
        Some(CallEnd::Transferred { to, .. }) => xml(twiml::dial(&to)),
        _ => xml(twiml::hangup()),
    }
}

async fn media(State(s): State<AppState>, Path(call_id): Path<String>, ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>) -> Response {
    if let Err(e) = callfunnel_data::check_id(&call_id) {
        return ApiError::bad_request("invalid_call_id", e.to_string()).into_response();
    }
    let Ok(ws) = ws else {
        return ApiError::bad_request("websocket_required", "this endpoint takes a Media Streams WebSocket").into_response();
    };
    if s.shutdown.is_cancelled() {
        return ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "draining", "server is shutting down").into_response();
    }
    let handler: Arc<dyn transport::CallHandler> = s.calls.clone();
    ws.max_message_size(protocol::MAX_MESSAGE_BYTES).max_frame_size(protocol::MAX_MESSAGE_BYTES).on_upgrade(move |socket| async move {
        if let Err(e) = transport::serve(socket, call_id.clone(), handler).await {
            tracing::warn!(call_id, error = %e, "media stream rejected");
        }
    })
}
