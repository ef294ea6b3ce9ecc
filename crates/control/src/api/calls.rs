//! `/v1/calls`: list and read calls (timeline, recording link, live status), hang up, place one.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::common::{Begun, Body, ErrorBody, PageParams, Page, begin_idempotent, store_err};
use crate::auth::{Caller, Role};
use crate::http::outbound::{PlaceCall, hangup_call, place_call};
use crate::http::{ApiError, AppState};

#[derive(Serialize, ToSchema)]
pub struct CallItem {
    pub call_id: String,
    pub started_unix_ms: u64,
    pub ended: bool,
    pub events: usize,
    pub agent_id: String,
    /// The caller's number (the callee's on an outbound call; `browser:USER` from the console).
    pub caller: String,
    /// How it ended: `caller_hung_up`, `agent_ended`, `transferred`, `shutdown`, `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallFilter {
    /// Only calls started at or after this time (unix ms).
    pub since_ms: Option<u64>,
    /// Only calls started before this time (unix ms).
    pub until_ms: Option<u64>,
    /// `true`: only ended calls; `false`: only calls still running.
    pub ended: Option<bool>,
    /// Only calls answered by this agent.
    pub agent_id: Option<String>,
}

/// The tenant's calls, newest first.
#[utoipa::path(get, path = "/v1/calls", tag = "calls", params(PageParams, CallFilter), responses((status = 200, body = Page<CallItem>)))]
pub async fn list(c: Caller, State(s): State<AppState>, Query(p): Query<PageParams>, Query(f): Query<CallFilter>) -> Result<Json<Page<CallItem>>, ApiError> {
    c.require(Role::Viewer)?;
    let calls = s.store.calls(&c.tenant, 5000).await.map_err(store_err)?;
    let items: Vec<CallItem> = calls
        .into_iter()
        .filter(|x| f.since_ms.is_none_or(|t| x.started_unix_ms >= t) && f.until_ms.is_none_or(|t| x.started_unix_ms < t) && f.ended.is_none_or(|e| x.ended == e) && f.agent_id.as_ref().is_none_or(|a| *a == x.agent_id))
        .map(|x| CallItem { call_id: x.call_id, started_unix_ms: x.started_unix_ms, ended: x.ended, events: x.events, agent_id: x.agent_id, caller: x.caller, end: x.end })
        .collect();
    // newest first: the cursor orders by an inverted start time, then the id
    let key = |i: &CallItem| format!("{:020}:{}", u64::MAX - i.started_unix_ms, i.call_id);
    Ok(Json(p.page(items, key)?))
}

#[derive(Serialize, ToSchema)]
pub struct CallDetail {
    pub call_id: String,
    /// `live` while the call runs on this fleet, else `ended`.
    pub status: String,
    /// Post-call analysis (see `GET /v1/calls/{call_id}/analysis`).
    pub analysis: Analysis,
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
}

/// A call's post-call analysis: `pending` (queued or the call still runs), `done` (summary,
/// extraction, success) or `failed` (`error` says why).
#[derive(Serialize, ToSchema)]
pub struct Analysis {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub extraction: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analyzer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn analysis_of(events: &[Value]) -> Analysis {
    let mut a = Analysis { status: "pending".into(), summary: None, extraction: None, success: None, success_reason: None, analyzer: None, error: None };
    let Some(e) = events.iter().rev().find(|e| crate::analysis::DONE_KINDS.contains(&e["kind"].as_str().unwrap_or_default())) else { return a };
    let d = &e["data"];
    let s = |k: &str| d[k].as_str().map(str::to_string);
    if e["kind"] == "call_analysis_failed" {
        a.status = "failed".into();
        a.error = s("error");
        return a;
    }
    a.status = "done".into();
    a.summary = s("summary");
    a.extraction = Some(d["extraction"].clone());
    a.success = d["success"].as_bool();
    a.success_reason = s("success_reason");
    a.analyzer = s("analyzer");
    a
}

/// A call's post-call analysis.
#[utoipa::path(get, path = "/v1/calls/{call_id}/analysis", tag = "calls", params(("call_id" = String, Path)), responses((status = 200, body = Analysis), (status = 404, body = ErrorBody)))]
pub async fn analysis(c: Caller, State(s): State<AppState>, Path(call_id): Path<String>) -> Result<Json<Analysis>, ApiError> {
    c.require(Role::Viewer)?;
    Ok(Json(analysis_of(&timeline(&s, &c.tenant, &call_id).await?)))
}

/// One call with its timeline.
#[utoipa::path(get, path = "/v1/calls/{call_id}", tag = "calls", params(("call_id" = String, Path)), responses((status = 200, body = CallDetail), (status = 404, body = ErrorBody)))]
pub async fn get_one(c: Caller, State(s): State<AppState>, Path(call_id): Path<String>) -> Result<Json<CallDetail>, ApiError> {
    c.require(Role::Viewer)?;
    let events = timeline(&s, &c.tenant, &call_id).await?;
    let live = s.registry.get_active(&call_id).is_some_and(|a| a.tenant_id == c.tenant);
    let status = if live { "live" } else if events.iter().any(|e| e["kind"] == "call_ended") { "ended" } else { "unknown" };
    Ok(Json(CallDetail { call_id, status: status.into(), analysis: analysis_of(&events), events }))
}

async fn timeline(s: &AppState, tenant: &str, call_id: &str) -> Result<Vec<Value>, ApiError> {
    callfunnel_data::check_id(call_id).map_err(|e| ApiError::bad_request("invalid_call_id", e.to_string()))?;
    let events = s.store.timeline(tenant, call_id).await.map_err(store_err)?;
    if events.is_empty() {
        return Err(ApiError::not_found("call_not_found", format!("no call `{call_id}`")));
    }
    Ok(events.into_iter().map(|e| serde_json::to_value(e).unwrap_or_default()).collect())
}

#[derive(Serialize, ToSchema)]
pub struct RecordingLink {
    /// A link valid for `expires_in_s` seconds (relative to this API's host when it starts with `/`).
    pub url: String,
    pub expires_in_s: u64,
}

/// A short-lived download link for the call's recording.
#[utoipa::path(get, path = "/v1/calls/{call_id}/recording", tag = "calls", params(("call_id" = String, Path)), responses((status = 200, body = RecordingLink), (status = 404, body = ErrorBody)))]
pub async fn recording(c: Caller, State(s): State<AppState>, Path(call_id): Path<String>) -> Result<Json<RecordingLink>, ApiError> {
    c.require(Role::Viewer)?;
    callfunnel_data::check_id(&call_id).map_err(|e| ApiError::bad_request("invalid_call_id", e.to_string()))?;
    let have = s.stores.recordings.list(&c.tenant).await.map_err(store_err)?.into_iter().any(|r| r.call_id == call_id);
    if !have {
        return Err(ApiError::not_found("recording_not_found", format!("call `{call_id}` has no recording")));
    }
    let ttl = std::time::Duration::from_secs(900);
    let url = s.stores.recordings.presign_get(&c.tenant, &call_id, ttl).await.map_err(store_err)?;
    Ok(Json(RecordingLink { url, expires_in_s: ttl.as_secs() }))
}

#[derive(Serialize, ToSchema)]
pub struct LiveCall {
    pub call_id: String,
    pub agent_id: String,
    pub carrier: String,
    pub direction: String,
    pub started_unix_ms: u64,
}

/// Calls running now on this node.
#[utoipa::path(get, path = "/v1/calls/live", tag = "calls", responses((status = 200, body = Page<LiveCall>)))]
pub async fn live(c: Caller, State(s): State<AppState>) -> Result<Json<Page<LiveCall>>, ApiError> {
    c.require(Role::Viewer)?;
    let data = s
        .registry
        .active()
        .into_iter()
        .filter(|a| a.tenant_id == c.tenant)
        .map(|a| LiveCall { call_id: a.call_id, agent_id: a.agent_id, carrier: a.carrier.as_str().into(), direction: serde_json::to_value(a.direction).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(), started_unix_ms: a.started_unix_ms })
        .collect();
    Ok(Json(Page { data, next_cursor: None }))
}

/// Ends a live call now (the carrier is told to hang up).
#[utoipa::path(post, path = "/v1/calls/{call_id}/hangup", tag = "calls", params(("call_id" = String, Path)), responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn hangup(c: Caller, State(s): State<AppState>, Path(call_id): Path<String>) -> Result<Json<Value>, ApiError> {
    c.require(Role::Editor)?;
    hangup_call(&s, &c.tenant, &call_id).await.map(Json)
}

/// Places an outbound call with one of the tenant's agents. Send `Idempotency-Key` to retry safely.
#[utoipa::path(post, path = "/v1/calls", tag = "calls", request_body = PlaceCall, params(("Idempotency-Key" = Option<String>, Header)), responses((status = 201, body = Object), (status = 400, body = ErrorBody), (status = 402, body = ErrorBody)))]
pub async fn place(c: Caller, State(s): State<AppState>, headers: HeaderMap, Body(req): Body<PlaceCall>) -> Result<Response, ApiError> {
    c.require(Role::Editor)?;
    let run = match begin_idempotent(&s, &c.tenant, "POST /v1/calls", &headers, &req).await? {
        Begun::Replay(r) => return Ok(r),
        Begun::Run(r) => r,
    };
    let result = place_call(&s, &c.tenant, req).await.map(|v| (StatusCode::CREATED, v));
    Ok(run.finish(&s, result).await)
}
