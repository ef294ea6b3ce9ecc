//! Uploads a call's WAV while the call is still writing it.
//!
//! The file only grows, except its first bytes: the WAV header's sizes are rewritten at every
//! flush and at the end. So part `i` (bytes `[i * part_size, (i + 1) * part_size)`) is uploaded
//! as soon as the file is longer than its end, for every `i >= 1`; part 0, which holds the
//! header, and the tail are uploaded from the finished file once the call has ended, and then
//! the upload is completed. A recording shorter than one part becomes a single PUT at the end.
//! Every step is retried with backoff; the local file is deleted only after a successful
//! upload, and only when asked to.

use super::{PartUpload, RecordingStore};
use crate::{DataError, Result};
use bytes::Bytes;
use std::future::Future;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Size of every part but the last (S3 wants at least 5 MiB).
    pub part_size: usize,
    /// How often the growing file's length is checked (the writer flushes every second).
    pub poll_interval: Duration,
    /// Tries per request before giving up (the local file is kept then).
    pub max_attempts: u32,
    /// First retry delay, doubled at each retry up to 30 s.
    pub backoff: Duration,
    /// Remove the local file after a successful upload.
    pub delete_local: bool,
    /// Told after every part, for monitoring (and tests).
    pub progress: Option<tokio::sync::watch::Sender<UploadProgress>>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            part_size: MIN_PART_SIZE,
            poll_interval: Duration::from_secs(1),
            max_attempts: 6,
            backoff: Duration::from_millis(500),
            delete_local: false,
            progress: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadProgress {
    pub parts_uploaded: usize,
    /// Parts uploaded before the call ended.
    pub parts_while_growing: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadReport {
    pub bytes: u64,
    /// 0 for a single PUT.
    pub parts: usize,
    pub parts_while_growing: usize,
    pub local_deleted: bool,
}

async fn retry<T, F, Fut>(opts: &UploadOptions, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut delay = opts.backoff;
    let mut attempt = 1;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            // the caller's mistakes are not retried
            Err(e @ (DataError::InvalidId(_) | DataError::Invalid { .. })) => return Err(e),
            Err(e) if attempt >= opts.max_attempts.max(1) => return Err(e),
            Err(e) => {
                tracing::warn!(attempt, error = %e, "recording upload step failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
                attempt += 1;
            }
        }
    }
}

async fn file_len(path: &Path) -> Result<u64> {
    match tokio::fs::metadata(path).await {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(source) => Err(DataError::Io { path: path.display().to_string(), source }),
    }
}

async fn read_at(path: &Path, offset: u64, len: usize) -> Result<Bytes> {
    let io = |source| DataError::Io { path: path.display().to_string(), source };
    let mut f = tokio::fs::File::open(path).await.map_err(io)?;
    f.seek(std::io::SeekFrom::Start(offset)).await.map_err(io)?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).await.map_err(io)?;
    Ok(Bytes::from(buf))
}

struct State<'a> {
    store: &'a dyn RecordingStore,
    tenant: &'a str,
    call_id: &'a str,
    path: &'a Path,
    opts: &'a UploadOptions,
    upload: Option<Box<dyn PartUpload>>,
    progress: UploadProgress,
}

impl State<'_> {
    async fn part(&mut self, idx: usize, len: usize, growing: bool) -> Result<()> {
        if self.upload.is_none() {
            let (store, tenant, call_id) = (self.store, self.tenant, self.call_id);
            self.upload = Some(retry(self.opts, || store.begin_upload(tenant, call_id)).await?);
        }
        let data = read_at(self.path, (idx * self.opts.part_size) as u64, len).await?;
        let up = self.upload.as_mut().ok_or_else(|| DataError::backend("s3", "upload not started"))?;
        let mut delay = self.opts.backoff;
        for attempt in 1.. {
            match up.put_part(idx, data.clone()).await {
                Ok(()) => break,
                Err(e) if attempt >= self.opts.max_attempts.max(1) || matches!(e, DataError::Invalid { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(attempt, part = idx, error = %e, "recording part upload failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
        self.progress.parts_uploaded += 1;
        self.progress.parts_while_growing += usize::from(growing);
        if let Some(tx) = &self.opts.progress {
            tx.send_replace(self.progress);
        }
        Ok(())
    }

    async fn finish(&mut self, next: usize) -> Result<UploadReport> {
        let p = self.opts.part_size;
        let len = file_len(self.path).await?;
        let full = (len / p as u64) as usize;
        if next > 1 && (next * p) as u64 > len {
            return Err(DataError::invalid("recording file", "it shrank below parts already uploaded"));
        }
        if self.upload.is_none() && len <= p as u64 {
            let data = read_at(self.path, 0, len as usize).await?;
            let (store, tenant, call_id) = (self.store, self.tenant, self.call_id);
            retry(self.opts, || store.put(tenant, call_id, data.clone())).await?;
            return Ok(UploadReport { bytes: len, parts: 0, parts_while_growing: 0, local_deleted: false });
        }
        for idx in next.max(1)..full {
            self.part(idx, p, false).await?;
        }
        let tail = (len - (full * p) as u64) as usize;
        let n = if tail > 0 { full + 1 } else { full };
        if tail > 0 {
            self.part(full, tail, false).await?;
        }
        self.part(0, p, false).await?; // the header, final now
        let up = self.upload.as_mut().ok_or_else(|| DataError::backend("s3", "upload not started"))?;
        let mut delay = self.opts.backoff;
        for attempt in 1.. {
            match up.complete(n).await {
                Ok(()) => break,
                Err(e) if attempt >= self.opts.max_attempts.max(1) || matches!(e, DataError::Invalid { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "completing the recording upload failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
        Ok(UploadReport { bytes: len, parts: n, parts_while_growing: self.progress.parts_while_growing, local_deleted: false })
    }
}

/// Uploads `local_path` to `tenants/<tenant>/recordings/<call_id>.wav` while it grows; `done`
/// resolves when the call has ended and the file is final. With `done` already resolved it
/// uploads a finished file (e.g. to retry an upload that failed earlier). On failure the local
/// file is kept and any multipart upload is aborted. From a `watch::Receiver<bool>` `ended`:
/// `async move { let _ = ended.wait_for(|e| *e).await; }`.
pub async fn upload_growing_file(
    store: &dyn RecordingStore,
    tenant: &str,
    call_id: &str,
    local_path: &Path,
    done: impl Future<Output = ()> + Send,
    opts: &UploadOptions,
) -> Result<UploadReport> {
    super::recording_key(tenant, call_id)?;
    if opts.part_size < MIN_PART_SIZE {
        return Err(DataError::invalid("part size", format!("at least {MIN_PART_SIZE} bytes")));
    }
    let mut st = State { store, tenant, call_id, path: local_path, opts, upload: None, progress: UploadProgress::default() };
    let result = run(&mut st, done).await;
    match result {
        Ok(mut report) => {
            if opts.delete_local {
                tokio::fs::remove_file(local_path)
                    .await
                    .map_err(|source| DataError::Io { path: local_path.display().to_string(), source })?;
                report.local_deleted = true;
            }
            Ok(report)
        }
        Err(e) => {
            if let Some(up) = st.upload.as_mut() {
                let _ = up.abort().await; // best effort: the local file is still there
            }
            Err(e)
        }
    }
}

async fn run(st: &mut State<'_>, done: impl Future<Output = ()> + Send) -> Result<UploadReport> {
    let p = st.opts.part_size as u64;
    let mut next = 1usize; // the next part to upload while growing; part 0 waits for the end
    let mut done = std::pin::pin!(done);
    loop {
        let ended = tokio::select! {
            _ = &mut done => true,
            _ = tokio::time::sleep(st.opts.poll_interval) => false,
        };
        if ended {
            return st.finish(next).await;
        }
        // part `next` is complete once the file is longer than its end; the part that could be
        // the tail is kept for the end only when the file is exactly its end
        while file_len(st.path).await? > (next as u64 + 1) * p {
            st.part(next, p as usize, true).await?;
            next += 1;
        }
    }
}
