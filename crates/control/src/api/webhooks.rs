//! `/v1/webhooks`: the tenant's endpoints for call and campaign events, and the delivery log.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use callfunnel_data::control::{NewWebhook, Webhook, WebhookDelivery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::common::{Body, ErrorBody, Page, PageParams, store_err};
use crate::auth::{Caller, Role};
use crate::http::{ApiError, AppState};
use crate::webhooks::EVENTS;

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookBody {
    /// https URL (http only in dev); private and loopback addresses are refused.
    pub url: String,
    /// Any of `call.started`, `call.ended`, `call.analyzed`, `campaign.completed`, or `*`.
    pub events: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub hook: WebhookView,
    /// The signing secret: shown only now. Verify `Callfunnel-Signature: t=TS,v1=HEX` as
    /// HMAC-SHA256(secret, "TS.BODY").
    pub secret: String,
}

fn view(h: Webhook) -> WebhookView {
    WebhookView { id: h.id, url: h.url, events: h.events, created_at: h.created_at }
}

#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = NewWebhookBody, responses((status = 201, body = CreatedWebhook), (status = 400, body = ErrorBody)))]
pub async fn create(c: Caller, State(s): State<AppState>, Body(b): Body<NewWebhookBody>) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    c.require(Role::TenantAdmin)?;
    if let Some(bad) = b.events.iter().find(|e| *e != "*" && !EVENTS.contains(&e.as_str())) {
        return Err(ApiError::bad_request("invalid_event", format!("unknown event `{}`; use one of {}", bad.chars().take(64).collect::<String>(), EVENTS.join(", "))));
    }
    s.webhook_url_allowed(&b.url).await?;
    let mut raw = [0u8; 24];
    aws_lc_rs::rand::fill(&mut raw).map_err(|_| ApiError::internal("no randomness"))?;
    let secret = format!("whsec_{}", raw.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let h = s.stores.control.create_webhook(&c.tenant, NewWebhook { url: b.url, events: b.events, secret: secret.clone() }).await.map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(CreatedWebhook { hook: view(h), secret })))
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", params(PageParams), responses((status = 200, body = Page<WebhookView>)))]
pub async fn list(c: Caller, State(s): State<AppState>, Query(p): Query<PageParams>) -> Result<Json<Page<WebhookView>>, ApiError> {
    c.require(Role::Viewer)?;
    let mut all: Vec<WebhookView> = s.stores.control.webhooks(&c.tenant).await.map_err(store_err)?.into_iter().map(view).collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(p.page(all, |h| h.id.clone())?))
}

#[utoipa::path(delete, path = "/v1/webhooks/{webhook_id}", tag = "webhooks", params(("webhook_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(c: Caller, State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    c.require(Role::TenantAdmin)?;
    s.stores.control.delete_webhook(&c.tenant, &id).await.map_err(store_err)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    pub webhook_id: Option<String>,
    /// At most this many, newest first (1-500, default 100).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub webhook_id: String,
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub response_status: Option<i32>,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<WebhookDelivery> for DeliveryView {
    fn from(d: WebhookDelivery) -> Self {
        DeliveryView { id: d.id, webhook_id: d.webhook_id, event: d.event, status: d.status.as_str().into(), attempts: d.attempts, last_error: d.last_error, response_status: d.response_status, next_attempt_at: d.next_attempt_at, created_at: d.created_at, updated_at: d.updated_at }
    }
}

/// The delivery log.
#[utoipa::path(get, path = "/v1/webhooks/deliveries", tag = "webhooks", params(DeliveryFilter), responses((status = 200, body = Page<DeliveryView>)))]
pub async fn deliveries(c: Caller, State(s): State<AppState>, Query(f): Query<DeliveryFilter>) -> Result<Json<Page<DeliveryView>>, ApiError> {
    c.require(Role::Viewer)?;
    let limit = f.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", "limit must be between 1 and 500"));
    }
    let data = s.stores.control.deliveries(&c.tenant, f.webhook_id.as_deref(), limit).await.map_err(store_err)?.into_iter().map(Into::into).collect();
    Ok(Json(Page { data, next_cursor: None }))
}
