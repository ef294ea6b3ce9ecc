//! Exotel's Connect API: outbound into a flow that holds our Voicebot applet, or straight to our
//! WebSocket with the `streamurl` variant. Basic auth with the API key and token.

use std::time::Duration;

use serde_json::Value;

use crate::http_form;

#[derive(Debug, thiserror::Error)]
pub enum ExotelError {
    #[error("Exotel API error (HTTP {status}): {message}")]
    Api { status: u16, message: String },
    #[error("Exotel request failed: {0}")]
    Transport(String),
    #[error("unexpected Exotel response (HTTP {status}): {body}")]
    Unexpected { status: u16, body: String },
}

/// Outbound into a flow: Exotel dials `from` (the customer), then runs the flow at `url`.
#[derive(Debug, Clone, Default)]
pub struct ConnectFlow {
    pub from: String,
    pub caller_id: String,
    /// `http://my.exotel.com/{sid}/exoml/start_voice/{app_id}`
    pub url: String,
    pub status_callback: Option<String>,
    pub custom_field: Option<String>,
    pub time_limit_secs: Option<u32>,
    pub ring_timeout_secs: Option<u32>,
}

/// Outbound straight to our WebSocket (Exotel's "Connect Voice AI" variant).
#[derive(Debug, Clone, Default)]
pub struct ConnectStream {
    pub from: String,
    pub caller_id: String,
    pub stream_url: String,
    pub status_callback: Option<String>,
    pub custom_field: Option<String>,
    pub time_limit_secs: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExotelCall {
    pub sid: String,
    pub status: String,
}

pub struct ExotelClient {
    http: reqwest::Client,
    base: String,
    account_sid: String,
    key: String,
    token: String,
    timeout: Duration,
}

impl std::fmt::Debug for ExotelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExotelClient({} at {})", self.account_sid, self.base)
    }
}

impl ConnectFlow {
    pub fn form(&self) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> = vec![("From".into(), self.from.clone()), ("CallerId".into(), self.caller_id.clone()), ("Url".into(), self.url.clone()), ("CallType".into(), "trans".into())];
        if let Some(cb) = &self.status_callback {
            f.push(("StatusCallback".into(), cb.clone()));
            f.push(("StatusCallbackEvents[0]".into(), "terminal".into()));
            f.push(("StatusCallbackEvents[1]".into(), "answered".into()));
        }
        if let Some(c) = &self.custom_field {
            f.push(("CustomField".into(), c.clone()));
        }
        for (k, v) in [("TimeLimit", self.time_limit_secs), ("TimeOut", self.ring_timeout_secs)] {
            if let Some(v) = v {
                f.push((k.into(), v.to_string()));
            }
        }
        f
    }
}

impl ConnectStream {
    pub fn form(&self) -> Vec<(String, String)> {
        let mut f: Vec<(String, String)> =
            vec![("from".into(), self.from.clone()), ("callerid".into(), self.caller_id.clone()), ("streamurl".into(), self.stream_url.clone()), ("streamtype".into(), "bidirectional".into())];
        if let Some(cb) = &self.status_callback {
            f.push(("statuscallback".into(), cb.clone()));
            f.push(("statuscallbackevents[]".into(), "answered".into()));
            f.push(("statuscallbackevents[]".into(), "terminal".into()));
        }
        if let Some(c) = &self.custom_field {
            f.push(("customfield".into(), c.chars().take(128).collect()));
        }
        if let Some(t) = self.time_limit_secs {
            f.push(("timelimit".into(), t.to_string()));
        }
        f
    }
}

/// `{"Call":{"Sid":…,"Status":…}}` (flow variant) or `{"call":{"sid":…,"status":…}}`.
fn parse_call(status: u16, body: &str) -> Result<ExotelCall, ExotelError> {
    let v: Value = serde_json::from_str(body).map_err(|_| ExotelError::Unexpected { status, body: body.chars().take(300).collect() })?;
    if !(200..300).contains(&status) {
        let msg = v.pointer("/RestException/Message").or_else(|| v.pointer("/message")).and_then(Value::as_str).unwrap_or("request refused");
        return Err(ExotelError::Api { status, message: msg.to_string() });
    }
    let call = v.get("Call").or_else(|| v.get("call")).ok_or_else(|| ExotelError::Unexpected { status, body: body.chars().take(300).collect() })?;
    let field = |a: &str, b: &str| call.get(a).or_else(|| call.get(b)).and_then(Value::as_str).unwrap_or_default().to_string();
    let sid = field("Sid", "sid");
    if sid.is_empty() {
        return Err(ExotelError::Unexpected { status, body: body.chars().take(300).collect() });
    }
    Ok(ExotelCall { sid, status: field("Status", "status") })
}

impl ExotelClient {
    pub fn new(base: &str, account_sid: &str, api_key: &str, api_token: &str) -> Self {
        ExotelClient { http: reqwest::Client::new(), base: base.trim_end_matches('/').to_string(), account_sid: account_sid.into(), key: api_key.into(), token: api_token.into(), timeout: Duration::from_secs(10) }
    }

    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    pub async fn connect_flow(&self, req: &ConnectFlow) -> Result<ExotelCall, ExotelError> {
        let url = format!("{}/v1/Accounts/{}/Calls/connect.json", self.base, self.account_sid);
        let r = http_form::post(&self.http, &url, &self.key, &self.token, &req.form(), self.timeout).await.map_err(ExotelError::Transport)?;
        parse_call(r.status, &r.body)
    }

    pub async fn connect_stream(&self, req: &ConnectStream) -> Result<ExotelCall, ExotelError> {
        let url = format!("{}/v1/accounts/{}/calls/connect", self.base, self.account_sid);
        let r = http_form::post(&self.http, &url, &self.key, &self.token, &req.form(), self.timeout).await.map_err(ExotelError::Transport)?;
        parse_call(r.status, &r.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_response_casings_parse() {
        assert_eq!(parse_call(200, r#"{"Call":{"Sid":"abc","Status":"in-progress"}}"#).unwrap(), ExotelCall { sid: "abc".into(), status: "in-progress".into() });
        assert_eq!(parse_call(200, r#"{"call":{"sid":"def","status":"queued"}}"#).unwrap().sid, "def");
        assert!(matches!(parse_call(401, r#"{"RestException":{"Message":"Authentication required"}}"#), Err(ExotelError::Api { status: 401, .. })));
        assert!(matches!(parse_call(200, "<xml/>"), Err(ExotelError::Unexpected { .. })));
        assert!(matches!(parse_call(200, r#"{"call":{}}"#), Err(ExotelError::Unexpected { .. })));
    }

    #[test]
    fn forms_use_each_variants_names() {
        let f = ConnectStream { from: "+9198".into(), caller_id: "080".into(), stream_url: "wss://h/exotel/media/c1".into(), status_callback: Some("https://h/s".into()), ..Default::default() }.form();
        assert!(f.contains(&("streamtype".into(), "bidirectional".into())));
        assert_eq!(f.iter().filter(|(k, _)| k == "statuscallbackevents[]").count(), 2);
        let g = ConnectFlow { from: "+9198".into(), caller_id: "080".into(), url: "http://my.exotel.com/a/exoml/start_voice/1".into(), ..Default::default() }.form();
        assert!(g.contains(&("CallType".into(), "trans".into())));
    }
}
