//! What a call leaves in the data plane, off its audio path: its active-call lease and
//! placement in the hot state, its recording (written straight into the embedded store, or
//! spooled locally and uploaded to S3 while the call runs), and its usage in the ledger.

use std::path::PathBuf;
use std::time::Duration;

use callfunnel_data::recordings::{upload_growing_file, UploadOptions};
use callfunnel_data::TimelineEvent;
use serde_json::json;
use tokio::sync::oneshot;

use crate::stores::Stores;

/// The hot state is asked with this deadline; a slow or absent Redis never holds a call up.
const HOT_DEADLINE: Duration = Duration::from_millis(300);

pub struct CallData {
    pub stores: Stores,
    /// Where recordings wait for their upload when they go to S3.
    pub spool: PathBuf,
    pub keep_local: bool,
}

/// Where a call's tap writes, and (S3) the signal that ends its upload.
pub struct RecordingPlan {
    pub path: PathBuf,
    pub ended: Option<oneshot::Sender<()>>,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl CallData {
    /// The call holds a lease (the active-call counters, the autoscaling signal) and is placed
    /// on this node. Plan limits are enforced at admission by the control plane, not here.
    pub async fn started(&self, tenant_id: &str, call_id: &str) {
        let hot = &self.stores.hot;
        let node = &self.stores.node_id;
        let r = tokio::time::timeout(HOT_DEADLINE, async {
            hot.acquire_call(tenant_id, call_id, node, None).await?;
            hot.place_call(call_id, node, Duration::from_secs(4 * 3600)).await
        })
        .await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(call_id, error = %e, "hot state: cannot register the call"),
            Err(_) => tracing::error!(call_id, "hot state: no answer within 300 ms; the call goes on unregistered"),
        }
    }

    pub async fn ended(&self, call_id: &str) {
        let hot = &self.stores.hot;
        let r = tokio::time::timeout(HOT_DEADLINE, async {
            hot.release_call(call_id).await?;
            hot.forget_call(call_id).await
        })
        .await;
        if !matches!(r, Ok(Ok(_))) {
            tracing::warn!(call_id, "hot state: cannot release the call's lease; it expires without heartbeats");
        }
    }

    /// Embedded: the tap writes into the recordings store itself. S3: the tap writes a local
    /// spool file that is uploaded part by part while it grows, finished when `ended` fires.
    pub fn recording(&self, tenant_id: &str, call_id: &str) -> Option<RecordingPlan> {
        if let Some(local) = &self.stores.local_recordings {
            let path = local.path_of(tenant_id, call_id).ok()?;
            return mkdir(path).map(|path| RecordingPlan { path, ended: None });
        }
        let path = mkdir(self.spool.join(tenant_id).join(format!("{call_id}.wav")))?;
        let (tx, rx) = oneshot::channel::<()>();
        let (store, timeline) = (self.stores.recordings.clone(), self.stores.timeline.clone());
        let (tenant, call, file) = (tenant_id.to_string(), call_id.to_string(), path.clone());
        let opts = UploadOptions { delete_local: !self.keep_local, ..UploadOptions::default() };
        tokio::spawn(async move {
            let done = async move {
                let _ = rx.await;
            };
            let event = match upload_growing_file(store.as_ref(), &tenant, &call, &file, done, &opts).await {
                Ok(r) => json!({"bytes": r.bytes, "key": callfunnel_data::recordings::recording_key(&tenant, &call).unwrap_or_default(), "store": "s3"}),
                Err(e) => {
                    tracing::error!(call_id = %call, error = %e, file = %file.display(), "recording upload failed; the local file is kept");
                    json!({"error": e.to_string(), "kept": file.display().to_string()})
                }
            };
            let kind = if event.get("error").is_some() { "recording_upload_failed" } else { "recording_uploaded" };
            if let Err(e) = timeline.append(&tenant, &call, &[TimelineEvent::new(0, unix_ms(), kind, event)]).await {
                tracing::error!(call_id = %call, error = %e, "timeline write failed");
            }
        });
        Some(RecordingPlan { path, ended: Some(tx) })
    }

}

fn mkdir(path: PathBuf) -> Option<PathBuf> {
    let dir = path.parent()?;
    match std::fs::create_dir_all(dir) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "cannot create the recordings directory");
            None
        }
    }
}

