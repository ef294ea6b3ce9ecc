//! Embedded recordings: the short-lived signed links `GET /v1/calls/{id}/recording` hands out
//! (`/recordings/TENANT/CALL.wav?expires=&sig=`). With S3 the links point at S3 instead.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/recordings/{tenant}/{file}", get(download))
}

#[derive(Deserialize)]
struct Link {
    expires: u64,
    sig: String,
}

async fn download(State(s): State<AppState>, Path((tenant, file)): Path<(String, String)>, Query(l): Query<Link>) -> Result<Response, ApiError> {
    let local = s.stores.local_recordings.as_ref().ok_or_else(|| ApiError::not_found("route_not_found", "recordings are in S3"))?;
    let call_id = file.strip_suffix(".wav").ok_or_else(|| ApiError::not_found("recording_not_found", "no such recording"))?;
    local.verify_presigned(&tenant, call_id, l.expires, &l.sig).map_err(|e| ApiError::forbidden("invalid_link", e.to_string()))?;
    let bytes = s.stores.recordings.get(&tenant, call_id).await.map_err(crate::api::common::store_err)?;
    Ok(([("content-type", "audio/wav")], bytes).into_response())
}
