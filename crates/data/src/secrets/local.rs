//! The embedded secret store: one file, encrypted at rest with AES-256-GCM (a fresh random
//! nonce per write), replaced atomically (temp file + rename). Layout: `CFSEC1\n` (also the
//! associated data), 12-byte nonce, ciphertext of `{tenant: {name: value}}` JSON.
//! One process owns the file: it is read at open and kept in memory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use tokio::sync::Mutex;

use super::{Secret, SecretStore, secret_path};
use crate::{DataError, Result};

const MAGIC: &[u8] = b"CFSEC1\n";
const NONCE_LEN: usize = 12;
/// Environment variable holding the key: base64 of 32 bytes.
pub const KEY_ENV: &str = "CALLFUNNEL_SECRETS_KEY";

type Tenants = BTreeMap<String, BTreeMap<String, String>>;

/// The 256-bit file key. Debug never shows it.
#[derive(Clone)]
pub struct SecretsKey([u8; 32]);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(***)")
    }
}

fn io(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io { path: path.display().to_string(), source }
}

impl SecretsKey {
    pub fn from_bytes(bytes: [u8; 32]) -> SecretsKey {
        SecretsKey(bytes)
    }

    pub fn random() -> SecretsKey {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        SecretsKey(k)
    }

    /// Base64 of exactly 32 bytes (the error never repeats the text).
    pub fn from_base64(text: &str) -> Result<SecretsKey> {
        let bytes = B64.decode(text.trim()).map_err(|_| DataError::invalid("secrets key", "not valid base64"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| DataError::invalid("secrets key", format!("{} bytes, need 32", b.len())))?;
        Ok(SecretsKey(arr))
    }

    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// The key in `CALLFUNNEL_SECRETS_KEY`, if set.
    pub fn from_env() -> Result<Option<SecretsKey>> {
        match std::env::var(KEY_ENV) {
            Ok(v) => SecretsKey::from_base64(&v).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// The key in `path` (base64 text); created with a random key, mode 0600, if missing.
    pub fn from_file(path: &Path) -> Result<SecretsKey> {
        match std::fs::read_to_string(path) {
            Ok(text) => SecretsKey::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SecretsKey::random();
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = match opts.open(path) {
                    Ok(f) => f,
                    // another process created it first: use theirs
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
                        return SecretsKey::from_base64(&text);
                    }
                    Err(e) => return Err(io(path, e)),
                };
                f.write_all(key.to_base64().as_bytes()).and_then(|()| f.sync_all()).map_err(|e| io(path, e))?;
                Ok(key)
            }
            Err(e) => Err(io(path, e)),
        }
    }

    /// `CALLFUNNEL_SECRETS_KEY` when set, otherwise the key file (created if missing).
    pub fn resolve(key_file: &Path) -> Result<SecretsKey> {
        match SecretsKey::from_env()? {
            Some(k) => Ok(k),
            None => SecretsKey::from_file(key_file),
        }
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }
}

pub struct LocalSecrets {
    path: PathBuf,
    key: SecretsKey,
    data: Mutex<Tenants>,
}

impl std::fmt::Debug for LocalSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSecrets").field("path", &self.path).finish_non_exhaustive()
    }
}

impl LocalSecrets {
    /// Opens (or, at the first write, creates) the file. A wrong key is refused here and the
    /// file is left as it is.
    pub fn open(path: impl Into<PathBuf>, key: SecretsKey) -> Result<LocalSecrets> {
        let path = path.into();
        let data = match std::fs::read(&path) {
            Ok(bytes) => decrypt(&path, &key, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Tenants::new(),
            Err(e) => return Err(io(&path, e)),
        };
        Ok(LocalSecrets { path, key, data: Mutex::new(data) })
    }

    /// Encrypts `data` and replaces the file with it atomically.
    async fn save(&self, data: &Tenants) -> Result<()> {
        let plain = serde_json::to_vec(data).map_err(|e| DataError::invalid("secrets", e.to_string()))?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .key
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plain, aad: MAGIC })
            .map_err(|_| DataError::invalid("secrets", "encryption failed"))?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomic(&path, &out))
            .await
            .map_err(|e| DataError::backend("local secrets", e))?
    }
}

fn decrypt(path: &Path, key: &SecretsKey, bytes: &[u8]) -> Result<Tenants> {
    let corrupt = |message: &str| DataError::Corrupt { path: path.display().to_string(), line: 0, message: message.into() };
    let body = bytes.strip_prefix(MAGIC).ok_or_else(|| corrupt("not a callfunnel secrets file"))?;
    if body.len() < NONCE_LEN + 16 {
        return Err(corrupt("truncated"));
    }
    let (nonce, sealed) = body.split_at(NONCE_LEN);
    let plain = key.cipher().decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: MAGIC }).map_err(|_| {
        DataError::invalid(
            "secrets key",
            format!("cannot decrypt {}: wrong key (or the file was altered); nothing was changed", path.display()),
        )
    })?;
    serde_json::from_slice(&plain).map_err(|e| corrupt(&format!("decrypted but not valid: {e}")))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "secrets".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let result = opts
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path, e));
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all(); // make the rename durable where the platform allows
    }
    Ok(())
}

#[async_trait]
impl SecretStore for LocalSecrets {
    async fn get(&self, tenant_id: &str, name: &str) -> Result<Option<Secret>> {
        secret_path(tenant_id, name)?;
        let data = self.data.lock().await;
        Ok(data.get(tenant_id).and_then(|t| t.get(name)).map(|v| Secret::new(v.clone())))
    }

    async fn put(&self, tenant_id: &str, name: &str, value: &Secret) -> Result<()> {
        secret_path(tenant_id, name)?;
        let mut data = self.data.lock().await;
        let mut next = data.clone();
        next.entry(tenant_id.to_string()).or_default().insert(name.to_string(), value.expose().to_string());
        self.save(&next).await?;
        *data = next;
        Ok(())
    }

    async fn delete(&self, tenant_id: &str, name: &str) -> Result<bool> {
        secret_path(tenant_id, name)?;
        let mut data = self.data.lock().await;
        if !data.get(tenant_id).is_some_and(|t| t.contains_key(name)) {
            return Ok(false);
        }
        let mut next = data.clone();
        if let Some(t) = next.get_mut(tenant_id) {
            t.remove(name);
            if t.is_empty() {
                next.remove(tenant_id);
            }
        }
        self.save(&next).await?;
        *data = next;
        Ok(true)
    }

    async fn list(&self, tenant_id: &str) -> Result<Vec<String>> {
        crate::check_id(tenant_id)?;
        let data = self.data.lock().await;
        Ok(data.get(tenant_id).map(|t| t.keys().cloned().collect()).unwrap_or_default())
    }
}
