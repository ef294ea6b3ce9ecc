//! Accepting a carrier's media WebSocket: checks common to every carrier, then the stream runs
//! with that carrier's codec until the call ends.

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use callfunnel_media::carrier::{self, CallHandler, MediaCodec, MAX_MESSAGE_BYTES, READ_BUFFER_BYTES};

use super::{ApiError, AppState};

/// How a media stream proved it belongs to a call we created.
pub enum StreamAuth<'a> {
    /// The call token from the stream URL's path (`None`: the URL had none).
    CallToken(Option<&'a str>),
    /// The carrier itself authenticated (Exotel's Basic credentials on a static stream URL).
    Carrier,
}

pub fn upgrade<C: MediaCodec>(s: &AppState, call_id: String, auth: StreamAuth, ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>, codec: C) -> Response {
    if let Err(e) = callfunnel_data::check_id(&call_id) {
        return ApiError::bad_request("invalid_call_id", e.to_string()).into_response();
    }
    if let StreamAuth::CallToken(token) = auth
        && s.config.auth.media_call_tokens
        && let Err(e) = s.auth.call_tokens.check(&call_id, token.unwrap_or_default())
    {
        tracing::warn!(call_id, reason = %e, "media stream refused");
        let code = if token.is_none() { "call_token_required" } else { "invalid_call_token" };
        return ApiError::unauthorized(code, e.to_string()).into_response();
    }
    let Ok(ws) = ws else {
        return ApiError::bad_request("websocket_required", format!("this endpoint takes the {} media WebSocket", codec.carrier().as_str())).into_response();
    };
    if s.shutdown.is_cancelled() {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "draining", "server is shutting down").into_response();
    }
    let handler: Arc<dyn CallHandler> = s.calls.clone();
    ws.max_message_size(MAX_MESSAGE_BYTES).max_frame_size(MAX_MESSAGE_BYTES).read_buffer_size(READ_BUFFER_BYTES).on_upgrade(move |socket| async move {
        if let Err(e) = carrier::serve(socket, call_id.clone(), codec, handler).await {
            tracing::warn!(call_id, error = %e, "media stream rejected");
        }
    })
}
