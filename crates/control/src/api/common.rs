//! Pieces every `/v1` route shares: JSON bodies with coded errors, store errors mapped to
//! stable codes, pagination, idempotency keys.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use callfunnel_data::DataError;
use callfunnel_data::control::IdempotencyState;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::{ApiError, AppState};

/// A JSON request body; a malformed one is a 400 `invalid_body` naming what is wrong.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(e) => Err(ApiError::bad_request("invalid_body", e.body_text())),
        }
    }
}

/// The error body of every failed request.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Human-readable; may change between versions.
    pub message: String,
    /// Stable machine-readable code, e.g. `invalid_token`, `agent_not_found`.
    pub code: String,
    /// `invalid_request`, `auth` or `internal`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Maps a store error to a coded API error. Backend details are logged, not returned.
pub fn store_err(e: DataError) -> ApiError {
    match e {
        DataError::InvalidId(_) => ApiError::bad_request("invalid_id", e.to_string()),
        DataError::Invalid { .. } => ApiError::bad_request("invalid_request", e.to_string()),
        DataError::NotFound { what, .. } => ApiError::not_found(not_found_code(what), e.to_string()),
        DataError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
        DataError::Limit(_) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "limit_reached", e.to_string()),
        other => {
            tracing::error!(error = %other, "store error");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "a data store is unavailable; retry later")
        }
    }
}

fn not_found_code(what: &str) -> &'static str {
    match what {
        "tenant" => "tenant_not_found",
        "agent" | "agent version" => "agent_not_found",
        "number" | "phone number" => "number_not_found",
        "knowledge base" => "knowledge_base_not_found",
        "document" => "document_not_found",
        "campaign" => "campaign_not_found",
        "api key" => "api_key_not_found",
        "webhook" => "webhook_not_found",
        "invoice" => "invoice_not_found",
        _ => "not_found",
    }
}

/// `?limit=&cursor=`: pages of at most `limit` (1-200, default 50) items after `cursor` (opaque:
/// pass back `next_cursor`).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit.unwrap_or(50) {
            n @ 1..=200 => Ok(n as usize),
            _ => Err(ApiError::bad_request("invalid_limit", "limit must be between 1 and 200")),
        }
    }

    /// Pages a list sorted by `key`: the items after the cursor, and the cursor of the next page.
    pub fn page<T>(&self, items: Vec<T>, key: impl Fn(&T) -> String) -> Result<Page<T>, ApiError> {
        let limit = self.limit()?;
        let mut rest: Vec<T> = match &self.cursor {
            Some(c) => items.into_iter().skip_while(|i| key(i) <= *c).collect(),
            None => items,
        };
        let next_cursor = (rest.len() > limit).then(|| key(&rest[limit - 1]));
        rest.truncate(limit);
        Ok(Page { data: rest, next_cursor })
    }
}

#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `Idempotency-Key`: a POST repeated with the same key (and body) returns the first response
/// instead of acting twice; the same key with another body is refused.
pub struct Idempotent {
    key: Option<String>,
    tenant: String,
}

pub enum Begun {
    Run(Idempotent),
    Replay(Response),
}

/// `route` names the operation (e.g. `POST /v1/calls`): a key reused on another route is refused.
pub async fn begin_idempotent(s: &AppState, tenant: &str, route: &str, headers: &HeaderMap, body: &impl Serialize) -> Result<Begun, ApiError> {
    let Some(key) = headers.get("idempotency-key") else {
        return Ok(Begun::Run(Idempotent { key: None, tenant: tenant.into() }));
    };
    let key = key.to_str().ok().filter(|k| (1..=255).contains(&k.len())).ok_or_else(|| ApiError::bad_request("invalid_idempotency_key", "Idempotency-Key must be 1-255 printable ASCII characters"))?;
    let request = format!("{route}\n{}", serde_json::to_string(body).unwrap_or_default());
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, request.as_bytes());
    let hash: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    match s.stores.control.idempotency_begin(tenant, key, &hash).await.map_err(store_err)? {
        IdempotencyState::New => Ok(Begun::Run(Idempotent { key: Some(key.to_string()), tenant: tenant.into() })),
        IdempotencyState::InProgress => Err(ApiError::new(StatusCode::CONFLICT, "idempotency_in_progress", "a request with this Idempotency-Key is still running")),
        IdempotencyState::Mismatch => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", "this Idempotency-Key was used with a different request body")),
        IdempotencyState::Done { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            Ok(Begun::Replay((status, [("content-type", "application/json"), ("idempotent-replayed", "true")], body).into_response()))
        }
    }
}

impl Idempotent {
    /// Stores the outcome (success or a client error) for replays; a server error frees the key.
    pub async fn finish(self, s: &AppState, result: Result<(StatusCode, serde_json::Value), ApiError>) -> Response {
        let Some(key) = self.key else {
            return match result {
                Ok((st, v)) => (st, axum::Json(v)).into_response(),
                Err(e) => e.into_response(),
            };
        };
        let (status, body) = match &result {
            Ok((st, v)) => (*st, v.to_string()),
            Err(e) => (e.status, serde_json::to_string(&e.body()).unwrap_or_default()),
        };
        let saved = if status.is_server_error() {
            s.stores.control.idempotency_abort(&self.tenant, &key).await
        } else {
            s.stores.control.idempotency_finish(&self.tenant, &key, status.as_u16(), &body).await
        };
        if let Err(e) = saved {
            tracing::warn!(error = %e, "idempotency record not saved");
        }
        (status, [("content-type", "application/json")], body).into_response()
    }
}
