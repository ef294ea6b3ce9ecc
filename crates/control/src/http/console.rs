//! The web console at `/console`: a small set of files built into the binary (no front-end
//! build step, nothing fetched from elsewhere), and `/console/config.json` telling it where to
//! sign in. Strict content security policy: scripts, styles and fonts only from this server.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use crate::auth::AuthMode;
use crate::auth::sign_in::CONSOLE_CLIENT_ID;

macro_rules! assets {
    ($($name:literal),* $(,)?) => {
        /// Every console file: its path under `/console/assets/` and its bytes.
        pub const ASSETS: &[(&str, &[u8])] = &[$(($name, include_bytes!(concat!("../../console/", $name)))),*];
    };
}

assets!(
    "app.css",
    "js/app.js",
    "js/auth.js",
    "js/api.js",
    "js/ui.js",
    "js/live.js",
    "js/pages/calls.js",
    "js/pages/call.js",
    "js/pages/agents.js",
    "js/pages/agent.js",
    "js/pages/talk.js",
    "js/pages/talk-worklet.js",
    "js/pages/knowledge.js",
    "js/pages/campaigns.js",
    "js/pages/usage.js",
);
const INDEX: &str = include_str!("../../console/index.html");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(index))
        .route("/console/config.json", get(config))
        .route("/console/assets/{*path}", get(asset))
}

/// Where the console may connect: this server, and the issuer when it is elsewhere (Keycloak's
/// token endpoint); recordings in S3 play from the bucket's endpoint.
fn csp(s: &AppState) -> String {
    let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin().ascii_serialization()).filter(|o| o != "null");
    let issuer = if s.config.auth.mode == AuthMode::Oidc { s.config.auth.issuer.as_deref().and_then(origin) } else { None };
    let s3 = s.config.stores.s3.as_ref().and_then(|c| origin(&c.endpoint));
    let connect = issuer.map(|o| format!(" {o}")).unwrap_or_default();
    let media = s3.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'{connect}; \
         media-src 'self' blob:{media}; worker-src 'self'; form-action 'self'{connect}; base-uri 'none'; frame-ancestors 'none'"
    )
}

fn secure(s: &AppState, mut r: Response) -> Response {
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp(s)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("permissions-policy", HeaderValue::from_static("microphone=(self), camera=(), geolocation=()"));
    r
}

async fn index(State(s): State<AppState>) -> Response {
    let r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], INDEX).into_response();
    secure(&s, r)
}

/// The issuer the console signs in at, and as which client.
async fn config(State(s): State<AppState>) -> Json<serde_json::Value> {
    let issuer = match s.config.auth.mode {
        AuthMode::Dev => crate::auth::dev_issuer_url(&s.config),
        AuthMode::Oidc => s.config.auth.issuer.clone().unwrap_or_default(),
    };
    Json(json!({"issuer": issuer.trim_end_matches('/'), "client_id": CONSOLE_CLIENT_ID, "scope": "openid"}))
}

/// A weak validator from the build: assets change only with the binary.
fn etag(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    format!("\"{}\"", d.as_ref()[..12].iter().map(|b| format!("{b:02x}")).collect::<String>())
}

async fn asset(State(s): State<AppState>, Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some((name, bytes)) = ASSETS.iter().find(|(n, _)| *n == path) else {
        return (StatusCode::NOT_FOUND, "no such console file").into_response();
    };
    let tag = etag(bytes);
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(tag.as_str()) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let kind = match name.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "application/octet-stream",
    };
    let r = ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache"), (header::ETAG, tag.as_str())], *bytes).into_response();
    secure(&s, r)
}
