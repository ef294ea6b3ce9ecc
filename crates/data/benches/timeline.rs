//! The timeline write buffer under load: `cargo bench -p callfunnel-data --bench timeline --
//! [CALLS] [SECONDS] [EVENTS_PER_CALL_PER_SEC]` (defaults 500 calls, 5 s, 40/s = 20,000
//! events/s offered). Each call is a task appending one ~200-byte event at a time through
//! `BufferedTimeline` (its log fsync'd per batch) over the file store, then over memory (the
//! backend's own cost out of the picture, as with a remote MongoDB); we measure the append
//! latency seen by the call and the events/s the buffer absorbed, then how long the backlog
//! takes to ship. A second pass runs unpaced (as fast as the tasks can append).

use std::sync::Arc;
use std::time::{Duration, Instant};

use callfunnel_data::timeline::{BufferConfig, BufferedTimeline};
use callfunnel_data::{FileTimeline, MemoryTimeline, TimelineEvent, TimelineStore};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

async fn run(calls: usize, secs: u64, rate: Option<u64>, files: bool) {
    let dir = std::env::temp_dir().join(format!("cf-bench-tl-{}-{}", std::process::id(), rate.unwrap_or(0)));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn TimelineStore> = if files { Arc::new(FileTimeline::open(dir.join("store")).unwrap()) } else { Arc::new(MemoryTimeline::default()) };
    let buf = BufferedTimeline::open(store, dir.join("buf"), BufferConfig::default()).await.unwrap();
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..calls {
        let buf = buf.clone();
        tasks.push(tokio::spawn(async move {
            let call = format!("call{c}");
            let mut lat = Vec::new();
            let mut i = 0u64;
            let mut next = Instant::now() + Duration::from_micros(c as u64 * 37 % 25_000);
            while Instant::now() < until {
                if let Some(r) = rate {
                    tokio::time::sleep_until(next.into()).await;
                    next += Duration::from_micros(1_000_000 / r);
                }
                let e = TimelineEvent::new(i * 25, 1_764_000_000_000 + i, "transcript", serde_json::json!({"text": "I would like to book an appointment for Tuesday morning please", "stt_ms": 162.5, "turn": i}));
                let t = Instant::now();
                buf.append("bench", &call, &[e]).await.unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1e6);
                i += 1;
                if rate.is_none() && i % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let took = t0.elapsed().as_secs_f64();
    let n = lat.len();
    let f0 = Instant::now();
    buf.flush().await.unwrap();
    let drain = f0.elapsed().as_secs_f64();
    println!(
        "| {} | {} | {calls} | {n} | {:.0} | {:.1} | {:.1} | {:.1} | {:.2} s |",
        rate.map_or("unpaced".to_string(), |r| format!("{r}/s per call")),
        if files { "files (fsync'd JSON lines)" } else { "memory" },
        n as f64 / took,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut lat, 0.999),
        drain
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (calls, secs, rate) = (arg(0, 500) as usize, arg(1, 5), arg(2, 40));
    println!("| load | backend | calls | events | events/s absorbed | append p50 µs | p99 µs | p99.9 µs | backlog shipped after |");
    println!("|---|---|---|---|---|---|---|---|---|");
    run(calls, secs, Some(rate), true).await;
    run(calls, secs, Some(rate), false).await;
    run(calls, secs, None, true).await;
}
