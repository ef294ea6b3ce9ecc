//! Recordings: dual-channel call audio uploaded while the call runs. S3/MinIO in production
//! ([`S3Recordings`]), local files embedded ([`LocalRecordings`]).
//!
//! Key layout: `tenants/<tenant_id>/recordings/<call_id>.wav`. [`upload_growing_file`] uploads
//! a WAV that the call is still writing, part by part, and the header part last.

mod local;
mod s3;
mod upload;

pub use local::LocalRecordings;
pub use s3::{S3Config, S3Recordings};
pub use upload::{UploadOptions, UploadProgress, UploadReport, upload_growing_file};

use crate::{DataError, Result};
use bytes::Bytes;
use std::time::{Duration, SystemTime};

/// One stored recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingInfo {
    pub call_id: String,
    pub size: u64,
    pub last_modified: SystemTime,
}

#[async_trait::async_trait]
pub trait RecordingStore: Send + Sync {
    /// Stores a whole recording in one request (replacing any previous one).
    async fn put(&self, tenant: &str, call_id: &str, data: Bytes) -> Result<()>;
    /// The recording's bytes; `NotFound` when there is none for this tenant.
    async fn get(&self, tenant: &str, call_id: &str) -> Result<Bytes>;
    /// The tenant's recordings, by call id.
    async fn list(&self, tenant: &str) -> Result<Vec<RecordingInfo>>;
    /// Removes a recording; removing a missing one is not an error.
    async fn delete(&self, tenant: &str, call_id: &str) -> Result<()>;
    /// Retention sweep: deletes the tenant's recordings last written before `cutoff` and returns
    /// their call ids.
    async fn delete_older_than(&self, tenant: &str, cutoff: SystemTime) -> Result<Vec<String>>;
    /// A URL that downloads the recording without credentials until `expires` has passed.
    async fn presign_get(&self, tenant: &str, call_id: &str, expires: Duration) -> Result<String>;
    /// Starts a multipart upload of the recording; parts may arrive in any order.
    async fn begin_upload(&self, tenant: &str, call_id: &str) -> Result<Box<dyn PartUpload>>;
}

/// An open multipart upload. Part `i` holds bytes `[i * part_size, (i + 1) * part_size)` of the
/// object; every part but the last must be at least 5 MiB on S3.
#[async_trait::async_trait]
pub trait PartUpload: Send {
    /// Uploads (or re-uploads, after a failure) part `idx`.
    async fn put_part(&mut self, idx: usize, data: Bytes) -> Result<()>;
    /// Joins parts `0..n` into the object; every one of them must have been uploaded.
    async fn complete(&mut self, n: usize) -> Result<()>;
    /// Drops the upload and its parts.
    async fn abort(&mut self) -> Result<()>;
}

/// `tenants/<tenant>/recordings/<call>.wav`, after checking both ids.
pub fn recording_key(tenant: &str, call_id: &str) -> Result<String> {
    crate::check_id(tenant)?;
    crate::check_id(call_id)?;
    Ok(format!("tenants/{tenant}/recordings/{call_id}.wav"))
}

/// Presigned links last at most 7 days (the SigV4 limit).
pub(crate) fn check_expiry(expires: Duration) -> Result<()> {
    if expires.is_zero() || expires > Duration::from_secs(7 * 24 * 3600) {
        return Err(DataError::invalid("expiry", "use between 1 s and 7 days"));
    }
    Ok(())
}

pub(crate) fn missing_part(idx: usize) -> DataError {
    DataError::invalid("multipart upload", format!("part {idx} was never uploaded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout_and_refuse_bad_ids() {
        assert_eq!(recording_key("acme", "call-1").ok().as_deref(), Some("tenants/acme/recordings/call-1.wav"));
        assert!(matches!(recording_key("../acme", "c"), Err(DataError::InvalidId(_))));
        assert!(matches!(recording_key("acme", "c/../../x"), Err(DataError::InvalidId(_))));
        assert!(check_expiry(Duration::from_secs(8 * 24 * 3600)).is_err());
        assert!(check_expiry(Duration::ZERO).is_err());
    }
}
