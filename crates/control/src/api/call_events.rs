//! `GET /v1/calls/events`: the tenant's call events as they happen (Server-Sent Events).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use crate::auth::{Caller, Role};
use crate::http::{ApiError, AppState};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only this call's events.
    pub call_id: Option<String>,
}

/// Every timeline event of the tenant's calls, as it is written (in a fleet with a shared hot
/// state, the other nodes' too, relayed from about the moment this stream opened): `event: call`
/// with `{call_id, seq, at_ms, unix_ms, kind, data}`. `event: lagged` means events were
/// skipped because the reader fell behind: reload what you show. A comment every 15 s keeps
/// the stream open through proxies.
#[utoipa::path(get, path = "/v1/calls/events", tag = "calls", params(EventFilter), responses((status = 200, content_type = "text/event-stream", body = String)))]
pub async fn events(c: Caller, State(s): State<AppState>, Query(f): Query<EventFilter>) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    c.require(Role::Viewer)?;
    if let Some(id) = &f.call_id {
        callfunnel_data::check_id(id).map_err(|e| ApiError::bad_request("invalid_call_id", e.to_string()))?;
    }
    let rx = s.live.subscribe();
    let (tenant, call, stop) = (c.tenant.clone(), f.call_id, s.shutdown.clone());
    let stream = futures::stream::unfold((rx, tenant, call, stop), |(mut rx, tenant, call, stop)| async move {
        loop {
            let got = tokio::select! {
                _ = stop.cancelled() => return None,
                got = rx.recv() => got,
            };
            let ev = match got {
                Ok(e) if e.tenant_id == tenant && call.as_ref().is_none_or(|c| *c == e.call_id) => {
                    Event::default().event("call").json_data(&*e).unwrap_or_else(|_| Event::default().comment("unserializable"))
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok(ev), (rx, tenant, call, stop)));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
