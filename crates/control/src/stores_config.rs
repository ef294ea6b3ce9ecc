//! `[stores]`: which production backend serves each store. Anything left out uses its embedded
//! twin under `[data] dir`, so the demo and `serve` need no servers. Credentials are never
//! written here: they come from the environment (`CALLFUNNEL_S3_SECRET_ACCESS_KEY`,
//! `CALLFUNNEL_VAULT_TOKEN`, `CALLFUNNEL_VAULT_SECRET_ID`, `CALLFUNNEL_QDRANT_API_KEY`,
//! `CALLFUNNEL_SECRETS_KEY`), except what a database URL itself carries.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoresConfig {
    /// Control store (tenants, agents, numbers, billing): `postgres://…`; SQLite when unset.
    pub postgres_url: Option<String>,
    /// Call timelines: `mongodb://…`; JSON-lines files when unset. Either way writes go through
    /// a durable buffer on local disk.
    pub mongodb_uri: Option<String>,
    pub mongodb_database: Option<String>,
    /// Hot state (which node holds a call, active-call leases, dial queue): `redis://…`;
    /// in-process when unset.
    pub redis_url: Option<String>,
    /// Key prefix in Redis (several deployments may share one server).
    pub redis_prefix: Option<String>,
    /// This node's id in the hot state (default: the host name).
    pub node_id: Option<String>,
    /// Knowledge vectors: Qdrant's REST URL; an in-process index on disk when unset.
    pub qdrant_url: Option<String>,
    pub s3: Option<S3Config>,
    pub vault: Option<VaultConfig>,
    /// Days a call's timeline and recording are kept unless the tenant's plan says otherwise.
    pub retention_days: Option<u32>,
    /// Seconds a live call's lease outlives its node's last heartbeat (default 30; heartbeats
    /// come every third of it): how soon a crashed node's calls stop counting.
    pub lease_ttl_s: Option<u64>,
}

impl StoresConfig {
    pub fn lease_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lease_ttl_s.unwrap_or(30))
    }
}

/// Recordings in S3 / MinIO.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// `https://s3.eu-west-1.amazonaws.com`, `http://minio:9000`, …
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    /// Keep the local WAV after a successful upload.
    pub keep_local: bool,
}

/// Provider keys per tenant in Vault (KV v2).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaultConfig {
    pub addr: String,
    /// KV v2 mount (default `secret`).
    pub mount: Option<String>,
    /// `token` (`CALLFUNNEL_VAULT_TOKEN`), `approle` (`role_id` + `CALLFUNNEL_VAULT_SECRET_ID`)
    /// or `kubernetes` (`role`, service-account token at `jwt_path`).
    pub auth: String,
    pub role_id: Option<String>,
    pub role: Option<String>,
    pub jwt_path: Option<String>,
    /// How long a read secret is served from memory.
    pub cache_ttl_secs: Option<u64>,
}

impl StoresConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        let scheme = |what: &str, url: &Option<String>, ok: &[&str]| -> anyhow::Result<()> {
            if let Some(u) = url {
                if !ok.iter().any(|s| u.starts_with(s)) {
                    anyhow::bail!("invalid [stores] {what}: expected a URL starting with {}", ok.join(" or "));
                }
            }
            Ok(())
        };
        scheme("postgres_url", &self.postgres_url, &["postgres://", "postgresql://"])?;
        scheme("mongodb_uri", &self.mongodb_uri, &["mongodb://", "mongodb+srv://"])?;
        scheme("redis_url", &self.redis_url, &["redis://", "rediss://"])?;
        scheme("qdrant_url", &self.qdrant_url, &["http://", "https://"])?;
        if let Some(s3) = &self.s3 {
            if s3.bucket.is_empty() || s3.endpoint.is_empty() || s3.access_key_id.is_empty() {
                anyhow::bail!("invalid [stores.s3]: endpoint, bucket and access_key_id are required");
            }
        }
        if let Some(v) = &self.vault {
            if !matches!(v.auth.as_str(), "token" | "approle" | "kubernetes") {
                anyhow::bail!("invalid [stores.vault] auth `{}`: use token, approle or kubernetes", v.auth);
            }
            if v.auth == "approle" && v.role_id.is_none() {
                anyhow::bail!("[stores.vault] auth = \"approle\" needs role_id");
            }
            if v.auth == "kubernetes" && v.role.is_none() {
                anyhow::bail!("[stores.vault] auth = \"kubernetes\" needs role");
            }
        }
        if let Some(t) = self.lease_ttl_s
            && !(3..=3600).contains(&t)
        {
            anyhow::bail!("invalid [stores] lease_ttl_s {t}: use 3 to 3600 seconds");
        }
        if self.retention_days == Some(0) {
            anyhow::bail!("invalid [stores] retention_days 0: keep at least one day");
        }
        Ok(())
    }
}
