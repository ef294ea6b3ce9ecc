use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use super::{summarize, CallSummary, TimelineEvent, TimelineStore};
use crate::{check_id, DataError, Result};

/// The embedded backend: one JSON-lines file per call, `DIR/TENANT/CALL.jsonl`. Appends are
/// flushed per batch, so a crash loses at most the batch being written.
pub struct FileTimeline {
    dir: PathBuf,
    /// The last seq written per call file (read from the file the first time).
    last_seq: parking_lot::Mutex<std::collections::HashMap<PathBuf, u64>>,
}

impl FileTimeline {
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| DataError::Io { path: dir.display().to_string(), source })?;
        Ok(FileTimeline { dir, last_seq: Default::default() })
    }

    fn path(&self, tenant_id: &str, call_id: &str) -> Result<PathBuf> {
        check_id(tenant_id)?;
        check_id(call_id)?;
        Ok(self.dir.join(tenant_id).join(format!("{call_id}.jsonl")))
    }
}

async fn read_file(path: &Path) -> Result<Vec<TimelineEvent>> {
    let text = match tokio::fs::read_to_string(path).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(DataError::Io { path: path.display().to_string(), source }),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| DataError::Corrupt { path: path.display().to_string(), line: i + 1, message: e.to_string() })
        })
        .collect()
}

#[async_trait]
impl TimelineStore for FileTimeline {
    async fn append(&self, tenant_id: &str, call_id: &str, events: &[TimelineEvent]) -> Result<()> {
        let path = self.path(tenant_id, call_id)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|source| DataError::Io { path: parent.display().to_string(), source })?;
        }
        let known = self.last_seq.lock().get(&path).copied();
        let mut last = match known {
            Some(s) => s,
            None => read_file(&path).await?.iter().map(|e| e.seq).max().unwrap_or(0),
        };
        let mut buf = Vec::with_capacity(events.len() * 128);
        for e in events {
            if e.seq != 0 && e.seq <= last {
                continue; // already written (a replay)
            }
            last = last.max(e.seq);
            serde_json::to_writer(&mut buf, e).map_err(|e| DataError::Corrupt { path: path.display().to_string(), line: 0, message: e.to_string() })?;
            buf.push(b'\n');
        }
        let io = |source| DataError::Io { path: path.display().to_string(), source };
        let mut f = tokio::fs::OpenOptions::new().create(true).append(true).open(&path).await.map_err(io)?;
        f.write_all(&buf).await.map_err(io)?;
        f.flush().await.map_err(io)?;
        let mut cache = self.last_seq.lock();
        if cache.len() >= 10_000 {
            cache.clear(); // a cache: re-read from the files when needed
        }
        cache.insert(path, last);
        Ok(())
    }

    async fn timeline(&self, tenant_id: &str, call_id: &str) -> Result<Vec<TimelineEvent>> {
        read_file(&self.path(tenant_id, call_id)?).await
    }

    async fn calls(&self, tenant_id: &str, limit: usize) -> Result<Vec<CallSummary>> {
        check_id(tenant_id)?;
        let dir = self.dir.join(tenant_id);
        let io = |source| DataError::Io { path: dir.display().to_string(), source };
        let mut rd = match tokio::fs::read_dir(&dir).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let mut out = Vec::new();
        while let Some(entry) = rd.next_entry().await.map_err(io)? {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(id) = name.strip_suffix(".jsonl") {
                out.push(summarize(id, &read_file(&entry.path()).await?));
            }
        }
        out.sort_by(|a, b| b.started_unix_ms.cmp(&a.started_unix_ms).then_with(|| a.call_id.cmp(&b.call_id)));
        out.truncate(limit);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryTimeline;

    fn ev(at: u64, kind: &str) -> TimelineEvent {
        TimelineEvent::new(at, 1_000 + at, kind, serde_json::json!({"n": at}))
    }

    async fn exercise(store: &dyn TimelineStore) {
        store.append("t1", "call-1", &[ev(0, "call_started"), ev(5, "transcript")]).await.unwrap();
        store.append("t1", "call-1", &[ev(9, "call_ended")]).await.unwrap();
        store.append("t1", "call-2", &[ev(1, "call_started")]).await.unwrap();
        store.append("t2", "call-3", &[ev(1, "call_started")]).await.unwrap();
        let t = store.timeline("t1", "call-1").await.unwrap();
        assert_eq!(t.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["call_started", "transcript", "call_ended"]);
        assert_eq!(t[1].data["n"], 5);
        assert!(store.timeline("t1", "nobody").await.unwrap().is_empty());
        assert!(store.timeline("t2", "call-1").await.unwrap().is_empty(), "another tenant's call");
        assert!(store.calls("t3", 10).await.unwrap().is_empty());
        let calls = store.calls("t1", 10).await.unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].call_id, "call-2"); // started later
        assert!(calls[1].ended && !calls[0].ended);
        assert!(matches!(store.append("t1", "../etc/passwd", &[]).await, Err(DataError::InvalidId(_))));
        assert!(matches!(store.append("../t", "c", &[]).await, Err(DataError::InvalidId(_))));
    }

    #[tokio::test]
    async fn file_and_memory_backends_behave_alike() {
        exercise(&MemoryTimeline::default()).await;
        let dir = std::env::temp_dir().join(format!("cf-timeline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        exercise(&FileTimeline::open(&dir).unwrap()).await;
        // Reopening sees what was written.
        assert_eq!(FileTimeline::open(&dir).unwrap().timeline("t1", "call-1").await.unwrap().len(), 3);
        std::fs::write(dir.join("t1/bad.jsonl"), "{not json}\n").unwrap();
        assert!(matches!(FileTimeline::open(&dir).unwrap().timeline("t1", "bad").await, Err(DataError::Corrupt { line: 1, .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
