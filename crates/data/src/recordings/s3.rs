//! S3 / MinIO through `object_store` (path-style requests, SigV4). Multipart uploads use its
//! low-level `MultipartStore`, which lets part 0 (the WAV header) be uploaded last.

use super::{PartUpload, RecordingInfo, RecordingStore, check_expiry, missing_part, recording_key};
use crate::{DataError, Result};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::{Method, Signer};
use object_store::{MultipartId, ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const STORE: &str = "s3";

/// Where the bucket is. `Debug` never shows the secret key.
#[derive(Clone)]
pub struct S3Config {
    /// e.g. `http://127.0.0.1:8014` (MinIO, s3s) or `https://s3.eu-west-1.amazonaws.com`.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<hidden>")
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct S3Recordings {
    store: Arc<AmazonS3>,
}

fn err(e: object_store::Error) -> DataError {
    match e {
        object_store::Error::NotFound { path, .. } => DataError::not_found("recording", path),
        e => DataError::backend(STORE, e),
    }
}

impl S3Recordings {
    pub fn new(cfg: &S3Config) -> Result<S3Recordings> {
        let store = AmazonS3Builder::new()
            .with_endpoint(cfg.endpoint.trim_end_matches('/'))
            .with_region(&cfg.region)
            .with_bucket_name(&cfg.bucket)
            .with_access_key_id(&cfg.access_key)
            .with_secret_access_key(&cfg.secret_key)
            .with_allow_http(cfg.endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false)
            .build()
            .map_err(|e| DataError::invalid("s3 config", e.to_string()))?;
        Ok(S3Recordings { store: Arc::new(store) })
    }

    fn path(tenant: &str, call_id: &str) -> Result<Path> {
        Ok(Path::from(recording_key(tenant, call_id)?))
    }
}

fn prefix(tenant: &str) -> Result<Path> {
    crate::check_id(tenant)?;
    Ok(Path::from(format!("tenants/{tenant}/recordings")))
}

#[async_trait::async_trait]
impl RecordingStore for S3Recordings {
    async fn put(&self, tenant: &str, call_id: &str, data: Bytes) -> Result<()> {
        self.store.put(&Self::path(tenant, call_id)?, PutPayload::from_bytes(data)).await.map_err(err)?;
        Ok(())
    }

    async fn get(&self, tenant: &str, call_id: &str) -> Result<Bytes> {
        let r = self.store.get(&Self::path(tenant, call_id)?).await.map_err(err)?;
        r.bytes().await.map_err(err)
    }

    async fn list(&self, tenant: &str) -> Result<Vec<RecordingInfo>> {
        let metas: Vec<_> = self.store.list(Some(&prefix(tenant)?)).try_collect().await.map_err(err)?;
        let mut out: Vec<RecordingInfo> = metas
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.strip_suffix(".wav")?.to_string();
                let ms = u64::try_from(m.last_modified.timestamp_millis()).unwrap_or(0);
                Some(RecordingInfo { call_id: name, size: m.size, last_modified: UNIX_EPOCH + Duration::from_millis(ms) })
            })
            .collect();
        out.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        Ok(out)
    }

    async fn delete(&self, tenant: &str, call_id: &str) -> Result<()> {
        match self.store.delete(&Self::path(tenant, call_id)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err(e)),
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
        let url = self.store.signed_url(Method::GET, &Self::path(tenant, call_id)?, expires).await.map_err(err)?;
        Ok(url.to_string())
    }

    async fn begin_upload(&self, tenant: &str, call_id: &str) -> Result<Box<dyn PartUpload>> {
        let path = Self::path(tenant, call_id)?;
        let id = self.store.create_multipart(&path).await.map_err(err)?;
        Ok(Box::new(S3Upload { store: self.store.clone(), path, id, parts: Vec::new() }))
    }
}

struct S3Upload {
    store: Arc<AmazonS3>,
    path: Path,
    id: MultipartId,
    parts: Vec<Option<PartId>>,
}

#[async_trait::async_trait]
impl PartUpload for S3Upload {
    async fn put_part(&mut self, idx: usize, data: Bytes) -> Result<()> {
        if idx >= 10_000 {
            return Err(DataError::invalid("multipart upload", "S3 allows at most 10,000 parts"));
        }
        let part = self.store.put_part(&self.path, &self.id, idx, PutPayload::from_bytes(data)).await.map_err(err)?;
        if self.parts.len() <= idx {
            self.parts.resize(idx + 1, None);
        }
        self.parts[idx] = Some(part);
        Ok(())
    }

    async fn complete(&mut self, n: usize) -> Result<()> {
        let parts = (0..n).map(|i| self.parts.get(i).cloned().flatten().ok_or_else(|| missing_part(i))).collect::<Result<Vec<_>>>()?;
        self.store.complete_multipart(&self.path, &self.id, parts).await.map_err(err)?;
        Ok(())
    }

    async fn abort(&mut self) -> Result<()> {
        self.store.abort_multipart(&self.path, &self.id).await.map_err(err)
    }
}
