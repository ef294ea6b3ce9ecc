//! Telemetry: `GET /metrics` while a real call runs through the fake carrier with the offline
//! models. The live-call gauge goes to 1 and back to 0, the turn latency histograms, the
//! ended-calls and the analysis counters move, and every scrape is valid Prometheus text.
//! Counters are process-wide and other tests place calls at the same time, so they are
//! compared as deltas of at least what this call did.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use callfunnel_ai::cloud::StaticSecrets;
use callfunnel_metrics::text::{Scrape, parse};
use serde_json::{Value, json};

use crate::telephony::{TOKEN, rig_with};

async fn scrape(base: &str) -> Scrape {
    let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = r.text().await.unwrap();
    parse(&text).unwrap_or_else(|e| panic!("not valid Prometheus text: {e}\n{text}"))
}

/// Scrapes until `pred` holds (every scrape is validated), for up to `limit`.
async fn until(base: &str, limit: Duration, what: &str, pred: impl Fn(&Scrape) -> bool) -> Scrape {
    let t = Instant::now();
    loop {
        let s = scrape(base).await;
        if pred(&s) {
            return s;
        }
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const ENDED: [(&str, &str); 3] = [("direction", "outbound"), ("carrier", "twilio"), ("end", "agent_ended")];

fn stage_counts(s: &Scrape) -> Vec<f64> {
    ["end_of_turn", "stt", "brain_first_token", "tts_first_audio", "total"].iter().map(|st| s.get("callfunnel_turn_stage_seconds_count", &[("stage", st)]).unwrap_or(0.0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_a_call_from_start_to_end() {
    let secrets = StaticSecrets::default().with("twilio_auth_token", TOKEN).with("exotel_api_key", "key").with("exotel_api_token", "tok").with("exotel_stream_auth", "bot:pw");
    let rig = rig_with("metrics", |_| {}, secrets, HashMap::new()).await;
    let base = rig.base.clone();
    let before = scrape(&base).await;
    assert_eq!(before.get("callfunnel_active_calls", &[]), Some(0.0));
    assert_eq!(before.get("callfunnel_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), Some(1.0));
    assert_eq!(before.get("callfunnel_dial_queue_depth", &[]), Some(0.0), "nothing to dial");
    assert!(before.get("callfunnel_analysis_queue_depth", &[]).is_some());
    assert_eq!(before.types.get("callfunnel_turn_stage_seconds").map(String::as_str), Some("histogram"));
    assert!(before.get("process_resident_memory_bytes", &[]).unwrap() > 1e6);
    let ended_before = before.get("callfunnel_calls_total", &ENDED).unwrap_or(0.0);
    let analyzed_before = before.get("callfunnel_analysis_total", &[("outcome", "done")]).unwrap_or(0.0);

    // A person answers: "Hello?" → the agent greets → "Goodbye" → the agent hangs up.
    let placed = rig.place(json!({"to": "+15550001"})).await;
    let id = placed["call_id"].as_str().unwrap().to_string();
    until(&base, Duration::from_secs(20), "active_calls 1", |s| s.get("callfunnel_active_calls", &[]) == Some(1.0)).await;
    let keda: Value = reqwest::get(format!("{base}/metrics/active-calls")).await.unwrap().json().await.unwrap();
    assert_eq!(keda, json!({"active_calls": 1, "dial_backlog": 0}));

    let ev = rig.ended(&id).await;
    let after = until(&base, Duration::from_secs(10), "active_calls back to 0", |s| s.get("callfunnel_active_calls", &[]) == Some(0.0)).await;
    let keda: Value = reqwest::get(format!("{base}/metrics/active-calls")).await.unwrap().json().await.unwrap();
    assert_eq!(keda, json!({"active_calls": 0, "dial_backlog": 0}));
    let end = ev.iter().find(|e| e["kind"] == "call_ended").unwrap();
    assert_eq!(end["data"]["end"], "agent_ended");
    assert!(after.get("callfunnel_calls_total", &ENDED).unwrap() >= ended_before + 1.0, "the end is counted");

    // Each turn the engine timed is in every stage's histogram.
    let turns = ev.iter().filter(|e| e["kind"] == "turn_latency").count() as f64;
    assert!(turns >= 1.0, "the call has a timed turn");
    for (stage, (b, a)) in stage_counts(&before).into_iter().zip(stage_counts(&after)).enumerate() {
        assert!(a - b >= turns, "stage {stage}: {b} → {a}, {turns} turns");
    }
    let total = ev.iter().find(|e| e["kind"] == "turn_latency").unwrap()["data"]["latency_ms"]["total"].as_f64().unwrap() / 1000.0;
    let sum = |s: &Scrape| s.get("callfunnel_turn_stage_seconds_sum", &[("stage", "total")]).unwrap_or(0.0);
    assert!(sum(&after) - sum(&before) >= total - 1e-6, "the turn's total is in the sum");

    // The post-call analysis runs after the call and is counted.
    until(&base, Duration::from_secs(15), "analysis counted", |s| s.get("callfunnel_analysis_total", &[("outcome", "done")]).unwrap_or(0.0) >= analyzed_before + 1.0).await;
    rig.done();
}
