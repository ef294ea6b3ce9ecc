//! Vault KV v2 over its HTTP API (OpenBao speaks the same). One secret per path
//! `<mount>/data/tenants/<tenant>/providers/<name>`, its value under the field `value`.
//! Reads are cached for `cache_ttl` (a put or delete through this store drops the entry).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};

use super::vault_auth::{Authenticator, STORE, errors_text, send};
use super::{AuthStats, PERMISSION_DENIED, Secret, SecretStore, VaultAuth, secret_path};
use crate::{DataError, Result, check_id};

#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// `http://127.0.0.1:8200` (no trailing `/v1`).
    pub addr: String,
    /// The KV v2 mount, `secret` by default.
    pub mount: String,
    pub auth: VaultAuth,
    /// How long a read is served from memory; zero turns the cache off.
    pub cache_ttl: Duration,
    pub request_timeout: Duration,
}

impl VaultConfig {
    pub fn new(addr: impl Into<String>, auth: VaultAuth) -> VaultConfig {
        VaultConfig {
            addr: addr.into(),
            mount: "secret".into(),
            auth,
            cache_ttl: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
        }
    }
}

pub struct VaultSecrets {
    http: reqwest::Client,
    addr: String,
    mount: String,
    cache_ttl: Duration,
    auth: Authenticator,
    cache: parking_lot::Mutex<HashMap<String, (Option<Secret>, Instant)>>,
}

impl VaultSecrets {
    /// No request is made here: the first use logs in.
    pub fn new(config: VaultConfig) -> Result<VaultSecrets> {
        let addr = config.addr.trim_end_matches('/').to_string();
        if !(addr.starts_with("http://") || addr.starts_with("https://")) {
            return Err(DataError::invalid("vault address", "use http://host:port or https://host:port"));
        }
        if config.mount.is_empty() || !config.mount.split('/').all(|m| check_id(m).is_ok()) {
            return Err(DataError::invalid("vault mount", format!("`{}`", config.mount)));
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| DataError::backend(STORE, e))?;
        let auth = Authenticator::new(http.clone(), addr.clone(), config.auth);
        Ok(VaultSecrets { http, addr, mount: config.mount, cache_ttl: config.cache_ttl, auth, cache: Default::default() })
    }

    pub fn auth_stats(&self) -> AuthStats {
        self.auth.stats()
    }

    /// One authenticated request. A 403 with a login-capable method logs in again and retries
    /// once (the token may have been revoked); a second 403 is a permission error.
    async fn call(&self, method: Method, api_path: &str, body: Option<&Value>, op: &str) -> Result<(u16, Value)> {
        let url = format!("{}/v1/{}/{api_path}", self.addr, self.mount);
        for attempt in 0..2 {
            let token = self.auth.token().await?;
            let mut req = self.http.request(method.clone(), &url).header("X-Vault-Token", token.expose());
            if let Some(b) = body {
                req = req.json(b);
            }
            let (status, resp) = send(req).await?;
            match status {
                403 if attempt == 0 && self.auth.can_login() => self.auth.invalidate().await,
                403 => {
                    return Err(DataError::backend(
                        STORE,
                        format!("{PERMISSION_DENIED}: the Vault policy does not allow {op} on {}/{api_path}", self.mount),
                    ));
                }
                s if s >= 500 || s == 400 || s == 401 => {
                    return Err(DataError::backend(STORE, format!("{op} {api_path}: {s}: {}", errors_text(&resp))));
                }
                _ => return Ok((status, resp)),
            }
        }
        Err(DataError::backend(STORE, "unreachable retry loop"))
    }

    fn cached(&self, path: &str) -> Option<Option<Secret>> {
        if self.cache_ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock();
        cache.get(path).filter(|(_, at)| at.elapsed() < self.cache_ttl).map(|(v, _)| v.clone())
    }

    fn remember(&self, path: String, value: Option<Secret>) {
        if !self.cache_ttl.is_zero() {
            let mut cache = self.cache.lock();
            let ttl = self.cache_ttl;
            cache.retain(|_, (_, at)| at.elapsed() < ttl);
            cache.insert(path, (value, Instant::now()));
        }
    }
}

fn unexpected(op: &str, status: u16, body: &Value) -> DataError {
    DataError::backend(STORE, format!("{op}: unexpected answer {status}: {}", errors_text(body)))
}

#[async_trait]
impl SecretStore for VaultSecrets {
    async fn get(&self, tenant_id: &str, name: &str) -> Result<Option<Secret>> {
        let path = secret_path(tenant_id, name)?;
        if let Some(hit) = self.cached(&path) {
            return Ok(hit);
        }
        let (status, body) = self.call(Method::GET, &format!("data/{path}"), None, "read").await?;
        let value = match status {
            200 => Some(
                body["data"]["data"]["value"]
                    .as_str()
                    .map(Secret::new)
                    .ok_or_else(|| DataError::backend(STORE, format!("{path} has no string field `value`")))?,
            ),
            404 => None,
            s => return Err(unexpected("read", s, &body)),
        };
        self.remember(path, value.clone());
        Ok(value)
    }

    async fn put(&self, tenant_id: &str, name: &str, value: &Secret) -> Result<()> {
        let path = secret_path(tenant_id, name)?;
        self.cache.lock().remove(&path);
        let body = json!({ "data": { "value": value.expose() } });
        let (status, resp) = self.call(Method::POST, &format!("data/{path}"), Some(&body), "write").await?;
        self.cache.lock().remove(&path);
        if matches!(status, 200 | 204) { Ok(()) } else { Err(unexpected("write", status, &resp)) }
    }

    async fn delete(&self, tenant_id: &str, name: &str) -> Result<bool> {
        let path = secret_path(tenant_id, name)?;
        self.cache.lock().remove(&path);
        let meta = format!("metadata/{path}");
        let (status, resp) = self.call(Method::GET, &meta, None, "read metadata").await?;
        match status {
            404 => return Ok(false),
            200 => {}
            s => return Err(unexpected("read metadata", s, &resp)),
        }
        // all versions and the metadata: nothing of the secret stays
        let (status, resp) = self.call(Method::DELETE, &meta, None, "delete").await?;
        self.cache.lock().remove(&path);
        if matches!(status, 200 | 204) { Ok(true) } else { Err(unexpected("delete", status, &resp)) }
    }

    async fn list(&self, tenant_id: &str) -> Result<Vec<String>> {
        check_id(tenant_id)?;
        let api = format!("metadata/tenants/{tenant_id}/providers?list=true");
        let (status, body) = self.call(Method::GET, &api, None, "list").await?;
        match status {
            404 => Ok(Vec::new()),
            200 => {
                let mut names: Vec<String> = body["data"]["keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k.as_str())
                    .filter(|k| !k.ends_with('/'))
                    .map(str::to_string)
                    .collect();
                names.sort();
                Ok(names)
            }
            s => Err(unexpected("list", s, &body)),
        }
    }
}
