//! MongoDB goes away mid-call and comes back: through the durable buffer every event arrives,
//! in order, exactly once — also when the buffer itself is dropped unflushed during the
//! outage and reopened. The test runs its own mongoeco (so it can kill it) on a SQLite file
//! that survives the restarts.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callfunnel_data::timeline::{BufferConfig, BufferedTimeline, MongoTimeline, Retention};
use callfunnel_data::{TimelineEvent, TimelineStore};
use common::{service_env, unique};

struct Mongo {
    child: Option<Child>,
    port: u16,
    file: std::path::PathBuf,
}

impl Mongo {
    fn start(port: u16, file: &std::path::Path) -> Mongo {
        let mut m = Mongo { child: None, port, file: file.to_path_buf() };
        m.up();
        m
    }

    fn up(&mut self) {
        let child = Command::new(service_env("CF_TEST_MONGOECO_PYTHON"))
            .arg(service_env("CF_TEST_MONGOECO_SERVE"))
            .arg(self.port.to_string())
            .arg(&self.file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mongoeco");
        self.child = Some(child);
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(30), "mongoeco did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Mongo {
    fn drop(&mut self) {
        self.kill();
    }
}

fn ev(i: usize) -> TimelineEvent {
    TimelineEvent::new(i as u64, 1_700_000_000_000 + i as u64, format!("e{i}"), serde_json::json!({"i": i}))
}

async fn append_range(b: &BufferedTimeline, r: std::ops::Range<usize>) {
    for i in r {
        let t = Instant::now();
        b.append("acme", "call-1", &[ev(i)]).await.unwrap();
        assert!(t.elapsed() < Duration::from_secs(1), "append waited on the backend");
    }
}

fn quick() -> BufferConfig {
    BufferConfig { backoff_min: Duration::from_millis(20), backoff_max: Duration::from_millis(300), ..BufferConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_outage_loses_nothing() {
    let dir = std::env::temp_dir().join(unique("tl-outage"));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut mongo = Mongo::start(port, &dir.join("mongo.sqlite"));
    let uri = format!("mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000");
    let backend = Arc::new(MongoTimeline::connect(&uri, "outage", Retention::default()).await.unwrap());
    let buf = BufferedTimeline::open(backend.clone(), dir.join("buffer"), quick()).await.unwrap();

    append_range(&buf, 0..20).await;
    buf.flush().await.unwrap();
    assert_eq!(backend.timeline("acme", "call-1").await.unwrap().len(), 20);

    // MongoDB dies mid-call; the call goes on appending.
    mongo.kill();
    append_range(&buf, 20..50).await;
    let t0 = Instant::now();
    while buf.ship_failures() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "the buffer never tried the dead backend");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    mongo.up();
    tokio::time::timeout(Duration::from_secs(60), buf.flush()).await.expect("flushed after the restart").unwrap();
    let got = backend.timeline("acme", "call-1").await.unwrap();
    assert_eq!(got.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(), (0..50).map(|i| format!("e{i}")).collect::<Vec<_>>(), "every event, in order, once");
    assert!(got.windows(2).all(|w| w[0].seq < w[1].seq));

    // Down again, and the buffer itself is dropped without a flush (a crash): reopening the
    // same directory ships what was left, exactly once.
    mongo.kill();
    append_range(&buf, 50..60).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(buf);
    mongo.up();
    let buf = BufferedTimeline::open(backend.clone(), dir.join("buffer"), quick()).await.unwrap();
    append_range(&buf, 60..65).await;
    tokio::time::timeout(Duration::from_secs(60), buf.flush()).await.expect("flushed after reopening").unwrap();
    let got = backend.timeline("acme", "call-1").await.unwrap();
    assert_eq!(got.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(), (0..65).map(|i| format!("e{i}")).collect::<Vec<_>>());
    assert!(got.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(backend.calls("acme", 10).await.unwrap()[0].events, 65, "counted once");
    assert_eq!(buf.pending().unwrap(), 0);
    drop(mongo);
    let _ = std::fs::remove_dir_all(&dir);
}
