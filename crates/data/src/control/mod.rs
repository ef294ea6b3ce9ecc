//! Control store: tenants, users, agents (versioned), numbers, knowledge bases, campaigns, API
//! keys, webhooks, idempotency keys and billing. PostgreSQL in production ([`PgControlStore`]), SQLite embedded
//! ([`SqliteControlStore`]); both run the same SQL (`sql_*.rs`, `$N` placeholders) over the
//! same schema (`migrations/{postgres,sqlite}/`).
//!
//! Every method is scoped to one tenant: another tenant's row is `NotFound`. The global lookups
//! ([`ControlStore::route_number`], [`ControlStore::verify_api_key`], and the workers' queues
//! [`ControlStore::due_deliveries`] and [`ControlStore::running_campaigns`]) return the tenant
//! of what they found.

pub mod billing;
pub mod keys;
mod delegate;
mod postgres;
mod sql_access;
mod sql_agents;
mod sql_billing;
mod sql_campaigns;
mod sql_content;
mod sql_dialer;
mod sql_idempotency;
mod sql_tenants;
mod sql_webhooks;
mod sqlite;
mod types;
pub(crate) mod validate;

pub use keys::PlainKey;
pub use postgres::PgControlStore;
pub use sqlite::SqliteControlStore;
pub use types::*;

use async_trait::async_trait;

use crate::Result;

#[async_trait]
pub trait ControlStore: Send + Sync {
    // --- tenants
    /// `Conflict` if the id exists.
    async fn create_tenant(&self, t: NewTenant) -> Result<Tenant>;
    /// Creates the tenant (unlimited plan, 30 days retention) if missing; returns it either way.
    async fn ensure_tenant(&self, id: &str, name: &str) -> Result<Tenant>;
    async fn tenant(&self, id: &str) -> Result<Tenant>;
    async fn tenants(&self) -> Result<Vec<Tenant>>;
    async fn set_plan(&self, id: &str, plan: Plan) -> Result<Tenant>;

    // --- phone numbers (E.164; one tenant per number globally)
    /// Assigns or re-points (same tenant) a number; `Conflict` if another tenant has it.
    async fn assign_number(&self, tenant_id: &str, number: &str, agent_id: &str) -> Result<PhoneNumber>;
    /// Global lookup for inbound calls.
    async fn route_number(&self, number: &str) -> Result<Option<NumberRoute>>;
    async fn numbers(&self, tenant_id: &str) -> Result<Vec<PhoneNumber>>;
    async fn release_number(&self, tenant_id: &str, number: &str) -> Result<()>;

    // --- billing
    /// `true` when recorded, `false` when the idempotency key was already seen (nothing changes).
    async fn record_usage(&self, u: UsageRecord) -> Result<bool>;
    /// Totals per (metric, provider) for `from_ms <= at < to_ms`.
    async fn usage_summary(&self, tenant_id: &str, from_ms: i64, to_ms: i64) -> Result<Vec<UsageTotal>>;
    /// The same totals per UTC day, ordered by day, metric and provider.
    async fn usage_by_day(&self, tenant_id: &str, from_ms: i64, to_ms: i64) -> Result<Vec<UsageDay>>;
    /// `tenant_id: None` sets the default price list; `provider: "*"` matches any provider.
    async fn set_price(&self, tenant_id: Option<&str>, metric: Metric, provider: &str, price: Price) -> Result<()>;
    /// Issues the invoice for `YYYY-MM` (UTC) the first time, then returns the stored one
    /// unchanged: usage recorded later for that period is not added.
    async fn invoice(&self, tenant_id: &str, period: &str) -> Result<Invoice>;

    // --- agents (versioned: 1, 2, 3… per agent, never reused)
    async fn create_agent(&self, tenant_id: &str, id: &str, name: &str) -> Result<Agent>;
    async fn agents(&self, tenant_id: &str) -> Result<Vec<Agent>>;
    async fn agent(&self, tenant_id: &str, id: &str) -> Result<Agent>;
    /// Renames the agent.
    async fn update_agent(&self, tenant_id: &str, id: &str, name: &str) -> Result<Agent>;
    /// Deletes the agent and its versions; `Conflict` (nothing deleted) while a phone number is
    /// bound to it. Campaigns that name it are left as they are.
    async fn delete_agent(&self, tenant_id: &str, id: &str) -> Result<()>;
    /// Publishes the next version and returns its number; `expected_latest` (0 = none yet)
    /// guards against a concurrent edit: a mismatch is `Conflict` and nothing is written.
    async fn publish_agent_version(&self, tenant_id: &str, agent_id: &str, spec: AgentVersionSpec, expected_latest: Option<i32>) -> Result<i32>;
    /// `None` = latest.
    async fn agent_version(&self, tenant_id: &str, agent_id: &str, version: Option<i32>) -> Result<AgentVersion>;
    async fn agent_versions(&self, tenant_id: &str, agent_id: &str) -> Result<Vec<AgentVersion>>;

    // --- API keys (`cf_<id>_<secret>`; only a SHA-256 is stored)
    async fn create_api_key(&self, tenant_id: &str, name: &str, scopes: Vec<String>) -> Result<(ApiKeyInfo, PlainKey)>;
    /// Global lookup: the key's tenant and scopes, or `None` (malformed, unknown, wrong, revoked).
    async fn verify_api_key(&self, plaintext: &str) -> Result<Option<ApiKeyInfo>>;
    /// `NotFound` if unknown, another tenant's, or already revoked.
    async fn revoke_api_key(&self, tenant_id: &str, id: &str) -> Result<()>;
    /// Active keys only.
    async fn api_keys(&self, tenant_id: &str) -> Result<Vec<ApiKeyInfo>>;

    // --- users and roles (subject = the identity provider's `sub`)
    /// Creates or replaces the user's email and roles.
    async fn set_user_roles(&self, tenant_id: &str, subject: &str, email: &str, roles: Vec<String>) -> Result<User>;
    async fn user_roles(&self, tenant_id: &str, subject: &str) -> Result<Vec<String>>;
    async fn users(&self, tenant_id: &str) -> Result<Vec<User>>;
    async fn remove_user(&self, tenant_id: &str, subject: &str) -> Result<()>;

    // --- knowledge bases and documents
    async fn create_kb(&self, tenant_id: &str, id: &str, name: &str, embed_model: &str, dim: i32) -> Result<KnowledgeBase>;
    async fn kbs(&self, tenant_id: &str) -> Result<Vec<KnowledgeBase>>;
    /// Stored with status `pending`.
    async fn add_document(&self, tenant_id: &str, kb_id: &str, doc: NewDocument) -> Result<Document>;
    async fn set_document_status(&self, tenant_id: &str, kb_id: &str, doc_id: &str, status: DocumentStatus, chunks: i32) -> Result<()>;
    async fn documents(&self, tenant_id: &str, kb_id: &str) -> Result<Vec<Document>>;
    async fn delete_document(&self, tenant_id: &str, kb_id: &str, doc_id: &str) -> Result<()>;

    // --- outbound campaigns
    /// Status `draft`; `agent_id` must be one of the tenant's agents.
    async fn create_campaign(&self, tenant_id: &str, id: &str, agent_id: &str, name: &str, window: serde_json::Value) -> Result<Campaign>;
    /// Adds (E.164 number, template variables) contacts as `pending`; returns how many.
    async fn add_campaign_contacts(&self, tenant_id: &str, campaign_id: &str, contacts: Vec<(String, serde_json::Value)>) -> Result<usize>;
    async fn set_campaign_status(&self, tenant_id: &str, campaign_id: &str, status: CampaignStatus) -> Result<()>;
    /// Takes up to `n` pending contacts that are due (`next_attempt_at <= now`), oldest first,
    /// and marks them `dialing` (attempts are counted by [`ControlStore::finish_contact`]);
    /// concurrent callers never get the same contact.
    async fn next_contacts(&self, tenant_id: &str, campaign_id: &str, n: u32) -> Result<Vec<CampaignContact>>;
    async fn campaigns(&self, tenant_id: &str) -> Result<Vec<Campaign>>;
    async fn campaign(&self, tenant_id: &str, id: &str) -> Result<Campaign>;
    /// Ends an attempt on a `dialing` contact: attempts + 1, `last_outcome`/`last_call_id`
    /// recorded; `retry_at_ms: Some` → `pending` again from then, else `done` when `outcome`
    /// is `"completed"` and `failed` otherwise. `Conflict` if the contact is not dialing.
    async fn finish_contact(&self, tenant_id: &str, campaign_id: &str, contact_id: i64, outcome: &str, call_id: Option<&str>, retry_at_ms: Option<i64>) -> Result<()>;
    async fn campaign_progress(&self, tenant_id: &str, id: &str) -> Result<CampaignProgress>;
    /// Contacts with `id > after_id` in id order, at most `limit` (pass the last id for the next page).
    async fn campaign_contacts(&self, tenant_id: &str, id: &str, after_id: i64, limit: u32) -> Result<Vec<CampaignContact>>;
    /// Every tenant's campaigns with status `running`.
    async fn running_campaigns(&self) -> Result<Vec<Campaign>>;
    /// `dialing` → `pending` without counting an attempt (a dialer shutting down). `Conflict`
    /// if the contact is not dialing.
    async fn release_contact(&self, tenant_id: &str, campaign_id: &str, contact_id: i64) -> Result<()>;
    /// Keeps the claims on `dialing` contacts alive (their `updated_at` = now); how many.
    async fn touch_contacts(&self, tenant_id: &str, campaign_id: &str, ids: &[i64]) -> Result<u64>;
    /// Takes over `dialing` contacts not touched since `older_than_ms` (a node that claimed
    /// them stopped): still `dialing`, now claimed by the caller, which must settle them.
    async fn stale_contacts(&self, tenant_id: &str, campaign_id: &str, older_than_ms: i64) -> Result<Vec<CampaignContact>>;

    // --- webhooks (the secret signs deliveries; deliveries are kept after a webhook is deleted)
    /// Id `wh_` + 20 letters/digits; the url is http(s) (≤ 2048), 1-64 events (≤ 64 chars
    /// each, `*` = all), secret ≥ 16 characters.
    async fn create_webhook(&self, tenant_id: &str, w: NewWebhook) -> Result<Webhook>;
    async fn webhooks(&self, tenant_id: &str) -> Result<Vec<Webhook>>;
    /// Also fails the webhook's pending deliveries.
    async fn delete_webhook(&self, tenant_id: &str, id: &str) -> Result<()>;
    /// Inserts (the webhook must be the tenant's) or updates by (tenant_id, id): the update
    /// changes status, attempts, last_error, response_status, next_attempt_at, updated_at.
    async fn save_delivery(&self, d: &WebhookDelivery) -> Result<()>;
    /// Newest first.
    async fn deliveries(&self, tenant_id: &str, webhook_id: Option<&str>, limit: u32) -> Result<Vec<WebhookDelivery>>;
    /// All tenants: pending deliveries with `next_attempt_at <= now_ms`, longest overdue first.
    async fn due_deliveries(&self, now_ms: i64, limit: u32) -> Result<Vec<WebhookDelivery>>;

    // --- idempotency keys (1-255 printable ASCII; forgotten after 24 h)
    /// The first caller gets `New` (and must finish or abort); the same key with the same
    /// request hash gets `InProgress` or `Done`, with another hash `Mismatch`.
    async fn idempotency_begin(&self, tenant_id: &str, key: &str, request_sha256: &str) -> Result<IdempotencyState>;
    /// Stores the response (status 100-599) of an in-progress key; `NotFound`/`Conflict` otherwise.
    async fn idempotency_finish(&self, tenant_id: &str, key: &str, status: u16, body: &str) -> Result<()>;
    /// Deletes an in-progress key so that a retry can run; `NotFound`/`Conflict` otherwise.
    async fn idempotency_abort(&self, tenant_id: &str, key: &str) -> Result<()>;
}
