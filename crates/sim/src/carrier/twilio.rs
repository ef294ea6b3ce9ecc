//! The Twilio side of the fake carrier: `Calls.json`, call updates, and the life of a call.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use callfunnel_telephony::twilio::signature::sign;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::twiml::{self, Verb};
use super::{basic, sid, Answer, Call, CarrierEvent, CarrierKind, MediaLeg, State};

pub fn routes() -> Router<Arc<State>> {
    Router::new().route("/2010-04-01/Accounts/{ac}/Calls.json", post(create)).route("/2010-04-01/Accounts/{ac}/Calls/{sid}", post(update))
}

fn error(status: StatusCode, code: u64, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status.as_u16()}))).into_response()
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn first<'a>(f: &'a [(String, String)], k: &str) -> &'a str {
    f.iter().find(|(n, _)| n == k).map_or("", |(_, v)| v.as_str())
}

fn authorized(st: &State, ac: &str, headers: &HeaderMap) -> Result<(), Response> {
    let c = &st.cfg;
    if ac != c.twilio_account_sid {
        return Err(error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found"));
    }
    match basic(headers) {
        Some((u, p)) if u == c.twilio_account_sid && p == c.twilio_auth_token => Ok(()),
        _ => Err(error(StatusCode::UNAUTHORIZED, 20003, "Authenticate")),
    }
}

async fn create(AxState(st): AxState<Arc<State>>, Path(ac): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorized(&st, &ac, &headers) {
        st.log(CarrierEvent::Refused { reason: "bad credentials".into() });
        return r;
    }
    let f = form(&body);
    for (k, code) in [("To", 21201), ("From", 21205), ("Url", 21205)] {
        if first(&f, k).is_empty() {
            return error(StatusCode::BAD_REQUEST, code, &format!("No '{k}' number is specified"));
        }
    }
    let call_sid = sid("CA");
    let hangup = CancellationToken::new();
    st.calls.lock().insert(call_sid.clone(), Call { hangup: hangup.clone(), ended: false });
    st.log(CarrierEvent::CallCreated { carrier: CarrierKind::Twilio, call_sid: call_sid.clone(), to: first(&f, "To").into() });
    let resp = json!({"sid": call_sid, "account_sid": ac, "to": first(&f, "To"), "from": first(&f, "From"), "status": "queued", "direction": "outbound-api", "api_version": "2010-04-01"});
    tokio::spawn(run(st, call_sid, f, hangup));
    (StatusCode::CREATED, Json(resp)).into_response()
}

/// `Status=completed` hangs up; `Twiml=`/`Url=` would redirect (ends our leg the same way).
async fn update(AxState(st): AxState<Arc<State>>, Path((ac, sid_json)): Path<(String, String)>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorized(&st, &ac, &headers) {
        return r;
    }
    let call_sid = sid_json.trim_end_matches(".json").to_string();
    let f = form(&body);
    let token = {
        let mut calls = st.calls.lock();
        match calls.get_mut(&call_sid) {
            Some(c) if !c.ended => {
                c.ended = true;
                c.hangup.clone()
            }
            _ => return error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found"),
        }
    };
    token.cancel();
    st.log(CarrierEvent::HungUpByApi { call_sid: call_sid.clone() });
    Json(json!({"sid": call_sid, "status": if first(&f, "Status").is_empty() { "in-progress" } else { first(&f, "Status") }})).into_response()
}

/// POSTs a signed form to one of our webhooks; returns status and body.
async fn webhook(st: &State, url: &str, params: Vec<(String, String)>) -> (u16, String) {
    let signature = sign(&st.cfg.twilio_auth_token, url, &params);
    super::post_form(&st.http, url, &[("X-Twilio-Signature", signature)], &params).await
}

struct Ctx {
    st: Arc<State>,
    call_sid: String,
    f: Vec<(String, String)>,
    events: HashSet<String>,
    seq: u64,
}

impl Ctx {
    fn base(&self, status: &str) -> Vec<(String, String)> {
        let g = |k: &str| first(&self.f, k).to_string();
        [
            ("CallSid", self.call_sid.clone()),
            ("AccountSid", self.st.cfg.twilio_account_sid.clone()),
            ("From", g("From")),
            ("To", g("To")),
            ("CallStatus", status.to_string()),
            ("Direction", "outbound-api".into()),
            ("ApiVersion", "2010-04-01".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// A status callback for `event` (if subscribed), with the next sequence number.
    async fn status(&mut self, event: &str, status: &str, seq: Option<u64>, extra: &[(&str, String)]) {
        let seq = seq.unwrap_or_else(|| {
            self.seq += 1;
            self.seq - 1
        });
        let cb = first(&self.f, "StatusCallback").to_string();
        if cb.is_empty() || !self.events.contains(event) {
            return;
        }
        let mut p = self.base(status);
        p.push(("SequenceNumber".into(), seq.to_string()));
        p.push(("CallbackSource".into(), "call-progress-events".into()));
        p.push(("Timestamp".into(), "Wed, 25 Nov 2026 10:00:00 +0000".into()));
        p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let (code, _) = webhook(&self.st, &cb, p).await;
        self.st.log(CarrierEvent::StatusSent { call_sid: self.call_sid.clone(), status: status.into(), sequence: seq, http_status: code });
    }
}

async fn run(st: Arc<State>, call_sid: String, f: Vec<(String, String)>, hangup: CancellationToken) {
    let events = f.iter().filter(|(k, _)| k == "StatusCallbackEvent").map(|(_, v)| v.clone()).collect();
    let answer = st.answer_for(first(&f, "To"));
    let mut c = Ctx { st: st.clone(), call_sid: call_sid.clone(), f, events, seq: 0 };
    let started = tokio::time::Instant::now();
    if st.cfg.reorder_status {
        c.status("ringing", "ringing", Some(1), &[]).await;
        c.status("initiated", "initiated", Some(0), &[]).await;
        c.seq = 2;
    } else {
        c.status("initiated", "initiated", None, &[]).await;
        c.status("ringing", "ringing", None, &[]).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let final_status = match answer {
        Answer::Busy => Some("busy"),
        Answer::NoAnswer => Some("no-answer"),
        _ => None,
    };
    if let Some(s) = final_status {
        c.status("completed", s, None, &[]).await;
        st.calls.lock().entry(call_sid).and_modify(|x| x.ended = true);
        return;
    }
    c.status("answered", "in-progress", None, &[]).await;
    let url = first(&c.f, "Url").to_string();
    let (code, body) = webhook(&st, &url, c.base("in-progress")).await;
    st.log(CarrierEvent::TwimlFetched { call_sid: call_sid.clone(), http_status: code });
    let mut verbs = twiml::parse(&body).unwrap_or_default();
    'call: while !verbs.is_empty() {
        let mut next = Vec::new();
        for verb in std::mem::take(&mut verbs) {
            match verb {
                Verb::Stream { url, action, params } => {
                    amd(&c, answer);
                    let leg = MediaLeg {
                        carrier: CarrierKind::Twilio,
                        ws_url: url.clone(),
                        headers: vec![("X-Twilio-Signature".into(), sign(&st.cfg.twilio_auth_token, &url, &[]))],
                        call_sid: call_sid.clone(),
                        from: first(&c.f, "From").into(),
                        to: first(&c.f, "To").into(),
                        custom_parameters: params,
                        answer,
                        hangup: hangup.clone(),
                    };
                    st.log(CarrierEvent::StreamOpened { call_sid: call_sid.clone(), url });
                    let ended_by = st.cfg.callee.answer(leg).await;
                    st.log(CarrierEvent::StreamEnded { call_sid: call_sid.clone(), ended_by });
                    if hangup.is_cancelled() {
                        break 'call;
                    }
                    if let Some(a) = action {
                        let (_, body) = webhook(&st, &a, c.base("in-progress")).await;
                        next = twiml::parse(&body).unwrap_or_default();
                    }
                    break;
                }
                Verb::Dial { to, whisper } => {
                    st.log(CarrierEvent::Dialed { call_sid: call_sid.clone(), to: to.clone(), whisper: whisper.clone() });
                    if let Some(w) = whisper {
                        let mut p = c.base("in-progress");
                        p.push(("ParentCallSid".into(), call_sid.clone()));
                        let (_, body) = webhook(&st, &w, p).await;
                        let said: Vec<String> = twiml::parse(&body).unwrap_or_default().into_iter().filter_map(|v| if let Verb::Say(t) = v { Some(t) } else { None }).collect();
                        st.log(CarrierEvent::Whispered { call_sid: call_sid.clone(), said: said.join(" ") });
                    }
                    break 'call;
                }
                Verb::Hangup => break 'call,
                Verb::Say(_) | Verb::Play { .. } => {}
            }
        }
        verbs = next;
    }
    st.calls.lock().entry(call_sid.clone()).and_modify(|x| x.ended = true);
    let secs = started.elapsed().as_secs().to_string();
    c.status("completed", "completed", None, &[("CallDuration", secs)]).await;
}

/// Asynchronous answering-machine detection, as requested on `Calls.json`.
fn amd(c: &Ctx, answer: Answer) {
    let (md, cb) = (first(&c.f, "MachineDetection"), first(&c.f, "AsyncAmdStatusCallback").to_string());
    if md.is_empty() || cb.is_empty() || first(&c.f, "AsyncAmd") != "true" {
        return;
    }
    let (after_ms, by) = match answer {
        Answer::Machine { greeting_ms } => (greeting_ms, "machine_end_beep"),
        _ => (1500, "human"),
    };
    let st = c.st.clone();
    let mut p = c.base("in-progress");
    p.push(("AnsweredBy".into(), by.into()));
    p.push(("MachineDetectionDuration".into(), after_ms.to_string()));
    let call_sid = c.call_sid.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        webhook(&st, &cb, p).await;
        st.log(CarrierEvent::AmdSent { call_sid, answered_by: by.into() });
    });
}
