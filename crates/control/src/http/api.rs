//! The call API (read side): active calls, recent calls, a call's timeline.
//!
//! Reads are tenant-scoped. Until API authentication lands (the tenant will come from the
//! caller's token), the tenant is the `tenant_id` query parameter, else — for one call — the
//! tenant this node routed it to, else the configured default tenant.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/calls", get(list).post(super::outbound::place)).route("/api/calls/active", get(active)).route("/api/calls/{call_id}/timeline", get(timeline))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    tenant_id: Option<String>,
}

#[derive(Deserialize)]
struct TenantQuery {
    tenant_id: Option<String>,
}

fn checked_tenant(t: Option<String>) -> Result<Option<String>, ApiError> {
    match t {
        Some(t) => callfunnel_data::check_id(&t).map(|_| Some(t)).map_err(|e| ApiError::bad_request("invalid_tenant_id", e.to_string())),
        None => Ok(None),
    }
}

async fn list(State(s): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::bad_request("invalid_limit", "limit must be between 1 and 1000"));
    }
    let tenant = checked_tenant(q.tenant_id)?.unwrap_or_else(|| s.config.agents.default_tenant.clone());
    let calls = s.store.calls(&tenant, limit).await.map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!({"calls": calls})))
}

async fn active(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({"calls": s.registry.active()}))
}

async fn timeline(State(s): State<AppState>, Path(call_id): Path<String>, Query(q): Query<TenantQuery>) -> Result<Json<serde_json::Value>, ApiError> {
    callfunnel_data::check_id(&call_id).map_err(|e| ApiError::bad_request("invalid_call_id", e.to_string()))?;
    let tenant = match checked_tenant(q.tenant_id)? {
        Some(t) => t,
        None => s.calls.tenant_of(&call_id).await,
    };
    let events = s.store.timeline(&tenant, &call_id).await.map_err(|e| ApiError::internal(e.to_string()))?;
    if events.is_empty() {
        return Err(ApiError::not_found("call_not_found", format!("no call `{call_id}`")));
    }
    Ok(Json(json!({"call_id": call_id, "events": events})))
}
