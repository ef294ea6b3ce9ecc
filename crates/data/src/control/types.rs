//! Plain data types of the control store. Timestamps are unix milliseconds; money is integer
//! micro-units (1 unit of currency = 1,000,000 micros), never floats.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{DataError, Result};

/// An enum stored as text: `as_str` for the database, `parse` for reading it back.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $s)] $var),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$var => $s),+ } }
            pub fn parse(s: &str) -> Result<$name> {
                match s {
                    $($s => Ok($name::$var),)+
                    _ => Err(DataError::invalid(stringify!($name), format!("unknown value `{}`", s.chars().take(40).collect::<String>()))),
                }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

text_enum!(
    /// What a usage record counts.
    Metric {
        CallMs => "call_ms",
        SttMs => "stt_ms",
        LlmInputTokens => "llm_input_tokens",
        LlmOutputTokens => "llm_output_tokens",
        LlmCachedTokens => "llm_cached_tokens",
        TtsCharacters => "tts_characters",
    }
);
text_enum!(AgentKind { Prompt => "prompt", Rulebook => "rulebook" });
text_enum!(DocumentStatus { Pending => "pending", Indexing => "indexing", Ready => "ready", Failed => "failed" });
text_enum!(CampaignStatus {
    Draft => "draft", Running => "running", Paused => "paused", Completed => "completed", Cancelled => "cancelled",
});
text_enum!(ContactStatus { Pending => "pending", Dialing => "dialing", Done => "done", Failed => "failed" });
text_enum!(DeliveryStatus { Pending => "pending", Delivered => "delivered", Failed => "failed" });

/// What a tenant may use. `None` = unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub max_concurrent_calls: Option<u32>,
    pub monthly_minutes: Option<u32>,
    pub retention_days: u32,
    /// Providers the tenant's agents may use (e.g. `["deepgram", "claude", "cartesia",
    /// "local"]`); `None` = any provider.
    #[serde(default)]
    pub allowed_providers: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTenant {
    pub id: String,
    pub name: String,
    pub plan: Plan,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub plan: Plan,
    pub created_at: i64,
}

/// Where an inbound call to a number goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberRoute {
    pub tenant_id: String,
    pub agent_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumber {
    pub number: String,
    pub tenant_id: String,
    pub agent_id: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub tenant_id: String,
    pub call_id: String,
    /// Recording the same key twice (per tenant) counts once.
    pub idempotency_key: String,
    pub metric: Metric,
    pub provider: String,
    pub quantity: i64,
    pub at_unix_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotal {
    pub metric: Metric,
    pub provider: String,
    pub quantity: i64,
}

/// A day's usage of one metric and provider (UTC days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageDay {
    /// The day's first instant, unix ms (midnight UTC).
    pub day_start_ms: i64,
    pub usage: UsageTotal,
}

/// Price in micro-units per 1,000 units of a metric (e.g. per 1,000 tokens or per 1,000 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub micros_per_1000_units: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub metric: Metric,
    pub provider: String,
    pub quantity: i64,
    pub micros_per_1000_units: i64,
    pub amount_micros: i64,
}

/// An issued invoice: immutable once stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: String,
    pub tenant_id: String,
    /// `YYYY-MM`, UTC.
    pub period: String,
    pub lines: Vec<InvoiceLine>,
    pub total_micros: i64,
    pub issued_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    /// 0 until the first version is published.
    pub latest_version: i32,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentVersionSpec {
    pub kind: AgentKind,
    pub body: String,
    pub voice: String,
    pub language: String,
    pub providers: Value,
    pub tools: Value,
    /// Post-call analysis settings (`{}`: the defaults).
    #[serde(default = "empty_object")]
    pub analysis: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentVersion {
    pub tenant_id: String,
    pub agent_id: String,
    pub version: i32,
    pub spec: AgentVersionSpec,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub tenant_id: String,
    pub subject: String,
    pub email: String,
    pub roles: Vec<String>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnowledgeBase {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    pub embed_model: String,
    pub dim: i32,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDocument {
    pub id: String,
    pub title: String,
    pub source: String,
    pub sha256: String,
    pub chunks: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub tenant_id: String,
    pub kb_id: String,
    pub id: String,
    pub title: String,
    pub source: String,
    pub sha256: String,
    pub chunks: i32,
    pub status: DocumentStatus,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub tenant_id: String,
    pub id: String,
    pub agent_id: String,
    pub name: String,
    /// When calls may be placed (shape decided by the dialer), stored as given.
    pub window: Value,
    pub status: CampaignStatus,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignContact {
    pub id: i64,
    pub campaign_id: String,
    pub number: String,
    pub vars: Value,
    pub status: ContactStatus,
    /// Finished call attempts (taking a contact does not count; finishing it does).
    pub attempts: i32,
    /// The last finished attempt's outcome (`completed`, `no_answer`…) and call.
    pub last_outcome: Option<String>,
    pub last_call_id: Option<String>,
    /// A pending contact is not taken before this time (0 = at once).
    pub next_attempt_at: i64,
}

/// Contacts of one campaign per status, and attempts summed over all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignProgress {
    pub total: i64,
    pub pending: i64,
    pub dialing: i64,
    pub done: i64,
    pub failed: i64,
    pub attempts: i64,
}

/// A tenant's HTTP endpoint for events. `secret` signs each delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    /// Event names (`call.ended`…) or `*`.
    pub events: Vec<String>,
    pub secret: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
}

/// One event sent (or to send) to one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub id: String,
    pub tenant_id: String,
    pub webhook_id: String,
    pub event: String,
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub response_status: Option<i32>,
    /// When a pending delivery is due; `None` = not scheduled.
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What [`super::ControlStore::idempotency_begin`] found for a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdempotencyState {
    /// First use: the caller runs the request, then finishes or aborts the key.
    New,
    /// The same request is still running elsewhere.
    InProgress,
    /// The same request already ran: replay this response.
    Done { status: u16, body: String },
    /// The key was used with another request body.
    Mismatch,
}
