//! `/v1/campaigns`: outbound campaigns — contacts with per-row variables, a calling window in
//! the callees' timezone, concurrency, retries; start, pause, resume, cancel; progress.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use callfunnel_data::control::{Campaign, CampaignContact, CampaignProgress, CampaignStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::common::{Body, ErrorBody, Page, PageParams, store_err};
use crate::auth::{Caller, Role};
use crate::campaigns::CampaignSettings;
use crate::http::{ApiError, AppState};

/// Contacts per request (add more with `POST /v1/campaigns/{id}/contacts`).
pub const MAX_CONTACTS_PER_REQUEST: usize = 10_000;

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRow {
    /// E.164, e.g. `+15550100199`.
    pub number: String,
    /// Template variables for this call (name, appointment time, ...).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Value,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    pub id: String,
    pub name: String,
    pub agent_id: String,
    pub settings: CampaignSettings,
    #[serde(default)]
    pub contacts: Vec<ContactRow>,
    /// Start dialling at once (default: created as `draft`).
    #[serde(default)]
    pub start: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ProgressView {
    pub total: i64,
    pub pending: i64,
    pub dialing: i64,
    pub done: i64,
    pub failed: i64,
    pub attempts: i64,
}

impl From<CampaignProgress> for ProgressView {
    fn from(p: CampaignProgress) -> Self {
        ProgressView { total: p.total, pending: p.pending, dialing: p.dialing, done: p.done, failed: p.failed, attempts: p.attempts }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CampaignView {
    pub id: String,
    pub name: String,
    pub agent_id: String,
    /// `draft`, `running`, `paused`, `completed`, `cancelled`.
    pub status: String,
    #[schema(value_type = Object)]
    pub settings: Value,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<ProgressView>,
}

fn view(c: Campaign, progress: Option<CampaignProgress>) -> CampaignView {
    CampaignView { id: c.id, name: c.name, agent_id: c.agent_id, status: c.status.as_str().into(), settings: c.window, created_at: c.created_at, progress: progress.map(Into::into) }
}

fn contacts_of(rows: Vec<ContactRow>) -> Result<Vec<(String, Value)>, ApiError> {
    if rows.len() > MAX_CONTACTS_PER_REQUEST {
        return Err(ApiError::bad_request("too_many_contacts", format!("at most {MAX_CONTACTS_PER_REQUEST} contacts per request")));
    }
    rows.into_iter()
        .enumerate()
        .map(|(i, r)| {
            if !crate::http::outbound::valid_number(&r.number) {
                return Err(ApiError::bad_request("invalid_number", format!("contact {i}: `{}` is not a phone number like +15550100199", r.number.chars().take(40).collect::<String>())));
            }
            let vars = if r.variables.is_null() { Value::Object(Default::default()) } else { r.variables };
            if !vars.is_object() {
                return Err(ApiError::bad_request("invalid_variables", format!("contact {i}: variables must be an object")));
            }
            Ok((r.number, vars))
        })
        .collect()
}

#[utoipa::path(post, path = "/v1/campaigns", tag = "campaigns", request_body = NewCampaign, responses((status = 201, body = CampaignView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(c: Caller, State(s): State<AppState>, Body(b): Body<NewCampaign>) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    c.require(Role::Editor)?;
    b.settings.validate().map_err(|e| ApiError::bad_request("invalid_settings", e))?;
    s.stores.control.agent(&c.tenant, &b.agent_id).await.map_err(store_err)?;
    let contacts = contacts_of(b.contacts)?;
    let settings = serde_json::to_value(&b.settings).map_err(|e| ApiError::internal(e.to_string()))?;
    s.stores.control.create_campaign(&c.tenant, &b.id, &b.agent_id, &b.name, settings).await.map_err(store_err)?;
    if !contacts.is_empty() {
        s.stores.control.add_campaign_contacts(&c.tenant, &b.id, contacts).await.map_err(store_err)?;
    }
    if b.start {
        s.stores.control.set_campaign_status(&c.tenant, &b.id, CampaignStatus::Running).await.map_err(store_err)?;
    }
    let got = s.stores.control.campaign(&c.tenant, &b.id).await.map_err(store_err)?;
    let p = s.stores.control.campaign_progress(&c.tenant, &b.id).await.map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(view(got, Some(p)))))
}

#[utoipa::path(get, path = "/v1/campaigns", tag = "campaigns", params(PageParams), responses((status = 200, body = Page<CampaignView>)))]
pub async fn list(c: Caller, State(s): State<AppState>, Query(p): Query<PageParams>) -> Result<Json<Page<CampaignView>>, ApiError> {
    c.require(Role::Viewer)?;
    let mut all: Vec<CampaignView> = s.stores.control.campaigns(&c.tenant).await.map_err(store_err)?.into_iter().map(|x| view(x, None)).collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(p.page(all, |x| x.id.clone())?))
}

#[utoipa::path(get, path = "/v1/campaigns/{campaign_id}", tag = "campaigns", params(("campaign_id" = String, Path)), responses((status = 200, body = CampaignView), (status = 404, body = ErrorBody)))]
pub async fn get_one(c: Caller, State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    c.require(Role::Viewer)?;
    let got = s.stores.control.campaign(&c.tenant, &id).await.map_err(store_err)?;
    let p = s.stores.control.campaign_progress(&c.tenant, &id).await.map_err(store_err)?;
    Ok(Json(view(got, Some(p))))
}

#[derive(Serialize, ToSchema)]
pub struct Added {
    pub added: usize,
}

#[utoipa::path(post, path = "/v1/campaigns/{campaign_id}/contacts", tag = "campaigns", params(("campaign_id" = String, Path)), request_body = Vec<ContactRow>, responses((status = 200, body = Added), (status = 404, body = ErrorBody)))]
pub async fn add_contacts(c: Caller, State(s): State<AppState>, Path(id): Path<String>, Body(rows): Body<Vec<ContactRow>>) -> Result<Json<Added>, ApiError> {
    c.require(Role::Editor)?;
    let contacts = contacts_of(rows)?;
    let added = s.stores.control.add_campaign_contacts(&c.tenant, &id, contacts).await.map_err(store_err)?;
    Ok(Json(Added { added }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactPage {
    /// Contacts after this id (from the previous page's last one).
    pub after: Option<i64>,
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ContactView {
    pub id: i64,
    pub number: String,
    #[schema(value_type = Object)]
    pub variables: Value,
    pub status: String,
    pub attempts: i32,
    pub last_outcome: Option<String>,
    pub last_call_id: Option<String>,
    pub next_attempt_at: i64,
}

impl From<CampaignContact> for ContactView {
    fn from(x: CampaignContact) -> Self {
        ContactView { id: x.id, number: x.number, variables: x.vars, status: x.status.as_str().into(), attempts: x.attempts, last_outcome: x.last_outcome, last_call_id: x.last_call_id, next_attempt_at: x.next_attempt_at }
    }
}

#[utoipa::path(get, path = "/v1/campaigns/{campaign_id}/contacts", tag = "campaigns", params(("campaign_id" = String, Path), ContactPage), responses((status = 200, body = Page<ContactView>)))]
pub async fn contacts(c: Caller, State(s): State<AppState>, Path(id): Path<String>, Query(q): Query<ContactPage>) -> Result<Json<Page<ContactView>>, ApiError> {
    c.require(Role::Viewer)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", "limit must be between 1 and 1000"));
    }
    s.stores.control.campaign(&c.tenant, &id).await.map_err(store_err)?;
    let rows = s.stores.control.campaign_contacts(&c.tenant, &id, q.after.unwrap_or(0), limit).await.map_err(store_err)?;
    let next_cursor = (rows.len() as u32 == limit).then(|| rows.last().map(|r| r.id.to_string())).flatten();
    Ok(Json(Page { data: rows.into_iter().map(Into::into).collect(), next_cursor }))
}

async fn transition(c: &Caller, s: &AppState, id: &str, from: &[CampaignStatus], to: CampaignStatus) -> Result<Json<CampaignView>, ApiError> {
    c.require(Role::Editor)?;
    let got = s.stores.control.campaign(&c.tenant, id).await.map_err(store_err)?;
    if !from.contains(&got.status) {
        return Err(ApiError::new(StatusCode::CONFLICT, "invalid_campaign_state", format!("campaign `{id}` is {}; cannot become {}", got.status, to)));
    }
    s.stores.control.set_campaign_status(&c.tenant, id, to).await.map_err(store_err)?;
    let got = s.stores.control.campaign(&c.tenant, id).await.map_err(store_err)?;
    Ok(Json(view(got, None)))
}

#[utoipa::path(post, path = "/v1/campaigns/{campaign_id}/start", tag = "campaigns", params(("campaign_id" = String, Path)), responses((status = 200, body = CampaignView), (status = 409, body = ErrorBody)))]
pub async fn start(c: Caller, State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    transition(&c, &s, &id, &[CampaignStatus::Draft], CampaignStatus::Running).await
}

/// Stops placing new calls (calls in progress finish).
#[utoipa::path(post, path = "/v1/campaigns/{campaign_id}/pause", tag = "campaigns", params(("campaign_id" = String, Path)), responses((status = 200, body = CampaignView), (status = 409, body = ErrorBody)))]
pub async fn pause(c: Caller, State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    transition(&c, &s, &id, &[CampaignStatus::Running], CampaignStatus::Paused).await
}

#[utoipa::path(post, path = "/v1/campaigns/{campaign_id}/resume", tag = "campaigns", params(("campaign_id" = String, Path)), responses((status = 200, body = CampaignView), (status = 409, body = ErrorBody)))]
pub async fn resume(c: Caller, State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    transition(&c, &s, &id, &[CampaignStatus::Paused], CampaignStatus::Running).await
}

#[utoipa::path(post, path = "/v1/campaigns/{campaign_id}/cancel", tag = "campaigns", params(("campaign_id" = String, Path)), responses((status = 200, body = CampaignView), (status = 409, body = ErrorBody)))]
pub async fn cancel(c: Caller, State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<CampaignView>, ApiError> {
    transition(&c, &s, &id, &[CampaignStatus::Draft, CampaignStatus::Running, CampaignStatus::Paused], CampaignStatus::Cancelled).await
}
