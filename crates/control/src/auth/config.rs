//! `[auth]`: who may call the API and how media streams prove the server created their call.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// The built-in RS256 issuer (`callfunnel token` mints its tokens); embedded default.
    Dev,
    /// An external OpenID Connect issuer (Keycloak), discovered from `issuer`.
    Oidc,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// The issuer exactly as in the tokens' `iss`, e.g. `https://id.example.com/realms/voice`.
    /// Discovery is `ISSUER/.well-known/openid-configuration`. Unused in `dev` mode.
    pub issuer: Option<String>,
    /// Required in `aud` (Keycloak: add an Audience mapper for this client).
    pub audience: String,
    /// Also accept tokens without our audience whose `azp` (the client that asked) is one of these.
    pub accepted_azp: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway_secs: u64,
    /// The claim naming the tenant.
    pub tenant_claim: String,
    /// Else: a group path under this prefix names it (`/tenants/acme` → `acme`).
    pub tenant_group_prefix: String,
    /// JWKS is refreshed this often, and at once on an unknown `kid` (at most every `min_refetch_secs`).
    pub jwks_refresh_secs: u64,
    pub min_refetch_secs: u64,
    /// Lifetime of the call token in a media stream URL (the carrier connects within seconds of
    /// fetching the URL; an outbound direct stream waits for the callee to answer).
    pub call_token_ttl_secs: u64,
    /// Media WebSockets need a call token the server signed (`false` only for local experiments).
    pub media_call_tokens: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Dev,
            issuer: None,
            audience: "voice-api".into(),
            accepted_azp: Vec::new(),
            leeway_secs: 30,
            tenant_claim: "tenant_id".into(),
            tenant_group_prefix: "/tenants/".into(),
            jwks_refresh_secs: 600,
            min_refetch_secs: 10,
            call_token_ttl_secs: 600,
            media_call_tokens: true,
        }
    }
}
