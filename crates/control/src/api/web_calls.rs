//! `POST /v1/calls/web`: a call from the browser (the console's "talk to this agent"). The plan
//! is made here, for the signed-in user's tenant and the agent asked for; the page then opens
//! the returned WebSocket and streams its microphone (see `callfunnel_media::web`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use callfunnel_media::carrier::Carrier;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::common::{Body, ErrorBody};
use crate::auth::{Caller, Role};
use crate::http::{ApiError, AppState};
use crate::routing::{CallPlan, Direction, new_call_id};

/// The page must connect within this long, or the call's admission is given back.
const CONNECT_WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebCall {
    pub agent_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebCall {
    pub call_id: String,
    /// The media WebSocket (its call token is in the path), on the public host.
    pub url: String,
    /// The same, as a path on whichever host the page is served from.
    pub path: String,
    pub expires_in_s: u64,
}

#[utoipa::path(post, path = "/v1/calls/web", tag = "calls", request_body = NewWebCall, responses((status = 201, body = WebCall), (status = 400, body = ErrorBody), (status = 402, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create(c: Caller, State(s): State<AppState>, Body(b): Body<NewWebCall>) -> Result<(StatusCode, Json<WebCall>), ApiError> {
    c.require(Role::Editor)?;
    callfunnel_data::check_id(&b.agent_id).map_err(|e| ApiError::bad_request("invalid_agent_id", e.to_string()))?;
    s.hub.check_agent(&c.tenant, &b.agent_id).await.map_err(|e| ApiError::not_found("agent_not_found", format!("agent `{}`: {e}", b.agent_id)))?;
    let call_id = new_call_id();
    if let Err(r) = crate::admission::admit(&s.stores, &s.config, &c.tenant, &b.agent_id, &call_id).await {
        return Err(r.api_error());
    }
    let from = format!("browser:{}", c.who.subject.chars().take(64).collect::<String>());
    let plan = CallPlan { tenant_id: c.tenant.clone(), agent_id: b.agent_id, from, to: String::new(), direction: Direction::Inbound, carrier: Carrier::Web, carrier_sid: String::new(), screening: None };
    s.registry.plans.insert_shared(&call_id, plan).await;
    crate::admission::release_unless_started(s.stores.clone(), s.registry.clone(), call_id.clone(), CONNECT_WITHIN);
    let path = format!("/web/media/{call_id}/{}", s.auth.call_tokens.mint(&call_id));
    Ok((StatusCode::CREATED, Json(WebCall { call_id, url: s.public_ws(&path), path, expires_in_s: s.config.auth.call_token_ttl_secs })))
}
