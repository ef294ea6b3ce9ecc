//! The Exotel side of the fake carrier: the Connect API (flow and `streamurl` variants), the
//! Voicebot applet connecting to us with Basic auth, the Passthru applet, status callbacks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{basic, Answer, Call, CarrierEvent, CarrierKind, MediaLeg, State};

pub fn routes() -> Router<Arc<State>> {
    Router::new().route("/v1/Accounts/{sid}/Calls/{connect}", post(connect_flow)).route("/v1/accounts/{sid}/calls/connect", post(connect_stream))
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"RestException": {"Status": status.as_u16(), "Message": message}}))).into_response()
}

fn check(st: &State, sid: &str, headers: &HeaderMap) -> Result<(), Response> {
    let c = &st.cfg;
    match basic(headers) {
        Some((k, t)) if k == c.exotel_api_key && t == c.exotel_api_token && sid == c.exotel_account_sid => Ok(()),
        _ => {
            st.log(CarrierEvent::Refused { reason: "bad credentials".into() });
            Err(refuse(StatusCode::UNAUTHORIZED, "Authentication required"))
        }
    }
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn start(st: &Arc<State>, f: &HashMap<String, String>, lower: bool) -> (String, CancellationToken) {
    let call_sid = uuid::Uuid::new_v4().simple().to_string();
    let hangup = CancellationToken::new();
    st.calls.lock().insert(call_sid.clone(), Call { hangup: hangup.clone(), ended: false });
    let to = f.get(if lower { "from" } else { "From" }).cloned().unwrap_or_default();
    st.log(CarrierEvent::CallCreated { carrier: CarrierKind::Exotel, call_sid: call_sid.clone(), to });
    (call_sid, hangup)
}

async fn connect_flow(AxState(st): AxState<Arc<State>>, Path((sid, connect)): Path<(String, String)>, headers: HeaderMap, body: Bytes) -> Response {
    if connect != "connect" && connect != "connect.json" {
        return refuse(StatusCode::NOT_FOUND, "not found");
    }
    if let Err(r) = check(&st, &sid, &headers) {
        return r;
    }
    let f = form(&body);
    if ["From", "CallerId", "Url"].iter().any(|k| f.get(*k).is_none_or(String::is_empty)) {
        return refuse(StatusCode::BAD_REQUEST, "From, CallerId and Url are required");
    }
    let (call_sid, hangup) = start(&st, &f, false);
    tokio::spawn(run(st, call_sid.clone(), f, false, hangup));
    Json(json!({"Call": {"Sid": call_sid, "Status": "in-progress", "Direction": "outbound-api"}})).into_response()
}

async fn connect_stream(AxState(st): AxState<Arc<State>>, Path(sid): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = check(&st, &sid, &headers) {
        return r;
    }
    let f = form(&body);
    if ["from", "callerid", "streamurl"].iter().any(|k| f.get(*k).is_none_or(String::is_empty)) {
        return refuse(StatusCode::BAD_REQUEST, "from, callerid and streamurl are required");
    }
    let (call_sid, hangup) = start(&st, &f, true);
    tokio::spawn(run(st, call_sid.clone(), f, true, hangup));
    Json(json!({"call": {"sid": call_sid, "status": "queued", "direction": "outbound-api"}})).into_response()
}

/// `wss://user:pass@host/path` → the URL without credentials and the Basic header Exotel sends.
fn split_credentials(url: &str) -> (String, Vec<(String, String)>) {
    let Some((scheme, rest)) = url.split_once("://") else { return (url.to_string(), Vec::new()) };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((cred, host)) => (format!("{scheme}://{host}{path}"), vec![("Authorization".into(), format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(cred)))]),
        None => (url.to_string(), Vec::new()),
    }
}

async fn run(st: Arc<State>, call_sid: String, f: HashMap<String, String>, direct: bool, hangup: CancellationToken) {
    let g = |a: &str, b: &str| f.get(a).or_else(|| f.get(b)).cloned().unwrap_or_default();
    let (customer, exophone) = (g("From", "from"), g("CallerId", "callerid"));
    let status_cb = g("StatusCallback", "statuscallback");
    let answer = st.answer_for(&customer);
    let final_status = match answer {
        Answer::Busy => Some("busy"),
        Answer::NoAnswer => Some("no-answer"),
        _ => None,
    };
    let mut stream_status = "completed";
    if final_status.is_none() {
        let url = if direct { g("streamurl", "streamurl") } else { voicebot_url(&st, &call_sid, &customer, &exophone, &g("CustomField", "CustomField")).await };
        let (ws_url, headers) = split_credentials(&url);
        let leg = MediaLeg { carrier: CarrierKind::Exotel, ws_url: ws_url.clone(), headers, call_sid: call_sid.clone(), from: customer.clone(), to: exophone.clone(), custom_parameters: HashMap::new(), answer, hangup: hangup.clone() };
        st.log(CarrierEvent::StreamOpened { call_sid: call_sid.clone(), url: ws_url });
        let ended_by = st.cfg.callee.answer(leg).await;
        if ended_by.contains("error") || ended_by.contains("cannot") {
            stream_status = "failed";
        }
        st.log(CarrierEvent::StreamEnded { call_sid: call_sid.clone(), ended_by });
        if !direct && !st.cfg.exotel_passthru_url.is_empty() {
            passthru(&st, &call_sid, &customer, &exophone, stream_status).await;
        }
    }
    st.calls.lock().entry(call_sid.clone()).and_modify(|c| c.ended = true);
    if !status_cb.is_empty() {
        let p = [("CallSid", call_sid.clone()), ("Status", final_status.unwrap_or("completed").to_string()), ("EventType", "terminal".into()), ("DateUpdated", "2026-11-25 10:00:00".into()), ("To", exophone), ("From", customer), ("RecordingUrl", String::new())];
        let (code, _) = super::post_form(&st.http, &status_cb, &[], &p).await;
        st.log(CarrierEvent::StatusSent { call_sid, status: final_status.unwrap_or("completed").into(), sequence: 0, http_status: code });
    }
}

/// The Voicebot applet's URL: fixed `wss://…`, or asked per call from an `https://` endpoint.
async fn voicebot_url(st: &State, call_sid: &str, from: &str, to: &str, custom: &str) -> String {
    let u = &st.cfg.exotel_voicebot_url;
    if u.starts_with("ws://") || u.starts_with("wss://") {
        return u.clone();
    }
    let q = [("CallSid", call_sid), ("CallFrom", from), ("CallTo", to), ("Direction", "outbound-api"), ("CustomField", custom)];
    match st.http.get(super::with_query(u, &q)).timeout(Duration::from_secs(10)).send().await {
        Ok(r) => r.json::<serde_json::Value>().await.ok().and_then(|v| v["url"].as_str().map(str::to_string)).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The Passthru applet after the bot: 200 → branch A, 302 → branch B.
async fn passthru(st: &State, call_sid: &str, from: &str, to: &str, stream_status: &str) {
    let q = [("CallSid", call_sid), ("CallFrom", from), ("CallTo", to), ("Direction", "outbound-api"), ("digits", "\"\""), ("Stream[Status]", stream_status), ("Stream[DisconnectedBy]", "bot")];
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap_or_default();
    let code = client.get(super::with_query(&st.cfg.exotel_passthru_url, &q)).timeout(Duration::from_secs(10)).send().await.map_or(0, |r| r.status().as_u16());
    let branch = match code {
        200 => "A",
        302 => "B",
        _ => "error",
    };
    st.log(CarrierEvent::Passthru { call_sid: call_sid.into(), http_status: code, branch: branch.into() });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_become_basic_auth() {
        let (u, h) = split_credentials("wss://key:tok@h.example/exotel/media/c1?sample-rate=8000");
        assert_eq!(u, "wss://h.example/exotel/media/c1?sample-rate=8000");
        assert_eq!(h[0].1, format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("key:tok")));
        assert!(split_credentials("ws://h/x").1.is_empty());
    }
}
