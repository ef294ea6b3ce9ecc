//! `/v1/agents`: the tenant's voice agents and their immutable, numbered versions.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use callfunnel_data::control::{Agent, AgentKind, AgentVersion, AgentVersionSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::common::{Body, ErrorBody, Page, PageParams, store_err};
use crate::auth::{Caller, Role};
use crate::http::{ApiError, AppState};

#[derive(Serialize, ToSchema)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    /// 0 until a version is published.
    pub latest_version: i32,
    pub created_at: i64,
}

impl From<Agent> for AgentView {
    fn from(a: Agent) -> Self {
        AgentView { id: a.id, name: a.name, latest_version: a.latest_version, created_at: a.created_at }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    /// Letters, digits, `-`, `_` (at most 128).
    pub id: String,
    pub name: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    pub name: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionSpec {
    /// `rulebook` (a TOML rule-book) or `prompt` (a system prompt for the LLM).
    pub kind: String,
    pub body: String,
    /// Default: the server's `[agents] voice`.
    #[serde(default)]
    pub voice: Option<String>,
    /// BCP-47; default: the server's `[agents] language`.
    #[serde(default)]
    pub language: Option<String>,
    /// `stt` / `tts` failover chains and the LLM `model`, e.g. `{"stt": ["deepgram", "local"]}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub providers: Value,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub tools: Value,
    /// Post-call analysis: `success` (what a good call achieves), `schema` (JSON Schema of the
    /// extraction), `provider` (`anthropic` or `local`), `model`, `success_intents`, `enabled`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub analysis: Value,
    /// Publish only if the latest version is still this one (optimistic concurrency).
    #[serde(default)]
    pub expected_latest: Option<i32>,
}

#[derive(Serialize, ToSchema)]
pub struct VersionView {
    pub agent_id: String,
    pub version: i32,
    pub kind: String,
    pub body: String,
    pub voice: String,
    pub language: String,
    #[schema(value_type = Object)]
    pub providers: Value,
    #[schema(value_type = Vec<Object>)]
    pub tools: Value,
    #[schema(value_type = Object)]
    pub analysis: Value,
    pub created_at: i64,
}

impl From<AgentVersion> for VersionView {
    fn from(v: AgentVersion) -> Self {
        let s = v.spec;
        VersionView { agent_id: v.agent_id, version: v.version, kind: s.kind.as_str().into(), body: s.body, voice: s.voice, language: s.language, providers: s.providers, tools: s.tools, analysis: s.analysis, created_at: v.created_at }
    }
}

#[utoipa::path(get, path = "/v1/agents", tag = "agents", params(PageParams), responses((status = 200, body = Page<AgentView>)))]
pub async fn list(c: Caller, State(s): State<AppState>, Query(p): Query<PageParams>) -> Result<Json<Page<AgentView>>, ApiError> {
    c.require(Role::Viewer)?;
    let all: Vec<AgentView> = s.stores.control.agents(&c.tenant).await.map_err(store_err)?.into_iter().map(Into::into).collect();
    Ok(Json(p.page(all, |a| a.id.clone())?))
}

#[utoipa::path(post, path = "/v1/agents", tag = "agents", request_body = NewAgent, responses((status = 201, body = AgentView), (status = 409, body = ErrorBody)))]
pub async fn create(c: Caller, State(s): State<AppState>, Body(b): Body<NewAgent>) -> Result<(StatusCode, Json<AgentView>), ApiError> {
    c.require(Role::Editor)?;
    let a = s.stores.control.create_agent(&c.tenant, &b.id, &b.name).await.map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(a.into())))
}

#[utoipa::path(get, path = "/v1/agents/{agent_id}", tag = "agents", params(("agent_id" = String, Path)), responses((status = 200, body = AgentView), (status = 404, body = ErrorBody)))]
pub async fn get_one(c: Caller, State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<AgentView>, ApiError> {
    c.require(Role::Viewer)?;
    Ok(Json(s.stores.control.agent(&c.tenant, &id).await.map_err(store_err)?.into()))
}

#[utoipa::path(patch, path = "/v1/agents/{agent_id}", tag = "agents", params(("agent_id" = String, Path)), request_body = AgentPatch, responses((status = 200, body = AgentView), (status = 404, body = ErrorBody)))]
pub async fn update(c: Caller, State(s): State<AppState>, Path(id): Path<String>, Body(b): Body<AgentPatch>) -> Result<Json<AgentView>, ApiError> {
    c.require(Role::Editor)?;
    Ok(Json(s.stores.control.update_agent(&c.tenant, &id, &b.name).await.map_err(store_err)?.into()))
}

/// Deletes an agent and its versions (refused while a number is bound to it).
#[utoipa::path(delete, path = "/v1/agents/{agent_id}", tag = "agents", params(("agent_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(c: Caller, State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    c.require(Role::TenantAdmin)?;
    s.stores.control.delete_agent(&c.tenant, &id).await.map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/agents/{agent_id}/versions", tag = "agents", params(("agent_id" = String, Path)), responses((status = 200, body = Page<VersionView>)))]
pub async fn versions(c: Caller, State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Page<VersionView>>, ApiError> {
    c.require(Role::Viewer)?;
    s.stores.control.agent(&c.tenant, &id).await.map_err(store_err)?;
    let data = s.stores.control.agent_versions(&c.tenant, &id).await.map_err(store_err)?.into_iter().map(Into::into).collect();
    Ok(Json(Page { data, next_cursor: None }))
}

/// Publishes a new version (immutable; calls use the latest).
#[utoipa::path(post, path = "/v1/agents/{agent_id}/versions", tag = "agents", params(("agent_id" = String, Path)), request_body = VersionSpec, responses((status = 201, body = VersionView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn publish(c: Caller, State(s): State<AppState>, Path(id): Path<String>, Body(b): Body<VersionSpec>) -> Result<(StatusCode, Json<VersionView>), ApiError> {
    c.require(Role::Editor)?;
    let expected_latest = b.expected_latest;
    let spec = spec_of(&s, b)?;
    crate::agents::AgentFile::from_version(&spec).map_err(|e| ApiError::bad_request("invalid_agent", e.to_string()))?;
    let v = s.stores.control.publish_agent_version(&c.tenant, &id, spec, expected_latest).await.map_err(store_err)?;
    let got = s.stores.control.agent_version(&c.tenant, &id, Some(v)).await.map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(got.into())))
}

#[utoipa::path(get, path = "/v1/agents/{agent_id}/versions/{version}", tag = "agents", params(("agent_id" = String, Path), ("version" = i32, Path)), responses((status = 200, body = VersionView), (status = 404, body = ErrorBody)))]
pub async fn version(c: Caller, State(s): State<AppState>, Path((id, v)): Path<(String, i32)>) -> Result<Json<VersionView>, ApiError> {
    c.require(Role::Viewer)?;
    Ok(Json(s.stores.control.agent_version(&c.tenant, &id, Some(v)).await.map_err(store_err)?.into()))
}

/// A version as stored: the kind checked, voice and language defaulted from `[agents]`.
pub(super) fn spec_of(s: &AppState, b: VersionSpec) -> Result<AgentVersionSpec, ApiError> {
    let kind = AgentKind::parse(&b.kind).map_err(|_| ApiError::bad_request("invalid_agent_kind", "kind must be `rulebook` or `prompt`"))?;
    let a = &s.config.agents;
    let voice = b.voice.filter(|v| !v.is_empty()).unwrap_or_else(|| a.voice.clone());
    let language = b.language.filter(|l| !l.is_empty()).unwrap_or_else(|| a.language.clone());
    Ok(AgentVersionSpec { kind, body: b.body, voice, language, providers: default_obj(b.providers), tools: default_arr(b.tools), analysis: default_obj(b.analysis) })
}

fn default_obj(v: Value) -> Value {
    if v.is_null() { Value::Object(Default::default()) } else { v }
}

fn default_arr(v: Value) -> Value {
    if v.is_null() { Value::Array(Vec::new()) } else { v }
}
