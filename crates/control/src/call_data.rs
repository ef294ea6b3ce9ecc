//! What a call leaves in the data plane, off its audio path: its active-call lease and
//! placement in the hot state, its recording (written straight into the embedded store, or
//! spooled locally and uploaded to S3 while the call runs), and its usage in the ledger.

use std::path::PathBuf;
use std::time::Duration;

use callfunnel_data::control::{Metric, UsageRecord};
use callfunnel_data::recordings::{upload_growing_file, UploadOptions};
use callfunnel_data::TimelineEvent;
use callfunnel_media::engine::CallUsage;
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
    /// Work a call leaves behind (recording uploads, ledger writes): a draining node waits
    /// for it before it exits.
    pub background: tokio_util::task::TaskTracker,
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
        self.background.spawn(async move {
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

impl CallData {
    /// Writes the call's usage to the ledger, once: each line's idempotency key is derived
    /// from the call, so a retry (or a replay) never bills twice. Off the call's path.
    pub fn bill(&self, tenant_id: &str, call_id: &str, usage: &CallUsage) {
        let records = usage_records(tenant_id, call_id, usage, unix_ms() as i64);
        let control = self.stores.control.clone();
        let call = call_id.to_string();
        self.background.spawn(async move {
            for r in records {
                let mut wait = Duration::from_millis(200);
                for attempt in 1..=5 {
                    match control.record_usage(r.clone()).await {
                        Ok(_) => break,
                        Err(e) if attempt == 5 => tracing::error!(call_id = %call, metric = %r.metric, error = %e, "usage not recorded"),
                        Err(_) => {
                            tokio::time::sleep(wait).await;
                            wait *= 2;
                        }
                    }
                }
            }
        });
    }
}

/// The ledger lines of one call. Cache writes are billed as input tokens; cache reads apart.
pub fn usage_records(tenant_id: &str, call_id: &str, u: &CallUsage, at_unix_ms: i64) -> Vec<UsageRecord> {
    let line = |metric: Metric, provider: &str, detail: &str, quantity: u64| UsageRecord {
        tenant_id: tenant_id.to_string(),
        call_id: call_id.to_string(),
        idempotency_key: format!("{call_id}:{}:{provider}{detail}", metric.as_str()),
        metric,
        provider: provider.to_string(),
        quantity: quantity as i64,
        at_unix_ms,
    };
    let mut out = vec![line(Metric::CallMs, "carrier", "", u.call_ms)];
    if u.stt_audio_ms > 0 {
        out.push(line(Metric::SttMs, &u.stt_provider, "", u.stt_audio_ms));
    }
    if u.tts_characters > 0 {
        out.push(line(Metric::TtsCharacters, &u.tts_provider, "", u.tts_characters));
    }
    for l in &u.llm {
        let model = format!(":{}", l.model);
        let inputs = l.input_tokens + l.cache_creation_input_tokens;
        for (metric, q) in [(Metric::LlmInputTokens, inputs), (Metric::LlmOutputTokens, l.output_tokens), (Metric::LlmCachedTokens, l.cache_read_input_tokens)] {
            if q > 0 {
                out.push(line(metric, &l.provider, &model, q));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use callfunnel_ai::ProviderUsage;

    #[test]
    fn one_line_per_metric_and_provider_with_stable_keys() {
        let u = CallUsage {
            call_ms: 61_000,
            stt_provider: "deepgram".into(),
            stt_audio_ms: 20_000,
            tts_provider: "cartesia".into(),
            tts_characters: 300,
            llm: vec![ProviderUsage { provider: "anthropic".into(), model: "claude-haiku-4-5".into(), input_tokens: 900, output_tokens: 80, cache_read_input_tokens: 4000, cache_creation_input_tokens: 100 }],
        };
        let r = usage_records("acme", "c1", &u, 5);
        let got: Vec<(String, &str, i64)> = r.iter().map(|x| (x.idempotency_key.clone(), x.provider.as_str(), x.quantity)).collect();
        assert_eq!(got, vec![
            ("c1:call_ms:carrier".to_string(), "carrier", 61_000),
            ("c1:stt_ms:deepgram".to_string(), "deepgram", 20_000),
            ("c1:tts_characters:cartesia".to_string(), "cartesia", 300),
            ("c1:llm_input_tokens:anthropic:claude-haiku-4-5".to_string(), "anthropic", 1000),
            ("c1:llm_output_tokens:anthropic:claude-haiku-4-5".to_string(), "anthropic", 80),
            ("c1:llm_cached_tokens:anthropic:claude-haiku-4-5".to_string(), "anthropic", 4000),
        ]);
        assert_eq!(usage_records("acme", "c1", &u, 9)[0].idempotency_key, r[0].idempotency_key, "a replay has the same keys");
    }
}
