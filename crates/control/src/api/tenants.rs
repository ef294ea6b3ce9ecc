//! `/v1/tenants`: platform admins create tenants and set their plans; a tenant reads its own.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use callfunnel_data::control::{NewTenant, Plan, Tenant};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::common::{Body, ErrorBody, Page, PageParams, store_err};
use crate::auth::{Principal, Role};
use crate::http::{ApiError, AppState};

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct PlanView {
    /// Calls at once (absent: unlimited). New calls beyond it are refused, never live ones cut.
    #[serde(default)]
    pub max_concurrent_calls: Option<u32>,
    /// Call minutes per calendar month (UTC; absent: unlimited).
    #[serde(default)]
    pub monthly_minutes: Option<u32>,
    #[serde(default = "default_retention")]
    pub retention_days: u32,
    /// Providers the tenant's agents may use (absent: any), e.g. `["local", "deepgram"]`.
    #[serde(default)]
    pub allowed_providers: Option<Vec<String>>,
}

fn default_retention() -> u32 {
    90
}

impl From<Plan> for PlanView {
    fn from(p: Plan) -> Self {
        PlanView { max_concurrent_calls: p.max_concurrent_calls, monthly_minutes: p.monthly_minutes, retention_days: p.retention_days, allowed_providers: p.allowed_providers }
    }
}

impl From<PlanView> for Plan {
    fn from(p: PlanView) -> Self {
        Plan { max_concurrent_calls: p.max_concurrent_calls, monthly_minutes: p.monthly_minutes, retention_days: p.retention_days, allowed_providers: p.allowed_providers }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub plan: PlanView,
    pub created_at: i64,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        TenantView { id: t.id, name: t.name, plan: t.plan.into(), created_at: t.created_at }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenantBody {
    pub id: String,
    pub name: String,
    pub plan: PlanView,
}

/// Every tenant (platform admins only).
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(PageParams), responses((status = 200, body = Page<TenantView>), (status = 403, body = ErrorBody)))]
pub async fn list(who: Principal, State(s): State<AppState>, Query(p): Query<PageParams>) -> Result<Json<Page<TenantView>>, ApiError> {
    who.require(Role::PlatformAdmin)?;
    let all: Vec<TenantView> = s.stores.control.tenants().await.map_err(store_err)?.into_iter().map(Into::into).collect();
    Ok(Json(p.page(all, |t| t.id.clone())?))
}

#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = NewTenantBody, responses((status = 201, body = TenantView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(who: Principal, State(s): State<AppState>, Body(b): Body<NewTenantBody>) -> Result<(StatusCode, Json<TenantView>), ApiError> {
    who.require(Role::PlatformAdmin)?;
    let t = s.stores.control.create_tenant(NewTenant { id: b.id, name: b.name, plan: b.plan.into() }).await.map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(t.into())))
}

/// A tenant: platform admins read any, others only their own.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}", tag = "tenants", params(("tenant_id" = String, Path)), responses((status = 200, body = TenantView), (status = 404, body = ErrorBody)))]
pub async fn get_one(who: Principal, State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<TenantView>, ApiError> {
    who.require(Role::Viewer)?;
    if !who.is_platform_admin() && who.tenant.as_deref() != Some(id.as_str()) {
        return Err(ApiError::not_found("tenant_not_found", format!("tenant `{}` not found", id.chars().take(128).collect::<String>())));
    }
    Ok(Json(s.stores.control.tenant(&id).await.map_err(store_err)?.into()))
}

/// Sets a tenant's plan (platform admins only). Applies to new calls at once.
#[utoipa::path(put, path = "/v1/tenants/{tenant_id}/plan", tag = "tenants", params(("tenant_id" = String, Path)), request_body = PlanView, responses((status = 200, body = TenantView), (status = 403, body = ErrorBody)))]
pub async fn set_plan(who: Principal, State(s): State<AppState>, Path(id): Path<String>, Body(b): Body<PlanView>) -> Result<Json<TenantView>, ApiError> {
    who.require(Role::PlatformAdmin)?;
    Ok(Json(s.stores.control.set_plan(&id, b.into()).await.map_err(store_err)?.into()))
}
