//! Carrier settings: `[telephony]`, `[twilio]`, `[exotel]` and the `[[numbers]]` routing table.
//! Secrets (auth tokens, API keys, stream credentials) never live here: they come from the
//! secret source (environment or Vault) under the names in [`secret_names`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Secret names the carriers use.
pub mod secret_names {
    pub const TWILIO_AUTH_TOKEN: &str = "twilio_auth_token";
    /// The previous token, accepted during a rotation window.
    pub const TWILIO_AUTH_TOKEN_SECONDARY: &str = "twilio_auth_token_secondary";
    /// A webhook SharedKey secret (requests naming `algorithm=HMAC_SHA256` are signed with it).
    pub const TWILIO_WEBHOOK_KEY: &str = "twilio_webhook_key";
    pub const EXOTEL_API_KEY: &str = "exotel_api_key";
    pub const EXOTEL_API_TOKEN: &str = "exotel_api_token";
    /// `user:password` Exotel sends as Basic auth on the Voicebot WebSocket upgrade.
    pub const EXOTEL_STREAM_AUTH: &str = "exotel_stream_auth";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelephonyConfig {
    /// Record every call (caller left, agent right) under `[data] dir`/recordings.
    pub record: bool,
    /// Said to callers of a number that is not in `[[numbers]]`, before hanging up.
    pub unknown_number_message: String,
    /// Said (then the call ends) when the tenant's plan refuses a call: minutes used up,
    /// too many calls at once, or a provider the plan does not allow.
    pub plan_limit_message: String,
    /// Default answer to voicemail on outbound calls when the agent sets none.
    pub voicemail_message: Option<String>,
}

impl Default for TelephonyConfig {
    fn default() -> Self {
        TelephonyConfig { record: true, unknown_number_message: "Sorry, this number is not in service. Goodbye.".into(), plan_limit_message: "Sorry, we cannot take your call right now. Please try again later. Goodbye.".into(), voicemail_message: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub api_base: String,
    /// Caller id for outbound calls (a Twilio number of the account).
    pub from_number: String,
    /// The public base URL Twilio calls (e.g. `https://voice.example.com`). Empty: rebuilt per
    /// request from `X-Forwarded-Proto` / `X-Forwarded-Host` / `Host`.
    pub public_base: String,
    /// `MachineDetection` for outbound calls (`DetectMessageEnd`, `Enable`, or empty for none).
    pub machine_detection: String,
    /// Ring time for outbound calls.
    pub ring_timeout_secs: u32,
    pub request_timeout_ms: u64,
}

impl Default for TwilioConfig {
    fn default() -> Self {
        TwilioConfig {
            account_sid: String::new(),
            api_base: "https://api.twilio.com".into(),
            from_number: String::new(),
            public_base: String::new(),
            machine_detection: "DetectMessageEnd".into(),
            ring_timeout_secs: 30,
            request_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExotelConfig {
    pub account_sid: String,
    /// `https://api.exotel.com` (Singapore) or `https://api.in.exotel.com` (Mumbai).
    pub api_base: String,
    /// ExoPhone shown to the called party.
    pub caller_id: String,
    /// Outbound through a flow holding our Voicebot applet (its app id), or — when empty — the
    /// direct `streamurl` variant of the Connect API.
    pub flow_app_id: String,
    /// Sample rate asked of Exotel in our stream URL (8000, 16000 or 24000).
    pub sample_rate: u32,
    pub request_timeout_ms: u64,
}

impl Default for ExotelConfig {
    fn default() -> Self {
        ExotelConfig { account_sid: String::new(), api_base: "https://api.exotel.com".into(), caller_id: String::new(), flow_app_id: String::new(), sample_rate: 8000, request_timeout_ms: 10_000 }
    }
}

/// One phone number we answer and the agent behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberRoute {
    pub number: String,
    pub tenant_id: String,
    pub agent_id: String,
}

/// Where an inbound call goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Agent { tenant_id: String, agent_id: String },
    /// The number is not ours: refuse politely.
    Unknown,
}

/// `To` → tenant and agent. With an empty table every call goes to the default agent (the
/// embedded demo); with entries, numbers not listed are refused.
#[derive(Debug, Clone, Default)]
pub struct NumberTable {
    by_number: HashMap<String, NumberRoute>,
}

/// Digits (and a leading `+`) only, so `+1 (555) 010-0199` matches `+15550100199`.
pub fn normalize_number(n: &str) -> String {
    let n = n.trim();
    let n = n.strip_prefix("sip:").unwrap_or(n);
    let n = n.split('@').next().unwrap_or(n);
    let plus = n.starts_with('+');
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    if plus { format!("+{digits}") } else { digits }
}

impl NumberTable {
    pub fn new(routes: &[NumberRoute]) -> Self {
        NumberTable { by_number: routes.iter().map(|r| (normalize_number(&r.number), r.clone())).collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.by_number.is_empty()
    }

    pub fn route(&self, to: &str, default_tenant: &str, default_agent: &str) -> Route {
        if self.by_number.is_empty() {
            return Route::Agent { tenant_id: default_tenant.into(), agent_id: default_agent.into() };
        }
        let n = normalize_number(to);
        // Exotel may send national numbers (0 + 10 digits) for an E.164 ExoPhone.
        let alt = n.strip_prefix('0').map(|rest| format!("+91{rest}"));
        match self.by_number.get(&n).or_else(|| alt.and_then(|a| self.by_number.get(&a))) {
            Some(r) => Route::Agent { tenant_id: r.tenant_id.clone(), agent_id: r.agent_id.clone() },
            None => Route::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_route_to_agents_and_unknown_numbers_are_refused() {
        let t = NumberTable::new(&[
            NumberRoute { number: "+1 (555) 010-0199".into(), tenant_id: "acme".into(), agent_id: "clinic".into() },
            NumberRoute { number: "+918041234567".into(), tenant_id: "desi".into(), agent_id: "hi".into() },
        ]);
        assert_eq!(t.route("+15550100199", "d", "d"), Route::Agent { tenant_id: "acme".into(), agent_id: "clinic".into() });
        assert_eq!(t.route("08041234567", "d", "d"), Route::Agent { tenant_id: "desi".into(), agent_id: "hi".into() });
        assert_eq!(t.route("sip:+15550100199@pbx.example", "d", "d"), Route::Agent { tenant_id: "acme".into(), agent_id: "clinic".into() });
        assert_eq!(t.route("+15550000000", "d", "d"), Route::Unknown);
        assert_eq!(t.route("", "d", "d"), Route::Unknown);
        assert_eq!(NumberTable::default().route("+1", "demo", "clinic"), Route::Agent { tenant_id: "demo".into(), agent_id: "clinic".into() });
    }
}
