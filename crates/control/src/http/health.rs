use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when calls can run: model files present (they load lazily) and not shutting down.
async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let missing = s.hub.missing();
    let draining = s.draining.is_cancelled() || s.shutdown.is_cancelled();
    let ready = missing.is_empty() && !draining;
    let body = json!({"ready": ready, "models_loaded": s.hub.models_loaded(), "missing_models": missing, "draining": draining, "active_calls": s.registry.active_count()});
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}
