//! Vault authentication: a token given as is, AppRole (role_id + secret_id), or Kubernetes
//! (the service-account JWT file). The client token is renewed (`auth/token/renew-self`) once
//! two thirds of its TTL have passed; when renewal fails, the token is not renewable, its
//! max TTL is nearly reached, or it expired, the store logs in again. Tokens never appear in
//! errors or Debug output.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{PERMISSION_DENIED, Secret};
use crate::{DataError, Result};

pub(super) const STORE: &str = "vault";

/// How the store gets its Vault token.
#[derive(Clone)]
pub enum VaultAuth {
    /// A token given by the operator (renewed if renewable; cannot log in again).
    Token(Secret),
    AppRole { mount: String, role_id: String, secret_id: Secret },
    /// Reads the JWT file at every login (projected tokens rotate).
    Kubernetes { mount: String, role: String, jwt_path: PathBuf },
}

impl VaultAuth {
    pub fn approle(role_id: impl Into<String>, secret_id: Secret) -> VaultAuth {
        VaultAuth::AppRole { mount: "approle".into(), role_id: role_id.into(), secret_id }
    }

    /// Kubernetes auth at mount `kubernetes` with the pod's service-account token.
    pub fn kubernetes(role: impl Into<String>) -> VaultAuth {
        VaultAuth::Kubernetes {
            mount: "kubernetes".into(),
            role: role.into(),
            jwt_path: "/var/run/secrets/kubernetes.io/serviceaccount/token".into(),
        }
    }

    fn can_login(&self) -> bool {
        !matches!(self, VaultAuth::Token(_))
    }
}

impl std::fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultAuth::Token(_) => f.write_str("Token(***)"),
            VaultAuth::AppRole { mount, role_id, .. } => write!(f, "AppRole {{ mount: {mount:?}, role_id: {role_id:?}, secret_id: *** }}"),
            VaultAuth::Kubernetes { mount, role, jwt_path } => {
                write!(f, "Kubernetes {{ mount: {mount:?}, role: {role:?}, jwt_path: {jwt_path:?} }}")
            }
        }
    }
}

/// How often the store logged in and renewed (for tests and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    pub logins: u64,
    pub renewals: u64,
    pub failed_renewals: u64,
}

struct Token {
    value: Secret,
    renewable: bool,
    /// Zero: never expires (a root token).
    ttl: Duration,
    /// The TTL granted at login: a renewal that gives much less means the max TTL is near.
    login_ttl: Duration,
    since: Instant,
}

pub(super) struct Authenticator {
    http: reqwest::Client,
    addr: String,
    auth: VaultAuth,
    token: tokio::sync::Mutex<Option<Token>>,
    stats: parking_lot::Mutex<AuthStats>,
}

/// Sends a request; returns the status and the JSON body (Null when empty).
pub(super) async fn send(req: reqwest::RequestBuilder) -> Result<(u16, Value)> {
    let resp = req.send().await.map_err(|e| DataError::backend(STORE, e.without_url()))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| DataError::backend(STORE, e.without_url()))?;
    let body = if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
    Ok((status, body))
}

/// Vault's own error text (it never echoes tokens), kept short.
pub(super) fn errors_text(body: &Value) -> String {
    let list: Vec<String> = body["errors"].as_array().into_iter().flatten().filter_map(|e| e.as_str()).map(|s| s.trim().to_string()).collect();
    list.join("; ").chars().take(200).collect()
}

impl Authenticator {
    pub fn new(http: reqwest::Client, addr: String, auth: VaultAuth) -> Authenticator {
        Authenticator { http, addr, auth, token: tokio::sync::Mutex::new(None), stats: Default::default() }
    }

    pub fn stats(&self) -> AuthStats {
        *self.stats.lock()
    }

    pub fn can_login(&self) -> bool {
        self.auth.can_login()
    }

    /// Forgets the token (after Vault refused it): the next request logs in again.
    pub async fn invalidate(&self) {
        *self.token.lock().await = None;
    }

    /// A token good for the next request.
    pub async fn token(&self) -> Result<Secret> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref() {
            let (age, ttl, login_ttl) = (t.since.elapsed(), t.ttl, t.login_ttl);
            if ttl.is_zero() || age < ttl * 2 / 3 || (age < ttl && !t.renewable && !self.can_login()) {
                return Ok(t.value.clone());
            }
            if age < ttl && t.renewable {
                match self.renew(&t.value).await {
                    Ok(new) => {
                        self.stats.lock().renewals += 1;
                        // a renewal capped far below the login TTL means the max TTL is near
                        if !self.can_login() || new.ttl.is_zero() || new.ttl >= login_ttl / 2 {
                            let value = new.value.clone();
                            *slot = Some(Token { login_ttl, ..new });
                            return Ok(value);
                        }
                    }
                    Err(e) => {
                        self.stats.lock().failed_renewals += 1;
                        tracing::warn!("vault token renewal failed, logging in again: {e}");
                    }
                }
            }
        }
        let t = self.login().await?;
        let value = t.value.clone();
        *slot = Some(t);
        self.stats.lock().logins += 1;
        Ok(value)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.addr)
    }

    async fn login(&self) -> Result<Token> {
        let (what, req) = match &self.auth {
            VaultAuth::Token(tok) => {
                // learn the given token's TTL and renewability
                let req = self.http.get(self.url("auth/token/lookup-self")).header("X-Vault-Token", tok.expose());
                let (status, body) = send(req).await?;
                if status != 200 {
                    return Err(refused("token lookup", status, &body));
                }
                let ttl = Duration::from_secs(body["data"]["ttl"].as_u64().unwrap_or(0));
                let renewable = body["data"]["renewable"].as_bool().unwrap_or(false);
                return Ok(Token { value: tok.clone(), renewable, ttl, login_ttl: ttl, since: Instant::now() });
            }
            VaultAuth::AppRole { mount, role_id, secret_id } => (
                "AppRole login",
                self.http
                    .post(self.url(&format!("auth/{mount}/login")))
                    .json(&json!({ "role_id": role_id, "secret_id": secret_id.expose() })),
            ),
            VaultAuth::Kubernetes { mount, role, jwt_path } => {
                let jwt = tokio::fs::read_to_string(jwt_path)
                    .await
                    .map_err(|source| DataError::Io { path: jwt_path.display().to_string(), source })?;
                (
                    "Kubernetes login",
                    self.http.post(self.url(&format!("auth/{mount}/login"))).json(&json!({ "role": role, "jwt": jwt.trim() })),
                )
            }
        };
        let (status, body) = send(req).await?;
        if status != 200 {
            return Err(refused(what, status, &body));
        }
        parse_auth(what, &body)
    }

    async fn renew(&self, token: &Secret) -> Result<Token> {
        let req = self.http.post(self.url("auth/token/renew-self")).header("X-Vault-Token", token.expose()).json(&json!({}));
        let (status, body) = send(req).await?;
        if status != 200 {
            return Err(refused("token renewal", status, &body));
        }
        parse_auth("token renewal", &body)
    }
}

fn refused(what: &str, status: u16, body: &Value) -> DataError {
    let detail = errors_text(body);
    if matches!(status, 400 | 401 | 403) {
        DataError::backend(STORE, format!("{PERMISSION_DENIED}: {what} refused ({status}: {detail})"))
    } else {
        DataError::backend(STORE, format!("{what} failed ({status}: {detail})"))
    }
}

fn parse_auth(what: &str, body: &Value) -> Result<Token> {
    let auth = &body["auth"];
    let value = auth["client_token"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| DataError::backend(STORE, format!("{what}: no client token in the answer")))?;
    let ttl = Duration::from_secs(auth["lease_duration"].as_u64().unwrap_or(0));
    Ok(Token {
        value: Secret::new(value),
        renewable: auth["renewable"].as_bool().unwrap_or(false),
        ttl,
        login_ttl: ttl,
        since: Instant::now(),
    })
}
