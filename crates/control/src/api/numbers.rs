//! `/v1/numbers`: the tenant's phone numbers and the agent each one reaches.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use callfunnel_data::control::PhoneNumber;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::common::{Body, ErrorBody, Page, PageParams, store_err};
use crate::auth::{Caller, Role};
use crate::http::{ApiError, AppState};

#[derive(Serialize, ToSchema)]
pub struct NumberView {
    /// E.164, e.g. `+15550100199`.
    pub number: String,
    pub agent_id: String,
    pub created_at: i64,
}

impl From<PhoneNumber> for NumberView {
    fn from(n: PhoneNumber) -> Self {
        NumberView { number: n.number, agent_id: n.agent_id, created_at: n.created_at }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindNumber {
    pub agent_id: String,
}

#[utoipa::path(get, path = "/v1/numbers", tag = "numbers", params(PageParams), responses((status = 200, body = Page<NumberView>)))]
pub async fn list(c: Caller, State(s): State<AppState>, Query(p): Query<PageParams>) -> Result<Json<Page<NumberView>>, ApiError> {
    c.require(Role::Viewer)?;
    let all: Vec<NumberView> = s.stores.control.numbers(&c.tenant).await.map_err(store_err)?.into_iter().map(Into::into).collect();
    Ok(Json(p.page(all, |n| n.number.clone())?))
}

/// Binds a number to one of the tenant's agents (a number belongs to one tenant).
#[utoipa::path(put, path = "/v1/numbers/{number}", tag = "numbers", params(("number" = String, Path)), request_body = BindNumber, responses((status = 200, body = NumberView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn bind(c: Caller, State(s): State<AppState>, Path(number): Path<String>, Body(b): Body<BindNumber>) -> Result<Json<NumberView>, ApiError> {
    c.require(Role::TenantAdmin)?;
    s.stores.control.agent(&c.tenant, &b.agent_id).await.map_err(store_err)?;
    Ok(Json(s.stores.control.assign_number(&c.tenant, &number, &b.agent_id).await.map_err(store_err)?.into()))
}

#[utoipa::path(delete, path = "/v1/numbers/{number}", tag = "numbers", params(("number" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn release(c: Caller, State(s): State<AppState>, Path(number): Path<String>) -> Result<StatusCode, ApiError> {
    c.require(Role::TenantAdmin)?;
    s.stores.control.release_number(&c.tenant, &number).await.map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}
