//! The per-call engine alone: `cargo bench -p callfunnel-media --bench engine [-- CALLS]`.
//! Runs CALLS concurrent calls with the model-free test kit (providers answer in ~5 ms), a
//! caller that speaks three tone bursts and echoes marks at once, and reports the engine-added
//! latency per turn (time not spent in a provider) and the memory each call holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use callfunnel_ai::{CallContext, SttConfig, TtsConfig};
use callfunnel_data::{MemoryTimeline, TimelineStore};
use callfunnel_media::engine::{self, CarrierIn, CarrierIo, CarrierOut, PlayoutConfig, TurnConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/statm").ok().and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok()).map_or(0, |pages| pages * 4)
}

/// Speech (a tone) in these windows of the call, in ms.
const SPEECH: [(u64, u64); 3] = [(4000, 5200), (9000, 10000), (14000, 15000)];
const CALL_MS: u64 = 19_000;

async fn caller(tx: mpsc::Sender<CarrierIn>, mut rx: mpsc::Receiver<CarrierOut>) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut phase = 0f32;
    for n in 0..CALL_MS / 20 {
        tick.tick().await;
        let t = n * 20;
        let speaking = SPEECH.iter().any(|&(a, b)| t >= a && t < b);
        let frame: Vec<i16> = (0..160).map(|_| { phase += 2.0 * std::f32::consts::PI * 300.0 / 8000.0; if speaking { (phase.sin() * 6000.0) as i16 } else { 0 } }).collect();
        if tx.send(CarrierIn::Audio(frame)).await.is_err() { return }
        while let Ok(m) = rx.try_recv() {
            if let CarrierOut::Mark(name) = m {
                let _ = tx.send(CarrierIn::Mark(name)).await;
            }
        }
    }
    let _ = tx.send(CarrierIn::Hangup("bench done".into())).await;
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

fn main() {
    let calls: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let store = Arc::new(MemoryTimeline::default());
        let base = rss_kb();
        let started = Instant::now();
        let mut handles = Vec::new();
        for i in 0..calls {
            let (in_tx, in_rx) = mpsc::channel(256);
            let (out_tx, out_rx) = mpsc::channel(256);
            let setup = engine::CallSetup {
                call_id: format!("bench{i}"),
                context: CallContext { call_id: format!("bench{i}"), tenant_id: "bench".into(), ..Default::default() },
                turn: TurnConfig::default(),
                playout: PlayoutConfig::default(),
                stt: SttConfig { language: "en-US".into(), sample_rate: 8000 },
                tts: TtsConfig { voice: "tone".into(), language: "en-US".into(), sample_rate: 8000 },
                recording: None,
                screening: None,
            };
            let providers = callfunnel_media::testkit::providers(&[]);
            let st: Arc<dyn TimelineStore> = store.clone();
            handles.push(tokio::spawn(engine::run_call(setup, providers, CarrierIo { inbound: in_rx, outbound: out_tx }, st, CancellationToken::new())));
            tokio::spawn(caller(in_tx, out_rx));
            tokio::time::sleep(Duration::from_millis(5)).await; // stagger like real arrivals
        }
        tokio::time::sleep(Duration::from_millis(9500)).await;
        let mid = rss_kb();
        for h in handles {
            let _ = h.await;
        }
        let wall = started.elapsed();
        let (mut overhead, mut send, mut total) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..calls {
            for e in store.timeline("bench", &format!("bench{i}")).await.unwrap_or_default() {
                if e.kind == "turn_latency" && e.data["turn"].as_u64() != Some(1) {
                    overhead.push(e.data["engine_overhead_ms"].as_f64().unwrap_or(0.0));
                    send.push(e.data["latency_ms"]["send"].as_f64().unwrap_or(0.0));
                    total.push(e.data["latency_ms"]["total"].as_f64().unwrap_or(0.0));
                }
            }
        }
        let n = overhead.len();
        println!("calls: {calls} concurrent, {n} answered turns, wall {:.1} s", wall.as_secs_f64());
        println!("engine-added latency per turn: p50 {:.3} ms, p99 {:.3} ms (first audio → first byte p99 {:.3} ms)", pct(&mut overhead, 0.5), pct(&mut overhead, 0.99), pct(&mut send, 0.99));
        println!("turn total (pause 500 ms + ~15 ms of test-kit providers): p50 {:.0} ms, p99 {:.0} ms", pct(&mut total, 0.5), pct(&mut total, 0.99));
        println!("memory: {:.0} KB per call (RSS {} KB → {} KB mid-call, incl. the bench's caller and timeline)", (mid.saturating_sub(base)) as f64 / calls as f64, base, mid);
    });
}
