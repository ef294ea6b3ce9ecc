//! `X-Twilio-Signature` on every Twilio request: webhooks (form or JSON body) and the Media
//! Streams WebSocket upgrade (signed over the `wss://` URL). The URL is the public one Twilio
//! called: `[twilio] public_base` if set, else rebuilt from the forwarding headers. A request
//! that fails is refused with 403 before anything is processed.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use callfunnel_telephony::twilio::signature::{public_url, Algorithm};

use super::{ApiError, AppState};

/// Largest webhook body read for checking (Twilio's forms are a few KB).
const MAX_BODY: usize = 64 * 1024;

pub async fn require_signature(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token_validator) = s.carriers.twilio_validator.as_ref() else { return next.run(req).await };
    let (parts, body) = req.into_parts();
    let settings = parts.headers.get("x-twilio-webhooks-signature-settings").and_then(|v| v.to_str().ok());
    let (alg, validator) = match Algorithm::from_settings(settings) {
        Some(Algorithm::HmacSha256) => (Algorithm::HmacSha256, s.carriers.twilio_shared_key.as_ref()),
        Some(Algorithm::HmacSha1) => (Algorithm::HmacSha1, Some(token_validator)),
        None => (Algorithm::HmacSha1, None),
    };
    let Some(validator) = validator else {
        tracing::warn!(path = parts.uri.path(), "Twilio signature algorithm unknown or its key is not configured: request refused");
        return ApiError::new(StatusCode::FORBIDDEN, "invalid_signature", "unsupported signature settings").into_response();
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("webhook body over {MAX_BODY} bytes")).into_response();
    };
    let websocket = parts.headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let base = Some(s.config.twilio.public_base.as_str()).filter(|b| !b.is_empty());
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = public_url(base, &parts.headers, path_and_query, websocket);
    let signature = parts.headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let form = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let ok = !signature.is_empty()
        && if url.contains("bodySHA256=") {
            validator.validate_json_body_with(alg, &url, &bytes, signature)
        } else {
            let params: Vec<(String, String)> = if form { url::form_urlencoded::parse(&bytes).into_owned().collect() } else { Vec::new() };
            validator.validate_with(alg, &url, &params, signature)
        };
    if !ok {
        tracing::warn!(path = parts.uri.path(), signed = !signature.is_empty(), "invalid X-Twilio-Signature: request refused");
        return ApiError::new(StatusCode::FORBIDDEN, "invalid_signature", "X-Twilio-Signature does not match this request").into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}
