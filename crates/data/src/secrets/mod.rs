//! Secrets: provider keys per tenant. Vault KV v2 in production ([`VaultSecrets`], tested
//! against OpenBao), an encrypted local file embedded ([`LocalSecrets`]). Never logged: a
//! [`Secret`] prints as `Secret(***)` and gives its value only through [`Secret::expose`].

use async_trait::async_trait;

use crate::{DataError, Result, check_id};

mod local;
mod vault;
mod vault_auth;

pub use local::{LocalSecrets, SecretsKey};
pub use vault::{VaultConfig, VaultSecrets};
pub use vault_auth::{AuthStats, VaultAuth};

/// A secret value. Debug and Display never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The value itself: call only where it is sent to the provider.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s)
    }
}

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The tenant's secret `name` (e.g. `openai`), or None.
    async fn get(&self, tenant_id: &str, name: &str) -> Result<Option<Secret>>;
    /// Creates or replaces it.
    async fn put(&self, tenant_id: &str, name: &str, value: &Secret) -> Result<()>;
    /// Removes it; false when it did not exist.
    async fn delete(&self, tenant_id: &str, name: &str) -> Result<bool>;
    /// The names of the tenant's secrets, sorted.
    async fn list(&self, tenant_id: &str) -> Result<Vec<String>>;
}

/// Where a tenant's secret lives: `tenants/<tenant>/providers/<name>` (ids checked).
pub fn secret_path(tenant_id: &str, name: &str) -> Result<String> {
    check_id(tenant_id)?;
    check_id(name)?;
    Ok(format!("tenants/{tenant_id}/providers/{name}"))
}

/// The message of a refused request starts with this (Vault answered 403).
pub const PERMISSION_DENIED: &str = "permission denied";

/// True when the store refused the request for lack of permission (Vault 403).
pub fn is_permission_denied(e: &DataError) -> bool {
    matches!(e, DataError::Backend { message, .. } if message.starts_with(PERMISSION_DENIED))
}
