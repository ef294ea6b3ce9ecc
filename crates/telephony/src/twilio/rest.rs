//! Twilio's Calls API: dial a number with our TwiML URL, status callbacks and answering-machine
//! detection; hang up (`Status=completed`; 404 / error 20404 means the call already ended);
//! redirect a live call to new TwiML.

use std::time::Duration;

use serde::Deserialize;

use crate::http_form::{self, Reply};

#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    #[error("Twilio API error {code} (HTTP {status}): {message}")]
    Api { status: u16, code: u64, message: String },
    #[error("the call has already ended")]
    CallEnded,
    #[error("Twilio request failed: {0}")]
    Transport(String),
    #[error("unexpected Twilio response (HTTP {status}): {body}")]
    Unexpected { status: u16, body: String },
}

/// A call to place.
#[derive(Debug, Clone, Default)]
pub struct CreateCall {
    pub to: String,
    pub from: String,
    /// Our TwiML for the call (requested with POST when answered).
    pub url: String,
    /// Call progress events (`initiated ringing answered completed`) are POSTed here.
    pub status_callback: Option<String>,
    /// `DetectMessageEnd` or `Enable`; results go to `async_amd_status_callback`.
    pub machine_detection: Option<String>,
    pub async_amd_status_callback: Option<String>,
    pub timeout_secs: Option<u32>,
    pub time_limit_secs: Option<u32>,
    /// Keys to press once the call connects.
    pub send_digits: Option<String>,
}

impl CreateCall {
    pub fn form(&self) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = vec![("To".into(), self.to.clone()), ("From".into(), self.from.clone()), ("Url".into(), self.url.clone()), ("Method".into(), "POST".into())];
        if let Some(cb) = &self.status_callback {
            f.push(("StatusCallback".into(), cb.clone()));
            f.push(("StatusCallbackMethod".into(), "POST".into()));
            for ev in ["initiated", "ringing", "answered", "completed"] {
                f.push(("StatusCallbackEvent".into(), ev.into()));
            }
        }
        if let Some(md) = &self.machine_detection {
            f.push(("MachineDetection".into(), md.clone()));
            if let Some(cb) = &self.async_amd_status_callback {
                f.push(("AsyncAmd".into(), "true".into()));
                f.push(("AsyncAmdStatusCallback".into(), cb.clone()));
                f.push(("AsyncAmdStatusCallbackMethod".into(), "POST".into()));
            }
        }
        for (k, v) in [("Timeout", self.timeout_secs), ("TimeLimit", self.time_limit_secs)] {
            if let Some(v) = v {
                f.push((k.into(), v.to_string()));
            }
        }
        if let Some(d) = &self.send_digits {
            f.push(("SendDigits".into(), d.clone()));
        }
        f
    }
}

/// The parts of Twilio's Call resource we use.
#[derive(Debug, Clone, Deserialize)]
pub struct CallResource {
    pub sid: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupOutcome {
    Completed,
    AlreadyEnded,
}

pub struct TwilioClient {
    http: reqwest::Client,
    base: String,
    account_sid: String,
    auth_token: String,
    timeout: Duration,
}

impl std::fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TwilioClient({} at {})", self.account_sid, self.base)
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: u64,
    #[serde(default)]
    message: String,
}

fn api_error(r: &Reply) -> TwilioError {
    match serde_json::from_str::<ErrorBody>(&r.body) {
        Ok(e) if e.code == 20404 || r.status == 404 => TwilioError::CallEnded,
        Ok(e) => TwilioError::Api { status: r.status, code: e.code, message: e.message },
        Err(_) if r.status == 404 => TwilioError::CallEnded,
        Err(_) => TwilioError::Unexpected { status: r.status, body: r.body.chars().take(300).collect() },
    }
}

impl TwilioClient {
    /// `base` is `https://api.twilio.com` (or a regional host, or a fake carrier in tests).
    pub fn new(base: &str, account_sid: &str, auth_token: &str) -> Self {
        TwilioClient { http: reqwest::Client::new(), base: base.trim_end_matches('/').to_string(), account_sid: account_sid.into(), auth_token: auth_token.into(), timeout: Duration::from_secs(10) }
    }

    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    async fn post(&self, path: &str, form: &[(String, String)]) -> Result<Reply, TwilioError> {
        let url = format!("{}/2010-04-01/Accounts/{}/{path}", self.base, self.account_sid);
        http_form::post(&self.http, &url, &self.account_sid, &self.auth_token, form, self.timeout).await.map_err(TwilioError::Transport)
    }

    fn call(r: Reply) -> Result<CallResource, TwilioError> {
        if !(200..300).contains(&r.status) {
            return Err(api_error(&r));
        }
        serde_json::from_str(&r.body).map_err(|_| TwilioError::Unexpected { status: r.status, body: r.body.chars().take(300).collect() })
    }

    pub async fn create_call(&self, req: &CreateCall) -> Result<CallResource, TwilioError> {
        let r = self.post("Calls.json", &req.form()).await?;
        match Self::call(r) {
            // A 404 here is not "ended": the account or number is wrong.
            Err(TwilioError::CallEnded) => Err(TwilioError::Api { status: 404, code: 20404, message: "account not found".into() }),
            other => other,
        }
    }

    /// Hangs up a live call. A call the carrier already ended is not an error.
    pub async fn hangup(&self, call_sid: &str) -> Result<HangupOutcome, TwilioError> {
        let r = self.post(&format!("Calls/{call_sid}.json"), &[("Status".into(), "completed".into())]).await?;
        match Self::call(r) {
            Ok(_) => Ok(HangupOutcome::Completed),
            Err(TwilioError::CallEnded) => Ok(HangupOutcome::AlreadyEnded),
            Err(e) => Err(e),
        }
    }

    /// Replaces a live call's TwiML (e.g. `<Dial>` for a transfer, `<Play digits>`).
    pub async fn redirect(&self, call_sid: &str, twiml: &str) -> Result<CallResource, TwilioError> {
        Self::call(self.post(&format!("Calls/{call_sid}.json"), &[("Twiml".into(), twiml.into())]).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_call_asks_for_every_status_and_async_amd() {
        let f = CreateCall { to: "+1555".into(), from: "+1666".into(), url: "https://h/t".into(), status_callback: Some("https://h/s".into()), machine_detection: Some("DetectMessageEnd".into()), async_amd_status_callback: Some("https://h/a".into()), timeout_secs: Some(30), ..Default::default() }.form();
        let get = |k: &str| f.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
        assert_eq!(get("StatusCallbackEvent"), ["initiated", "ringing", "answered", "completed"]);
        assert_eq!(get("AsyncAmd"), ["true"]);
        assert_eq!(get("Timeout"), ["30"]);
        assert!(get("SendDigits").is_empty());
    }

    #[test]
    fn errors_map_to_ended_or_api() {
        assert!(matches!(api_error(&Reply { status: 404, body: r#"{"code":20404,"message":"not found"}"#.into() }), TwilioError::CallEnded));
        assert!(matches!(api_error(&Reply { status: 400, body: r#"{"code":21211,"message":"bad To"}"#.into() }), TwilioError::Api { code: 21211, .. }));
        assert!(matches!(api_error(&Reply { status: 502, body: "<html>".into() }), TwilioError::Unexpected { .. }));
    }
}
