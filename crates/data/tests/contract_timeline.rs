//! One contract for every timeline backend: MongoDB (mongoeco, started by
//! `scripts/services.sh up mongo`), the JSON-lines files, memory, and the durable write buffer
//! in front of MongoDB and of the files.

mod common;

use std::sync::Arc;

use callfunnel_data::timeline::{BufferConfig, BufferedTimeline, MongoTimeline, Retention};
use callfunnel_data::{DataError, FileTimeline, MemoryTimeline, TimelineEvent, TimelineStore};
use common::{service_env, unique};

fn ev(at: u64, kind: &str) -> TimelineEvent {
    TimelineEvent::new(at, 1_000_000 + at, kind, serde_json::json!({"n": at, "text": "héllo", "nested": {"ok": true, "x": [1, 2.5]}}))
}

fn kinds(t: &[TimelineEvent]) -> Vec<&str> {
    t.iter().map(|e| e.kind.as_str()).collect()
}

async fn mongo(retention: Retention) -> MongoTimeline {
    let uri = format!("{}/?serverSelectionTimeoutMS=5000", service_env("CF_TEST_MONGO_URI"));
    MongoTimeline::connect(&uri, &unique("tl").replace('-', "_"), retention).await.expect("mongo")
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(unique(name));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Order, tenant isolation, the call list, bad ids — what every backend must do.
async fn behaves(store: &dyn TimelineStore, flush: impl AsyncFn()) {
    store.append("t1", "call-1", &[ev(0, "call_started"), ev(5, "transcript")]).await.unwrap();
    store.append("t1", "call-1", &[ev(9, "call_ended")]).await.unwrap();
    store.append("t1", "call-2", &[ev(1, "call_started")]).await.unwrap();
    store.append("t2", "call-3", &[ev(2, "call_started")]).await.unwrap();
    flush().await;
    let t = store.timeline("t1", "call-1").await.unwrap();
    assert_eq!(kinds(&t), ["call_started", "transcript", "call_ended"]);
    assert_eq!(t[1].data, ev(5, "transcript").data, "data survives the round trip");
    assert_eq!((t[1].at_ms, t[1].unix_ms), (5, 1_000_005));
    assert!(store.timeline("t1", "nobody").await.unwrap().is_empty());
    assert!(store.timeline("t2", "call-1").await.unwrap().is_empty(), "another tenant's call is unknown");
    assert!(store.calls("t3", 10).await.unwrap().is_empty());
    let calls = store.calls("t1", 10).await.unwrap();
    assert_eq!(calls.iter().map(|c| c.call_id.as_str()).collect::<Vec<_>>(), ["call-2", "call-1"], "most recent first");
    assert!(calls[1].ended && !calls[0].ended);
    assert_eq!(calls[1].events, 3);
    assert_eq!(store.calls("t1", 1).await.unwrap().len(), 1);
    assert_eq!(store.calls("t2", 10).await.unwrap()[0].call_id, "call-3");
    assert!(matches!(store.append("t1", "../etc/passwd", &[]).await, Err(DataError::InvalidId(_))));
    assert!(matches!(store.append("t/1", "c", &[ev(0, "x")]).await, Err(DataError::InvalidId(_))));
    assert!(matches!(store.timeline("t1", "a b").await, Err(DataError::InvalidId(_))));
}

/// Events re-sent with their seq (a replay after a crash) are not added twice.
async fn replays_are_idempotent(store: &dyn TimelineStore) {
    let batch: Vec<TimelineEvent> = (1..=4).map(|i| TimelineEvent { seq: 100 + i, ..ev(i, &format!("e{i}")) }).collect();
    store.append("t1", "replay", &batch[..3]).await.unwrap();
    store.append("t1", "replay", &batch[1..]).await.unwrap(); // 2 and 3 again, then 4
    store.append("t1", "replay", &batch).await.unwrap();
    let t = store.timeline("t1", "replay").await.unwrap();
    assert_eq!(kinds(&t), ["e1", "e2", "e3", "e4"]);
    assert_eq!(t.iter().map(|e| e.seq).collect::<Vec<_>>(), [101, 102, 103, 104]);
    assert_eq!(store.calls("t1", 10).await.unwrap().iter().find(|c| c.call_id == "replay").unwrap().events, 4);
}

#[tokio::test]
async fn memory() {
    let m = MemoryTimeline::default();
    behaves(&m, async || {}).await;
    replays_are_idempotent(&MemoryTimeline::default()).await;
}

#[tokio::test]
async fn files() {
    let d = tmp("tl-files");
    behaves(&FileTimeline::open(&d).unwrap(), async || {}).await;
    replays_are_idempotent(&FileTimeline::open(d.join("r")).unwrap()).await;
    // a reopened store knows the last seq from the file
    let again = FileTimeline::open(d.join("r")).unwrap();
    again.append("t1", "replay", &[TimelineEvent { seq: 104, ..ev(4, "dup") }]).await.unwrap();
    assert_eq!(again.timeline("t1", "replay").await.unwrap().len(), 4);
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn mongodb() {
    behaves(&mongo(Retention::default()).await, async || {}).await;
    replays_are_idempotent(&mongo(Retention::default()).await).await;
}

#[tokio::test]
async fn mongodb_indexes_and_per_tenant_retention() {
    let retention = Retention { default_days: 90, per_tenant: [("short".to_string(), 7)].into() };
    let m = mongo(retention).await;
    let names = m.index_names().await.unwrap();
    for want in ["tenant_id_1_started_unix_ms_-1", "tenant_id_1_call_id_1", "expire_at_1", "call_events.tenant_id_1_call_id_1_seq_1", "call_events.call_id_1_seq_1", "call_events.expire_at_1"] {
        assert!(names.iter().any(|n| n == want), "index {want} missing: {names:?}");
    }
    m.append("short", "c1", &[ev(0, "call_started")]).await.unwrap();
    m.append("long", "c2", &[ev(0, "call_started")]).await.unwrap();
    let days = |t: &str| {
        let m = &m;
        let t = t.to_string();
        async move { m.expires_in_days(&t, if t == "short" { "c1" } else { "c2" }).await.unwrap() }
    };
    let (short, long) = (days("short").await, days("long").await);
    assert!((6.9..7.1).contains(&short), "{short}");
    assert!((89.9..90.1).contains(&long), "{long}");
}

/// Two tenants may use the same call id (and even the same seqs): neither shadows the other.
#[tokio::test]
async fn mongodb_same_call_id_in_two_tenants() {
    let m = mongo(Retention::default()).await;
    let e = |kind: &str| TimelineEvent { seq: 7, ..ev(1, kind) };
    m.append("a", "same", &[e("from-a")]).await.unwrap();
    m.append("b", "same", &[e("from-b")]).await.unwrap();
    assert_eq!(kinds(&m.timeline("a", "same").await.unwrap()), ["from-a"]);
    assert_eq!(kinds(&m.timeline("b", "same").await.unwrap()), ["from-b"]);
}

#[tokio::test]
async fn buffered_over_files() {
    let d = tmp("tl-buf-files");
    let b = BufferedTimeline::open(Arc::new(FileTimeline::open(d.join("store")).unwrap()), d.join("buf"), BufferConfig::default()).await.unwrap();
    behaves(b.as_ref(), async || b.flush().await.unwrap()).await;
    let t = b.timeline("t1", "call-1").await.unwrap();
    assert!(t.windows(2).all(|w| w[0].seq < w[1].seq) && t[0].seq > 0, "the buffer numbers events");
    assert_eq!(b.pending().unwrap(), 0);
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn buffered_over_mongodb() {
    let d = tmp("tl-buf-mongo");
    let b = BufferedTimeline::open(Arc::new(mongo(Retention::default()).await), d.join("buf"), BufferConfig::default()).await.unwrap();
    behaves(b.as_ref(), async || b.flush().await.unwrap()).await;
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn buffered_reads_see_their_own_writes_before_shipping() {
    // A backend that never answers: the events are only in the buffer's log.
    struct Down;
    #[async_trait::async_trait]
    impl TimelineStore for Down {
        async fn append(&self, _: &str, _: &str, _: &[TimelineEvent]) -> callfunnel_data::Result<()> {
            Err(DataError::backend("down", "unreachable"))
        }
        async fn timeline(&self, _: &str, _: &str) -> callfunnel_data::Result<Vec<TimelineEvent>> {
            Ok(Vec::new())
        }
        async fn calls(&self, _: &str, _: usize) -> callfunnel_data::Result<Vec<callfunnel_data::CallSummary>> {
            Ok(Vec::new())
        }
    }
    let d = tmp("tl-buf-down");
    let b = BufferedTimeline::open(Arc::new(Down), &d, BufferConfig::default()).await.unwrap();
    // read at once: the writes are seen before they reach the log's reader, let alone the backend
    for round in 0..50u64 {
        b.append("t1", "c1", &[ev(2 * round, "a"), ev(2 * round + 1, "b")]).await.unwrap();
        assert_eq!(b.timeline("t1", "c1").await.unwrap().len() as u64, 2 * round + 2, "round {round}");
    }
    assert_eq!(kinds(&b.timeline("t1", "c1").await.unwrap())[..2], ["a", "b"]);
    assert!(b.timeline("t2", "c1").await.unwrap().is_empty());
    assert_eq!(b.pending().unwrap(), 100);
    let _ = std::fs::remove_dir_all(&d);
}

/// A buffer's directory belongs to one open buffer at a time (two processes on one data dir
/// would ship each other's records from the wrong places); it is free again once closed.
#[tokio::test]
async fn a_buffer_directory_is_used_by_one_buffer_at_a_time() {
    let dir = std::env::temp_dir().join(format!("cf-buffer-lock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first = BufferedTimeline::open(Arc::new(MemoryTimeline::default()), &dir, BufferConfig::default()).await.unwrap();
    let second = BufferedTimeline::open(Arc::new(MemoryTimeline::default()), &dir, BufferConfig::default()).await;
    let e = second.err().expect("the directory is taken").to_string();
    assert!(e.contains("in use by another callfunnel process") && e.contains(&dir.display().to_string()), "{e}");
    drop(first);
    // the writer thread holds no lock: the buffer's own handle does
    let again = BufferedTimeline::open(Arc::new(MemoryTimeline::default()), &dir, BufferConfig::default()).await;
    assert!(again.is_ok(), "{:?}", again.err());
    let _ = std::fs::remove_dir_all(&dir);
}
