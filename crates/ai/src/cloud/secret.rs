//! Provider keys. A [`Secret`] never prints its value; a [`SecretSource`] finds a tenant's key
//! for a provider (environment variables here; Vault with the data plane).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::Result;

/// A credential. `Debug`/`Display` print `***`, so it cannot leak into logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(s: impl AsRef<str>) -> Self {
        Secret(Arc::from(s.as_ref()))
    }
    /// The value, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Finds provider keys per tenant.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The key of `provider` (`deepgram`, `anthropic`, ...) for `tenant_id`, if any.
    async fn provider_key(&self, tenant_id: &str, provider: &str) -> Result<Option<Secret>>;
    /// Any other secret by name (`twilio_auth_token`, ...), for `tenant_id` ("" = platform).
    async fn named(&self, tenant_id: &str, name: &str) -> Result<Option<Secret>>;
}

/// Keys from the environment: `CALLFUNNEL_<PROVIDER>_API_KEY`, else the vendor's own variable
/// (`DEEPGRAM_API_KEY`, `ANTHROPIC_API_KEY`, `CARTESIA_API_KEY`, `SARVAM_API_KEY`,
/// `VOYAGE_API_KEY`). The same key serves every tenant.
#[derive(Default, Clone, Copy)]
pub struct EnvSecrets;

#[async_trait]
impl SecretSource for EnvSecrets {
    async fn provider_key(&self, _tenant_id: &str, provider: &str) -> Result<Option<Secret>> {
        let up = provider.to_ascii_uppercase();
        let found = [format!("CALLFUNNEL_{up}_API_KEY"), format!("{up}_API_KEY")]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()));
        Ok(found.map(Secret::new))
    }

    /// `CALLFUNNEL_<NAME>`, else `<NAME>` (e.g. `TWILIO_AUTH_TOKEN`).
    async fn named(&self, _tenant_id: &str, name: &str) -> Result<Option<Secret>> {
        let up = name.to_ascii_uppercase();
        Ok([format!("CALLFUNNEL_{up}"), up].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty())).map(Secret::new))
    }
}

/// Fixed keys (configuration, tests): `provider` → key, or `tenant/provider` → key.
#[derive(Default, Clone)]
pub struct StaticSecrets(pub HashMap<String, Secret>);

impl StaticSecrets {
    pub fn with(mut self, name: &str, key: &str) -> Self {
        self.0.insert(name.to_string(), Secret::new(key));
        self
    }
}

#[async_trait]
impl SecretSource for StaticSecrets {
    async fn provider_key(&self, tenant_id: &str, provider: &str) -> Result<Option<Secret>> {
        Ok(self.0.get(&format!("{tenant_id}/{provider}")).or_else(|| self.0.get(provider)).cloned())
    }

    async fn named(&self, tenant_id: &str, name: &str) -> Result<Option<Secret>> {
        self.provider_key(tenant_id, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("sk-very-secret");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "sk-very-secret");
    }

    #[tokio::test]
    async fn static_keys_prefer_the_tenant() {
        let s = StaticSecrets::default().with("deepgram", "global").with("t1/deepgram", "mine");
        assert_eq!(s.provider_key("t1", "deepgram").await.unwrap().unwrap().expose(), "mine");
        assert_eq!(s.provider_key("t2", "deepgram").await.unwrap().unwrap().expose(), "global");
        assert!(s.provider_key("t2", "cartesia").await.unwrap().is_none());
    }
}
