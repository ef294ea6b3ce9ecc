//! The data plane as configured: each store's production backend when `[stores]` names a
//! server, else its embedded twin under `[data] dir`. One code path for both modes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use callfunnel_data::control::{ControlStore, PgControlStore, SqliteControlStore};
use callfunnel_data::hot::{HotConfig, HotState, MemoryHotState, RedisHotState};
use callfunnel_data::recordings::{LocalRecordings, RecordingStore, S3Config, S3Recordings};
use callfunnel_data::secrets::{LocalSecrets, Secret, SecretStore, SecretsKey, VaultAuth, VaultConfig, VaultSecrets};
use callfunnel_data::timeline::{BufferConfig, BufferedTimeline, MongoTimeline, Retention};
use callfunnel_data::vectors::{LocalVectors, QdrantVectors, VectorStore};
use callfunnel_data::{FileTimeline, MemoryTimeline, TimelineStore};

use crate::config::Config;

/// Every store of this node.
#[derive(Clone)]
pub struct Stores {
    pub control: Arc<dyn ControlStore>,
    /// Writes go through `buffer` (durable, off the call path); reads merge what is pending.
    pub timeline: Arc<dyn TimelineStore>,
    pub buffer: Arc<BufferedTimeline>,
    pub hot: Arc<dyn HotState>,
    /// The post-call work queue (analysis): the hot state's fair job queue under its own keys
    /// (`{prefix.analysis}` in Redis), apart from the outbound-dial queue.
    pub work: Arc<dyn HotState>,
    pub recordings: Arc<dyn RecordingStore>,
    /// Embedded mode: the recordings directory, where a call's tap writes directly.
    pub local_recordings: Option<Arc<LocalRecordings>>,
    pub vectors: Arc<dyn VectorStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub node_id: String,
    /// What serves each store (for logs and `/readyz`): `postgres`, `sqlite`, …
    pub backends: Vec<(&'static str, &'static str)>,
}

/// Reads a credential by its environment variable name.
pub type CredentialLookup<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

fn from_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn node_id(cfg: &Config) -> String {
    cfg.stores.node_id.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").ok().or_else(|| std::fs::read_to_string("/etc/hostname").ok()).unwrap_or_default();
        let host: String = host.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(64).collect();
        if host.is_empty() { format!("node-{}", std::process::id()) } else { host }
    })
}

/// The key that signs embedded recording links: `DIR/recordings.key`, made on first use.
fn signing_key(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = dir.join("recordings.key");
    if let Ok(k) = std::fs::read(&path) {
        if k.len() >= 32 {
            return Ok(k);
        }
    }
    let key: [u8; 32] = rand::random();
    std::fs::create_dir_all(dir)?;
    write_private(&path, &key).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key.to_vec())
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    o.mode(0o600);
    o.open(path)?.write_all(data)
}

impl Stores {
    /// Opens every store; a configured server that cannot be reached is an error naming it
    /// (its URL is not printed: it may carry a password).
    pub async fn open(cfg: &Config) -> anyhow::Result<Stores> {
        Self::open_with(cfg, &from_env).await
    }

    /// As [`Stores::open`], reading the credentials through `lookup` (tests).
    pub async fn open_with(cfg: &Config, lookup: CredentialLookup<'_>) -> anyhow::Result<Stores> {
        let env_secret = |name: &str| lookup(name).filter(|v| !v.trim().is_empty()).map(Secret::new);
        let s = &cfg.stores;
        let dir: PathBuf = cfg.data.dir.clone();
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        let mut backends = Vec::new();

        let control: Arc<dyn ControlStore> = match &s.postgres_url {
            Some(url) => {
                backends.push(("control", "postgres"));
                Arc::new(PgControlStore::connect(url).await.context("[stores] postgres_url: cannot open the control store")?)
            }
            None => {
                backends.push(("control", "sqlite"));
                Arc::new(SqliteControlStore::open(dir.join("control.db")).await.context("cannot open the embedded control store")?)
            }
        };
        let default_tenant = &cfg.agents.default_tenant;
        control.ensure_tenant(default_tenant, default_tenant).await.context("cannot create the default tenant")?;
        let mut retention = Retention { default_days: s.retention_days.unwrap_or(90), ..Default::default() };
        for t in control.tenants().await.context("cannot list tenants")? {
            retention.per_tenant.insert(t.id.clone(), t.plan.retention_days);
        }

        let inner: Arc<dyn TimelineStore> = match (&s.mongodb_uri, cfg.data.timeline.as_str()) {
            (Some(uri), _) => {
                backends.push(("timeline", "mongodb"));
                let db = s.mongodb_database.clone().unwrap_or_else(|| "callfunnel".into());
                Arc::new(MongoTimeline::connect(uri, &db, retention).await.context("[stores] mongodb_uri: cannot open the timeline store")?)
            }
            (None, "memory") => {
                backends.push(("timeline", "memory"));
                Arc::new(MemoryTimeline::default())
            }
            (None, _) => {
                backends.push(("timeline", "files"));
                Arc::new(FileTimeline::open(dir.join("timelines"))?)
            }
        };
        let buffer = BufferedTimeline::open(inner, dir.join("timeline-buffer"), BufferConfig::default()).await.context("cannot open the timeline write buffer")?;
        let timeline: Arc<dyn TimelineStore> = buffer.clone();

        let (hot, work): (Arc<dyn HotState>, Arc<dyn HotState>) = match &s.redis_url {
            Some(url) => {
                backends.push(("hot", "redis"));
                let prefix = s.redis_prefix.clone().unwrap_or_else(|| "cf".into());
                let open = |p: String| async move { RedisHotState::connect_with(url, &p, HotConfig { lease_ttl: s.lease_ttl() }).await.context("[stores] redis_url: cannot open the hot state") };
                (Arc::new(open(prefix.clone()).await?), Arc::new(open(format!("{prefix}.analysis")).await?))
            }
            None => {
                backends.push(("hot", "memory"));
                let hot = || Arc::new(MemoryHotState::with_config(HotConfig { lease_ttl: s.lease_ttl() }));
                (hot(), hot())
            }
        };

        let (recordings, local_recordings): (Arc<dyn RecordingStore>, _) = match &s.s3 {
            Some(c) => {
                backends.push(("recordings", "s3"));
                let secret_key = env_secret("CALLFUNNEL_S3_SECRET_ACCESS_KEY").context("[stores.s3] needs CALLFUNNEL_S3_SECRET_ACCESS_KEY in the environment")?;
                let s3 = S3Config { endpoint: c.endpoint.clone(), region: c.region.clone(), bucket: c.bucket.clone(), access_key: c.access_key_id.clone(), secret_key: secret_key.expose().to_string() };
                (Arc::new(S3Recordings::new(&s3).context("[stores.s3]")?), None)
            }
            None => {
                backends.push(("recordings", "files"));
                let local = Arc::new(LocalRecordings::open(dir.join("recordings"), &signing_key(&dir)?)?);
                (local.clone(), Some(local))
            }
        };

        let vectors: Arc<dyn VectorStore> = match &s.qdrant_url {
            Some(url) => {
                backends.push(("vectors", "qdrant"));
                let key = env_secret("CALLFUNNEL_QDRANT_API_KEY");
                Arc::new(QdrantVectors::new(url, key.as_ref().map(|k| k.expose())).context("[stores] qdrant_url")?)
            }
            None => {
                backends.push(("vectors", "files"));
                Arc::new(LocalVectors::open(dir.join("vectors"))?)
            }
        };

        let secrets: Arc<dyn SecretStore> = match &s.vault {
            Some(v) => {
                backends.push(("secrets", "vault"));
                let auth = match v.auth.as_str() {
                    "token" => VaultAuth::Token(env_secret("CALLFUNNEL_VAULT_TOKEN").context("[stores.vault] auth = token needs CALLFUNNEL_VAULT_TOKEN")?),
                    "approle" => VaultAuth::approle(
                        v.role_id.clone().unwrap_or_default(),
                        env_secret("CALLFUNNEL_VAULT_SECRET_ID").context("[stores.vault] auth = approle needs CALLFUNNEL_VAULT_SECRET_ID")?,
                    ),
                    _ => {
                        let mut a = VaultAuth::kubernetes(v.role.clone().unwrap_or_default());
                        if let (VaultAuth::Kubernetes { jwt_path, .. }, Some(p)) = (&mut a, &v.jwt_path) {
                            *jwt_path = PathBuf::from(p);
                        }
                        a
                    }
                };
                let mut vc = VaultConfig::new(v.addr.clone(), auth);
                if let Some(m) = &v.mount {
                    vc.mount = m.clone();
                }
                if let Some(t) = v.cache_ttl_secs {
                    vc.cache_ttl = Duration::from_secs(t);
                }
                Arc::new(VaultSecrets::new(vc).context("[stores.vault]")?)
            }
            None => {
                backends.push(("secrets", "encrypted-file"));
                let key = SecretsKey::resolve(&dir.join("secrets.key")).context("cannot load the local secrets key")?;
                Arc::new(LocalSecrets::open(dir.join("secrets.enc"), key).context("cannot open the local secrets file")?)
            }
        };

        Ok(Stores { control, timeline, buffer, hot, work, recordings, local_recordings, vectors, secrets, node_id: node_id(cfg), backends })
    }

    /// Ships every buffered timeline event (call at shutdown).
    pub async fn flush(&self) {
        if let Err(e) = self.buffer.flush().await {
            tracing::error!(error = %e, "timeline buffer flush failed; the events stay on disk and ship at the next start");
        }
    }
}

impl Stores {
    /// Deletes recordings past each tenant's retention (S3 has lifecycle rules, but not every
    /// S3-compatible server does, and the embedded store has none). Timelines on MongoDB expire
    /// by their TTL index. Returns how many recordings were deleted.
    pub async fn sweep_retention(&self) -> anyhow::Result<usize> {
        let mut deleted = 0;
        for t in self.control.tenants().await? {
            let keep = std::time::Duration::from_secs(u64::from(t.plan.retention_days.max(1)) * 86_400);
            let cutoff = std::time::SystemTime::now() - keep;
            match self.recordings.delete_older_than(&t.id, cutoff).await {
                Ok(gone) => {
                    if !gone.is_empty() {
                        tracing::info!(tenant_id = %t.id, deleted = gone.len(), days = t.plan.retention_days, "recordings past retention deleted");
                    }
                    deleted += gone.len();
                }
                Err(e) => tracing::warn!(tenant_id = %t.id, error = %e, "retention sweep failed for this tenant"),
            }
        }
        Ok(deleted)
    }
}
