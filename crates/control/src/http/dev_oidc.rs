//! The built-in dev issuer's discovery and JWKS documents (`[auth] mode = "dev"`), at the
//! issuer URL `PUBLIC/dev/oidc` — so any OIDC client can verify our dev tokens too.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/dev/oidc/.well-known/openid-configuration", get(discovery)).route("/dev/oidc/certs", get(certs))
}

fn dev(s: &AppState) -> Result<&crate::auth::DevIssuer, ApiError> {
    s.auth.dev.as_ref().ok_or_else(|| ApiError::not_found("route_not_found", "the built-in issuer is off ([auth] mode = \"oidc\")"))
}

async fn discovery(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(dev(&s)?.discovery()))
}

async fn certs(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(dev(&s)?.jwks()))
}
