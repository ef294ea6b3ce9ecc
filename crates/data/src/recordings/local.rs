//! The embedded twin: recordings as files under a directory, in the same key layout as S3.
//! Multipart parts are staged under `DIR/.uploads/<id>/` and joined on completion (written to a
//! temporary file, then renamed into place). Presigned links are URL paths signed with HMAC.

use super::{PartUpload, RecordingInfo, RecordingStore, check_expiry, missing_part, recording_key};
use crate::{DataError, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct LocalRecordings {
    dir: PathBuf,
    signing_key: Vec<u8>,
}

impl std::fmt::Debug for LocalRecordings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRecordings").field("dir", &self.dir).field("signing_key", &"<hidden>").finish()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io { path: path.display().to_string(), source }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Writes `data` to a temporary file next to `path`, then renames it into place.
async fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let parent = path.parent().ok_or_else(|| DataError::invalid("path", "no parent directory"))?;
    tokio::fs::create_dir_all(parent).await.map_err(io(parent))?;
    let tmp = parent.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    tokio::fs::write(&tmp, data).await.map_err(io(&tmp))?;
    tokio::fs::rename(&tmp, path).await.map_err(io(path))
}

impl LocalRecordings {
    /// Recordings under `dir`; `signing_key` (at least 16 bytes) signs the download links.
    pub fn open(dir: impl Into<PathBuf>, signing_key: &[u8]) -> Result<LocalRecordings> {
        if signing_key.len() < 16 {
            return Err(DataError::invalid("signing key", "use at least 16 bytes"));
        }
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(LocalRecordings { dir, signing_key: signing_key.to_vec() })
    }

    fn file(&self, tenant: &str, call_id: &str) -> Result<PathBuf> {
        Ok(self.dir.join(recording_key(tenant, call_id)?))
    }

    fn mac(&self, tenant: &str, call_id: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.signing_key).expect("HMAC takes any key length");
        mac.update(format!("GET\n{tenant}\n{call_id}\n{expires}").as_bytes());
        mac
    }

    /// Checks a link made by `presign_get` (the route's path segments and its `expires` and
    /// `sig` query values): `Ok` lets the route serve the file.
    /// Where the recording of `call_id` lives on disk (the call's tap may write it there
    /// directly: nothing to upload in embedded mode).
    pub fn path_of(&self, tenant: &str, call_id: &str) -> Result<PathBuf> {
        Ok(self.dir.join(recording_key(tenant, call_id)?))
    }

    pub fn verify_presigned(&self, tenant: &str, call_id: &str, expires: u64, sig: &str) -> Result<()> {
        recording_key(tenant, call_id)?;
        let refused = |why: &str| DataError::invalid("download link", why.to_string());
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| refused("bad signature"))?;
        self.mac(tenant, call_id, expires).verify_slice(&sig).map_err(|_| refused("bad signature"))?;
        if unix_now() >= expires {
            return Err(refused("expired"));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl RecordingStore for LocalRecordings {
    async fn put(&self, tenant: &str, call_id: &str, data: Bytes) -> Result<()> {
        write_atomic(&self.file(tenant, call_id)?, &data).await
    }

    async fn get(&self, tenant: &str, call_id: &str) -> Result<Bytes> {
        let path = self.file(tenant, call_id)?;
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(Bytes::from(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DataError::not_found("recording", call_id)),
            Err(e) => Err(io(&path)(e)),
        }
    }

    async fn list(&self, tenant: &str) -> Result<Vec<RecordingInfo>> {
        crate::check_id(tenant)?;
        let dir = self.dir.join("tenants").join(tenant).join("recordings");
        let mut rd = match tokio::fs::read_dir(&dir).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut out = Vec::new();
        while let Some(e) = rd.next_entry().await.map_err(io(&dir))? {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(call_id) = name.strip_suffix(".wav") else { continue };
            if crate::check_id(call_id).is_err() {
                continue;
            }
            let meta = e.metadata().await.map_err(io(&e.path()))?;
            let last_modified = meta.modified().map_err(io(&e.path()))?;
            out.push(RecordingInfo { call_id: call_id.to_string(), size: meta.len(), last_modified });
        }
        out.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        Ok(out)
    }

    async fn delete(&self, tenant: &str, call_id: &str) -> Result<()> {
        let path = self.file(tenant, call_id)?;
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
            _ => Ok(()),
        }
    }

    async fn delete_older_than(&self, tenant: &str, cutoff: SystemTime) -> Result<Vec<String>> {
        let mut deleted = Vec::new();
        for r in self.list(tenant).await? {
            if r.last_modified < cutoff {
                self.delete(tenant, &r.call_id).await?;
                deleted.push(r.call_id);
            }
        }
        Ok(deleted)
    }

    async fn presign_get(&self, tenant: &str, call_id: &str, expires: Duration) -> Result<String> {
        check_expiry(expires)?;
        recording_key(tenant, call_id)?;
        let at = unix_now() + expires.as_secs().max(1);
        let sig = URL_SAFE_NO_PAD.encode(self.mac(tenant, call_id, at).finalize().into_bytes());
        Ok(format!("/recordings/{tenant}/{call_id}.wav?expires={at}&sig={sig}"))
    }

    async fn begin_upload(&self, tenant: &str, call_id: &str) -> Result<Box<dyn PartUpload>> {
        let target = self.file(tenant, call_id)?;
        let staging = self.dir.join(".uploads").join(uuid::Uuid::new_v4().simple().to_string());
        tokio::fs::create_dir_all(&staging).await.map_err(io(&staging))?;
        Ok(Box::new(LocalUpload { staging, target }))
    }
}

struct LocalUpload {
    staging: PathBuf,
    target: PathBuf,
}

#[async_trait::async_trait]
impl PartUpload for LocalUpload {
    async fn put_part(&mut self, idx: usize, data: Bytes) -> Result<()> {
        write_atomic(&self.staging.join(format!("part-{idx}")), &data).await
    }

    async fn complete(&mut self, n: usize) -> Result<()> {
        let parent = self.target.parent().ok_or_else(|| DataError::invalid("path", "no parent directory"))?;
        tokio::fs::create_dir_all(parent).await.map_err(io(parent))?;
        let tmp = parent.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
        let joined = async {
            let mut out = tokio::fs::File::create(&tmp).await.map_err(io(&tmp))?;
            for i in 0..n {
                let part = self.staging.join(format!("part-{i}"));
                let mut f = tokio::fs::File::open(&part).await.map_err(|_| missing_part(i))?;
                tokio::io::copy(&mut f, &mut out).await.map_err(io(&tmp))?;
            }
            out.sync_all().await.map_err(io(&tmp))
        };
        if let Err(e) = joined.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio::fs::rename(&tmp, &self.target).await.map_err(io(&self.target))?;
        self.abort().await
    }

    async fn abort(&mut self) -> Result<()> {
        match tokio::fs::remove_dir_all(&self.staging).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&self.staging)(e)),
            _ => Ok(()),
        }
    }
}
