//! The durable write buffer in front of a timeline store. `append` returns once the events
//! are queued (never waiting on the backend); a writer task appends them to a log on local
//! disk (fsync per batch), and a shipper task sends the log to the backend in order, retrying
//! with capped backoff while it is down, then moves a checkpoint. On open, whatever is after
//! the checkpoint is shipped again; the backend's per-call seq uniqueness makes that
//! exactly once. The shipper reads from disk, so an outage costs disk, not memory.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};

use super::wal::{self, io, Checkpoint, Pos, Record};
use super::{CallSummary, TimelineEvent, TimelineStore};
use crate::{check_id, Result};

#[derive(Debug, Clone)]
pub struct BufferConfig {
    /// Batches queued between `append` and the disk writer (appends wait when it is full).
    pub queue: usize,
    /// A new log segment starts past this size; fully shipped segments are deleted.
    pub segment_bytes: u64,
    /// Events shipped per backend request at most.
    pub ship_batch: usize,
    /// Calls shipped at once (their requests run concurrently; each call's stay in order).
    pub parallel: usize,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig { queue: 4096, segment_bytes: 64 << 20, ship_batch: 5000, parallel: 16, backoff_min: Duration::from_millis(50), backoff_max: Duration::from_secs(5) }
    }
}

enum Msg {
    Batch(Vec<Record>),
    /// Answer with the log position once everything queued before is on disk.
    Mark(oneshot::Sender<Pos>),
}

pub struct BufferedTimeline {
    inner: Arc<dyn TimelineStore>,
    dir: PathBuf,
    tx: mpsc::Sender<Msg>,
    last_seq: Mutex<u64>,
    shipped: watch::Receiver<Pos>,
    failures: Arc<Mutex<u64>>,
    /// Held while the buffer is open.
    _lock: std::fs::File,
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

impl BufferedTimeline {
    pub async fn open(inner: Arc<dyn TimelineStore>, dir: impl Into<PathBuf>, cfg: BufferConfig) -> Result<Arc<Self>> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        // One process per log: two writing one directory would ship each other's records
        // from the wrong places. The lock goes with the process (also when it crashes).
        let lock_path = dir.join("lock");
        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io(&lock_path))?;
        if let Err(e) = lock.try_lock() {
            return Err(crate::DataError::invalid("timeline buffer", format!("{} is in use by another callfunnel process ({e}): give each process its own [data] dir", dir.display())));
        }
        let cp = wal::read_checkpoint(&dir)?;
        let segs = wal::segments(&dir)?;
        // Seqs are microsecond clock readings made strictly increasing: unique per call across
        // restarts (also above anything already in the log).
        let mut max_seq = cp.max_seq;
        for &n in segs.iter().filter(|&&n| n >= cp.pos.segment) {
            let from = if n == cp.pos.segment { cp.pos.offset } else { 0 };
            for (r, _) in wal::read_range(&dir, n, from, None, usize::MAX)? {
                max_seq = max_seq.max(r.event.seq);
            }
        }
        // Writing goes on in a fresh segment: a torn tail of the last one is never appended to.
        let seg = segs.last().copied().unwrap_or(0).max(cp.pos.segment) + 1;
        let (tx, rx) = mpsc::channel(cfg.queue);
        let (written_tx, written_rx) = watch::channel(Pos { segment: seg, offset: 0 });
        let start = if segs.is_empty() { Pos { segment: seg, offset: 0 } } else { cp.pos };
        let (shipped_tx, shipped_rx) = watch::channel(start);
        let failures = Arc::new(Mutex::new(0));
        let writer = Writer { dir: dir.clone(), seg, file: None, size: 0, limit: cfg.segment_bytes, written: written_tx };
        tokio::task::spawn_blocking(move || writer.run(rx));
        let shipper = Shipper { dir: dir.clone(), inner: inner.clone(), cfg, pos: start, written: written_rx, shipped: shipped_tx, max_seq: Arc::new(Mutex::new(max_seq)), failures: failures.clone() };
        tokio::spawn(shipper.run());
        Ok(Arc::new(BufferedTimeline { inner, dir, tx, last_seq: Mutex::new(max_seq), shipped: shipped_rx, failures, _lock: lock }))
    }

    /// Waits until everything appended before this call is in the log on disk; returns the
    /// log position it reaches.
    async fn on_disk(&self) -> Result<Pos> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Mark(tx)).await.is_err() {
            return Err(crate::DataError::backend("timeline buffer", "writer stopped"));
        }
        rx.await.map_err(|_| crate::DataError::backend("timeline buffer", "writer stopped"))
    }

    /// Waits until everything appended before this call has reached the backend.
    pub async fn flush(&self) -> Result<()> {
        let target = self.on_disk().await?;
        let mut shipped = self.shipped.clone();
        shipped.wait_for(|p| *p >= target).await.map_err(|_| crate::DataError::backend("timeline buffer", "shipper stopped"))?;
        Ok(())
    }

    /// Failed backend requests so far (each is retried).
    pub fn ship_failures(&self) -> u64 {
        *self.failures.lock()
    }

    /// Events in the log not yet in the backend, for `tenant_id`'s `call_id` (or all: None).
    fn unshipped(&self, call: Option<(&str, &str)>) -> Result<Vec<Record>> {
        let from = *self.shipped.borrow();
        let mut out = Vec::new();
        for n in wal::segments(&self.dir)?.into_iter().filter(|&n| n >= from.segment) {
            let start = if n == from.segment { from.offset } else { 0 };
            for (r, _) in wal::read_range(&self.dir, n, start, None, usize::MAX)? {
                if call.is_none_or(|(t, c)| r.tenant_id == t && r.call_id == c) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// Events appended but not yet in the backend.
    pub fn pending(&self) -> Result<usize> {
        Ok(self.unshipped(None)?.len())
    }
}

#[async_trait]
impl TimelineStore for BufferedTimeline {
    async fn append(&self, tenant_id: &str, call_id: &str, events: &[TimelineEvent]) -> Result<()> {
        check_id(tenant_id)?;
        check_id(call_id)?;
        if events.is_empty() {
            return Ok(());
        }
        let records = {
            let mut last = self.last_seq.lock();
            events
                .iter()
                .map(|e| {
                    *last = (*last + 1).max(now_us());
                    Record { tenant_id: tenant_id.to_string(), call_id: call_id.to_string(), event: TimelineEvent { seq: *last, ..e.clone() } }
                })
                .collect()
        };
        // try_send first: no await point (and no scheduler yield) while the queue has room.
        let closed = || crate::DataError::backend("timeline buffer", "writer stopped");
        match self.tx.try_send(Msg::Batch(records)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(m)) => self.tx.send(m).await.map_err(|_| closed()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(closed()),
        }
    }

    /// Reads its own writes: what was appended before is on disk first (in the log, or shipped
    /// to the backend). The log is read before the backend, so an event shipped in between is
    /// found in the backend rather than missed by both.
    async fn timeline(&self, tenant_id: &str, call_id: &str) -> Result<Vec<TimelineEvent>> {
        self.on_disk().await?;
        let pending = self.unshipped(Some((tenant_id, call_id)))?;
        let mut events = self.inner.timeline(tenant_id, call_id).await?;
        events.extend(pending.into_iter().map(|r| r.event));
        events.sort_by_key(|e| e.seq);
        events.dedup_by_key(|e| e.seq);
        Ok(events)
    }

    async fn calls(&self, tenant_id: &str, limit: usize) -> Result<Vec<CallSummary>> {
        self.inner.calls(tenant_id, limit).await
    }
}

struct Writer {
    dir: PathBuf,
    seg: u64,
    file: Option<std::fs::File>,
    size: u64,
    limit: u64,
    written: watch::Sender<Pos>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        while let Some(first) = rx.blocking_recv() {
            let mut marks = Vec::new();
            let mut buf = Vec::new();
            let mut take = |m: Msg, buf: &mut Vec<u8>| match m {
                Msg::Batch(rs) => {
                    for r in rs {
                        if serde_json::to_writer(&mut *buf, &r).is_ok() {
                            buf.push(b'\n');
                        }
                    }
                }
                Msg::Mark(tx) => marks.push(tx),
            };
            take(first, &mut buf);
            while buf.len() < (1 << 20) {
                match rx.try_recv() {
                    Ok(m) => take(m, &mut buf),
                    Err(_) => break,
                }
            }
            // A disk error is retried: nothing is acknowledged as written until it is.
            let mut wait = Duration::from_millis(50);
            while let Err(e) = self.write(&buf) {
                tracing::error!(error = %e, "timeline buffer: cannot write the log; retrying");
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            let pos = Pos { segment: self.seg, offset: self.size };
            let _ = self.written.send(pos);
            for m in marks {
                let _ = m.send(pos);
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        if self.file.is_some() && self.size >= self.limit {
            self.file = None;
            self.seg += 1;
            self.size = 0;
        }
        if self.file.is_none() {
            let path = wal::segment_path(&self.dir, self.seg);
            let f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
        }
        let f = self.file.as_mut().expect("segment open");
        f.write_all(buf)?;
        f.sync_data()?;
        self.size += buf.len() as u64;
        Ok(())
    }
}

struct Shipper {
    dir: PathBuf,
    inner: Arc<dyn TimelineStore>,
    cfg: BufferConfig,
    pos: Pos,
    written: watch::Receiver<Pos>,
    shipped: watch::Sender<Pos>,
    max_seq: Arc<Mutex<u64>>,
    failures: Arc<Mutex<u64>>,
}

impl Shipper {
    async fn run(mut self) {
        loop {
            let end = *self.written.borrow_and_update();
            let batch = if self.pos.segment < end.segment {
                wal::read_range(&self.dir, self.pos.segment, self.pos.offset, None, self.cfg.ship_batch)
            } else {
                wal::read_range(&self.dir, self.pos.segment, self.pos.offset, Some(end.offset), self.cfg.ship_batch)
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "timeline buffer: cannot read the log");
                    tokio::time::sleep(self.cfg.backoff_max).await;
                    continue;
                }
            };
            if batch.is_empty() {
                if self.pos.segment < end.segment {
                    // this segment is done: on to the next, and drop it
                    let done = self.pos.segment;
                    self.pos = Pos { segment: done + 1, offset: 0 };
                    self.checkpoint();
                    let _ = std::fs::remove_file(wal::segment_path(&self.dir, done));
                    continue;
                }
                if self.written.changed().await.is_err() {
                    return;
                }
                continue;
            }
            if !self.ship(batch).await {
                return;
            }
        }
    }

    /// Ships records in order, one request per run of the same call; retries until done.
    /// Ships a batch read from the log: one request per call (its events in log order), up to
    /// `parallel` calls at once; each retried until it lands. The checkpoint moves past the
    /// batch only when every call in it is done, so nothing is skipped and order per call holds.
    /// False when the buffer was dropped while the backend was down (the rest stays in the log).
    async fn ship(&mut self, batch: Vec<(Record, u64)>) -> bool {
        use futures::StreamExt;
        let end = batch.last().map_or(self.pos.offset, |(_, off)| *off);
        let mut groups: Vec<((String, String), Vec<TimelineEvent>)> = Vec::new();
        let mut index: std::collections::HashMap<(String, String), usize> = std::collections::HashMap::new();
        for (r, _) in batch {
            let key = (r.tenant_id, r.call_id);
            let i = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(r.event);
        }
        let max = groups.iter().flat_map(|(_, es)| es.iter().map(|e| e.seq)).max().unwrap_or(0);
        let results: Vec<bool> = futures::stream::iter(groups.into_iter().map(|((t, c), events)| {
            let (inner, written, failures, cfg) = (self.inner.clone(), self.written.clone(), self.failures.clone(), self.cfg.clone());
            async move { ship_call(inner, written, failures, cfg, t, c, events).await }
        }))
        .buffer_unordered(self.cfg.parallel.max(1))
        .collect()
        .await;
        if results.iter().any(|ok| !ok) {
            return false;
        }
        let mut m = self.max_seq.lock();
        *m = (*m).max(max);
        drop(m);
        self.pos.offset = end;
        self.checkpoint();
        true
    }

    fn checkpoint(&mut self) {
        let cp = Checkpoint { pos: self.pos, max_seq: *self.max_seq.lock() };
        if let Err(e) = wal::write_checkpoint(&self.dir, &cp) {
            tracing::error!(error = %e, "timeline buffer: cannot write the checkpoint (events may be shipped again, deduplicated)");
        }
        let _ = self.shipped.send(self.pos);
    }
}

/// Ships one call's events, retrying until they land (or the buffer is dropped: false).
async fn ship_call(
    inner: Arc<dyn TimelineStore>,
    written: watch::Receiver<Pos>,
    failures: Arc<Mutex<u64>>,
    cfg: BufferConfig,
    t: String,
    c: String,
    events: Vec<TimelineEvent>,
) -> bool {
    let mut wait = cfg.backoff_min;
    loop {
        match inner.append(&t, &c, &events).await {
            Ok(()) => return true,
            Err(crate::DataError::InvalidId(_)) => {
                tracing::error!(tenant_id = %t, call_id = %c, "timeline buffer: invalid id in the log; skipped");
                return true;
            }
            Err(e) => {
                if written.has_changed().is_err() {
                    return false;
                }
                *failures.lock() += 1;
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "timeline backend unavailable; events stay in the log");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(cfg.backoff_max);
            }
        }
    }
}
