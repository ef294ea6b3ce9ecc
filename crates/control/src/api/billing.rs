//! `/v1/usage` and `/v1/invoices`: metered usage from the ledger, and monthly invoices.

use axum::extract::{Path, Query, State};
use axum::Json;
use callfunnel_data::control::{Invoice, UsageTotal};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::common::{ErrorBody, store_err};
use crate::auth::{Caller, Role};
use crate::http::{ApiError, AppState};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageRange {
    /// Start (unix ms, inclusive); default: the start of this month (UTC).
    pub from_ms: Option<i64>,
    /// End (unix ms, exclusive); default: now.
    pub to_ms: Option<i64>,
    /// `day`: one line per UTC day, metric and provider (each with `day_start_ms`), for up to
    /// 366 days; by default the range's totals.
    pub group_by: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UsageLine {
    /// `call_ms`, `stt_ms`, `llm_input_tokens`, `llm_output_tokens`, `llm_cached_tokens`, `tts_characters`.
    pub metric: String,
    pub provider: String,
    pub quantity: i64,
    /// With `group_by=day`: the day's first instant (unix ms, midnight UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day_start_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct UsageView {
    pub from_ms: i64,
    pub to_ms: i64,
    pub lines: Vec<UsageLine>,
}

impl From<UsageTotal> for UsageLine {
    fn from(u: UsageTotal) -> Self {
        UsageLine { metric: u.metric.as_str().into(), provider: u.provider, quantity: u.quantity, day_start_ms: None }
    }
}


#[utoipa::path(get, path = "/v1/usage", tag = "billing", params(UsageRange), responses((status = 200, body = UsageView)))]
pub async fn usage(c: Caller, State(s): State<AppState>, Query(r): Query<UsageRange>) -> Result<Json<UsageView>, ApiError> {
    c.require(Role::Viewer)?;
    let now = chrono::Utc::now();
    let (from_ms, to_ms) = (r.from_ms.unwrap_or_else(|| crate::admission::month_start_ms(now)), r.to_ms.unwrap_or_else(|| now.timestamp_millis()));
    if from_ms > to_ms {
        return Err(ApiError::bad_request("invalid_range", "from_ms must not be after to_ms"));
    }
    let lines = match r.group_by.as_deref() {
        None => s.stores.control.usage_summary(&c.tenant, from_ms, to_ms).await.map_err(store_err)?.into_iter().map(Into::into).collect(),
        Some("day") => {
            if to_ms - from_ms > 366 * 86_400_000 {
                return Err(ApiError::bad_request("invalid_range", "group_by=day covers at most 366 days"));
            }
            let days = s.stores.control.usage_by_day(&c.tenant, from_ms, to_ms).await.map_err(store_err)?;
            days.into_iter().map(|d| UsageLine { day_start_ms: Some(d.day_start_ms), ..d.usage.into() }).collect()
        }
        Some(other) => return Err(ApiError::bad_request("invalid_group_by", format!("group_by {other:?}: use `day` or leave it out"))),
    };
    Ok(Json(UsageView { from_ms, to_ms, lines }))
}

#[derive(Serialize, ToSchema)]
pub struct InvoiceLineView {
    pub metric: String,
    pub provider: String,
    pub quantity: i64,
    pub micros_per_1000_units: i64,
    pub amount_micros: i64,
}

#[derive(Serialize, ToSchema)]
pub struct InvoiceView {
    pub id: String,
    /// `YYYY-MM` (UTC).
    pub period: String,
    pub lines: Vec<InvoiceLineView>,
    /// Money in micro-units (1 unit = 1,000,000 micros).
    pub total_micros: i64,
    pub issued_at: i64,
}

impl From<Invoice> for InvoiceView {
    fn from(i: Invoice) -> Self {
        let lines = i.lines.into_iter().map(|l| InvoiceLineView { metric: l.metric.as_str().into(), provider: l.provider, quantity: l.quantity, micros_per_1000_units: l.micros_per_1000_units, amount_micros: l.amount_micros }).collect();
        InvoiceView { id: i.id, period: i.period, lines, total_micros: i.total_micros, issued_at: i.issued_at }
    }
}

/// The invoice of a closed month (`YYYY-MM`), issued on first request and immutable after.
#[utoipa::path(get, path = "/v1/invoices/{period}", tag = "billing", params(("period" = String, Path, description = "YYYY-MM")), responses((status = 200, body = InvoiceView), (status = 409, body = ErrorBody)))]
pub async fn invoice(c: Caller, State(s): State<AppState>, Path(period): Path<String>) -> Result<Json<InvoiceView>, ApiError> {
    c.require(Role::TenantAdmin)?;
    let current = chrono::Utc::now().format("%Y-%m").to_string();
    let valid = period.len() == 7 && chrono::NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").is_ok();
    if !valid {
        return Err(ApiError::bad_request("invalid_period", "period must be YYYY-MM"));
    }
    if period >= current {
        return Err(ApiError::new(axum::http::StatusCode::CONFLICT, "period_open", format!("{period} is not over yet; see /v1/usage for usage so far")));
    }
    Ok(Json(s.stores.control.invoice(&c.tenant, &period).await.map_err(store_err)?.into()))
}
