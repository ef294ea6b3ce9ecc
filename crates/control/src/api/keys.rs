//! `/v1/api-keys`: keys for server-to-server use. Only a SHA-256 is stored; the key is shown once.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use callfunnel_data::control::ApiKeyInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::common::{Body, ErrorBody, Page, PageParams, store_err};
use crate::auth::{Caller, Role};
use crate::http::{ApiError, AppState};

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    /// `viewer`, `editor` or `tenant-admin`; at most the creator's own role.
    pub role: String,
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub info: KeyView,
    /// The key itself: shown only now. Send it as `Authorization: Bearer KEY`.
    pub key: String,
}

fn view(k: ApiKeyInfo) -> KeyView {
    KeyView { role: k.scopes.first().cloned().unwrap_or_default(), id: k.id, name: k.name, created_at: k.created_at }
}

#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = NewKey, responses((status = 201, body = CreatedKey), (status = 403, body = ErrorBody)))]
pub async fn create(c: Caller, State(s): State<AppState>, Body(b): Body<NewKey>) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    c.require(Role::TenantAdmin)?;
    let role = Role::parse(&b.role).filter(|r| *r != Role::PlatformAdmin).ok_or_else(|| ApiError::bad_request("invalid_role", "role must be viewer, editor or tenant-admin"))?;
    if role > c.who.role {
        return Err(ApiError::forbidden("insufficient_role", "a key cannot hold a higher role than its creator"));
    }
    let (info, key) = s.stores.control.create_api_key(&c.tenant, &b.name, vec![role.as_str().to_string()]).await.map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(CreatedKey { info: view(info), key: key.expose().to_string() })))
}

#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", params(PageParams), responses((status = 200, body = Page<KeyView>)))]
pub async fn list(c: Caller, State(s): State<AppState>, Query(p): Query<PageParams>) -> Result<Json<Page<KeyView>>, ApiError> {
    c.require(Role::TenantAdmin)?;
    let mut all: Vec<KeyView> = s.stores.control.api_keys(&c.tenant).await.map_err(store_err)?.into_iter().map(view).collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(p.page(all, |k| k.id.clone())?))
}

#[utoipa::path(delete, path = "/v1/api-keys/{key_id}", tag = "api-keys", params(("key_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke(c: Caller, State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    c.require(Role::TenantAdmin)?;
    s.stores.control.revoke_api_key(&c.tenant, &id).await.map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}
