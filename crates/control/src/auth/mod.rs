//! Identity at every hop. API callers present a Keycloak (or built-in dev issuer) RS256 JWT or a
//! tenant API key and become a [`Principal`]; media WebSockets present a call token the server
//! signed when it created the call.

pub mod call_token;
pub mod config;
pub mod dev_issuer;
pub mod jwks;
pub mod jwt;
mod principal;
mod secret_file;
pub mod sign_in;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use callfunnel_data::control::ControlStore;
use serde_json::{Map, Value};

pub use call_token::{CallTokenError, CallTokens};
pub use config::{AuthConfig, AuthMode};
pub use dev_issuer::DevIssuer;
pub use jwt::TokenError;
pub use principal::{Principal, Role, Via};

use crate::config::Config;
use crate::http::{ApiError, AppState};
use jwks::{Jwks, KeySource};

/// The environment variable holding the call-token secret every node of a fleet shares.
pub const CALL_TOKEN_SECRET_ENV: &str = "CALLFUNNEL_CALL_TOKEN_SECRET";

pub struct Auth {
    pub config: AuthConfig,
    pub issuer: String,
    pub jwks: Jwks,
    pub dev: Option<DevIssuer>,
    /// The dev issuer's browser sign-in (the console), with its password file.
    pub sign_in: Option<sign_in::SignIn>,
    pub call_tokens: CallTokens,
    control: Arc<dyn ControlStore>,
}

/// The built-in issuer's URL: `http(s)://PUBLIC_HOST/dev/oidc`.
pub fn dev_issuer_url(cfg: &Config) -> String {
    let scheme = if cfg.server.public_ws_scheme == "wss" { "https" } else { "http" };
    format!("{scheme}://{}/dev/oidc", cfg.server.public_host)
}

/// Opens the built-in issuer's key (the CLI's `token` command and the server share it).
pub fn open_dev_issuer(cfg: &Config) -> anyhow::Result<DevIssuer> {
    DevIssuer::open(&cfg.data.dir.join("auth"), &dev_issuer_url(cfg))
}

impl Auth {
    pub fn open(cfg: &Config, control: Arc<dyn ControlStore>) -> anyhow::Result<Auth> {
        let a = cfg.auth.clone();
        let (issuer, source, dev) = match a.mode {
            AuthMode::Dev => {
                let dev = open_dev_issuer(cfg)?;
                (dev.issuer.clone(), KeySource::Static(vec![dev.public_key()]), Some(dev))
            }
            AuthMode::Oidc => {
                let issuer = a.issuer.clone().filter(|i| !i.is_empty()).ok_or_else(|| anyhow::anyhow!("[auth] mode = \"oidc\" needs `issuer` (e.g. https://id.example.com/realms/voice)"))?;
                url::Url::parse(&issuer).map_err(|e| anyhow::anyhow!("[auth] issuer {issuer:?} is not a URL: {e}"))?;
                let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(3)).redirect(reqwest::redirect::Policy::none()).build()?;
                (issuer.clone(), KeySource::Discovery { issuer, http }, None)
            }
        };
        if a.audience.is_empty() {
            anyhow::bail!("[auth] audience must not be empty");
        }
        let jwks = Jwks::new(source, Duration::from_secs(a.jwks_refresh_secs), Duration::from_secs(a.min_refetch_secs));
        let call_tokens = CallTokens::open(std::env::var(CALL_TOKEN_SECRET_ENV).ok().filter(|s| !s.is_empty()), &cfg.data.dir.join("auth"), a.call_token_ttl_secs)?;
        let sign_in = match dev {
            Some(_) => Some(sign_in::SignIn::open(&cfg.data.dir.join("auth"))?),
            None => None,
        };
        Ok(Auth { config: a, issuer, jwks, dev, sign_in, call_tokens, control })
    }

    /// Verifies a JWT's signature and registered claims; returns its claims.
    pub async fn verify_jwt(&self, token: &str) -> Result<Map<String, Value>, TokenError> {
        let t = jwt::parse(token)?;
        let key = self.jwks.key(&t.kid).await?;
        let claims = t.verify(&key)?;
        let expect = jwt::Expect { issuer: &self.issuer, audience: &self.config.audience, accepted_azp: &self.config.accepted_azp, leeway_secs: self.config.leeway_secs as i64, now_unix: chrono::Utc::now().timestamp() };
        jwt::check_claims(&claims, &expect)?;
        Ok(claims)
    }

    /// The caller behind `Authorization: Bearer …` (a JWT, or an API key `cf_…`).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let Some(h) = headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized("missing_credentials", "send `Authorization: Bearer TOKEN` (a JWT or an API key)"));
        };
        let h = h.to_str().map_err(|_| ApiError::unauthorized("invalid_credentials", "the Authorization header is not text"))?;
        let Some(token) = h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")).map(str::trim) else {
            return Err(ApiError::unauthorized("invalid_credentials", "the Authorization header must be `Bearer TOKEN`"));
        };
        if token.starts_with("cf_") {
            return self.api_key(token).await;
        }
        match self.verify_jwt(token).await {
            Ok(claims) => Principal::from_claims(&claims, &self.config.tenant_claim, &self.config.tenant_group_prefix),
            Err(TokenError::KeysUnavailable(e)) => Err(ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "issuer_unavailable", format!("the identity provider's keys cannot be fetched: {e}"))),
            Err(e) => {
                tracing::info!(reason = %e, "token refused");
                Err(ApiError::unauthorized("invalid_token", e.to_string()))
            }
        }
    }

    async fn api_key(&self, key: &str) -> Result<Principal, ApiError> {
        let info = self.control.verify_api_key(key).await.map_err(|e| ApiError::internal(e.to_string()))?;
        let Some(info) = info else {
            tracing::info!("API key refused");
            return Err(ApiError::unauthorized("invalid_api_key", "the API key is unknown or revoked"));
        };
        // an API key acts for its tenant with the highest role among its scopes (never platform-admin)
        let role = info.scopes.iter().filter_map(|s| Role::parse(s)).filter(|r| *r != Role::PlatformAdmin).max().unwrap_or(Role::Viewer);
        Ok(Principal { subject: format!("api-key:{}", info.id), tenant: Some(info.tenant_id), role, via: Via::ApiKey })
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        s.auth.authenticate(&parts.headers).await
    }
}

/// A request's caller and the tenant it acts on (`X-Tenant-Id` names it for platform admins).
pub struct Caller {
    pub who: Principal,
    pub tenant: String,
}

impl Caller {
    pub fn require(&self, min: Role) -> Result<(), ApiError> {
        self.who.require(min)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let who = s.auth.authenticate(&parts.headers).await?;
        let named = parts.headers.get("x-tenant-id").and_then(|v| v.to_str().ok());
        let tenant = who.tenant_for(named)?;
        // a token may name a tenant nobody created: refuse clearly rather than fail on a write
        match s.stores.control.tenant(&tenant).await {
            Ok(_) => Ok(Caller { who, tenant }),
            Err(callfunnel_data::DataError::NotFound { .. }) => Err(ApiError::not_found("tenant_not_found", format!("tenant `{tenant}` does not exist: a platform admin creates it (POST /v1/tenants)"))),
            Err(e) => Err(crate::api::common::store_err(e)),
        }
    }
}
