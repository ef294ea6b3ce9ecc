//! Provider keys from the data plane's secret store (Vault, or the encrypted local file):
//! `tenants/<tenant>/providers/<provider>` first, then the platform's own entry
//! (`tenants/platform/…`), then the next source (the environment).

use std::sync::Arc;

use async_trait::async_trait;
use callfunnel_ai::cloud::{Secret, SecretSource};
use callfunnel_data::secrets::SecretStore;

pub const PLATFORM: &str = "platform";

pub struct StoreSecrets {
    pub store: Arc<dyn SecretStore>,
    pub fallback: Arc<dyn SecretSource>,
}

impl StoreSecrets {
    async fn lookup(&self, tenant_id: &str, name: &str) -> callfunnel_ai::Result<Option<Secret>> {
        let tenants: &[&str] = if tenant_id.is_empty() || tenant_id == PLATFORM { &[PLATFORM] } else { &[tenant_id, PLATFORM] };
        for t in tenants {
            match self.store.get(t, name).await {
                Ok(Some(s)) => return Ok(Some(Secret::new(s.expose()))),
                Ok(None) => {}
                // A store that cannot answer must not hide a key the next source has; say so.
                Err(e) => tracing::warn!(tenant_id = t, name, error = %e, "secret store lookup failed; trying the next source"),
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl SecretSource for StoreSecrets {
    async fn provider_key(&self, tenant_id: &str, provider: &str) -> callfunnel_ai::Result<Option<Secret>> {
        match self.lookup(tenant_id, provider).await? {
            Some(s) => Ok(Some(s)),
            None => self.fallback.provider_key(tenant_id, provider).await,
        }
    }

    async fn named(&self, tenant_id: &str, name: &str) -> callfunnel_ai::Result<Option<Secret>> {
        match self.lookup(tenant_id, name).await? {
            Some(s) => Ok(Some(s)),
            None => self.fallback.named(tenant_id, name).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callfunnel_ai::cloud::StaticSecrets;
    use callfunnel_data::secrets::{LocalSecrets, Secret as DataSecret, SecretsKey};

    #[tokio::test]
    async fn tenant_then_platform_then_fallback() {
        let dir = std::env::temp_dir().join(format!("cf-store-secrets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Arc::new(LocalSecrets::open(dir.join("s.enc"), SecretsKey::random()).unwrap());
        store.put("acme", "deepgram", &DataSecret::new("dg-acme")).await.unwrap();
        store.put(PLATFORM, "deepgram", &DataSecret::new("dg-platform")).await.unwrap();
        let s = StoreSecrets { store, fallback: Arc::new(StaticSecrets::default().with("cartesia", "ct-env")) };
        assert_eq!(s.provider_key("acme", "deepgram").await.unwrap().unwrap().expose(), "dg-acme");
        assert_eq!(s.provider_key("globex", "deepgram").await.unwrap().unwrap().expose(), "dg-platform");
        assert_eq!(s.provider_key("acme", "cartesia").await.unwrap().unwrap().expose(), "ct-env");
        assert!(s.provider_key("acme", "sarvam").await.unwrap().is_none());
        assert_eq!(s.named("", "deepgram").await.unwrap().unwrap().expose(), "dg-platform");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
