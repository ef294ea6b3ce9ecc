//! `callfunnel loadtest` against a server on the cloud adapters and the provider simulators:
//! every call completes, nothing drops, and the report holds the callers' timings (replies,
//! barge-in clears) and the server's (turn stages, engine-added latency, CPU, memory).

use std::sync::Arc;
use std::time::Duration;

use callfunnel_ai::cloud::StaticSecrets;
use callfunnel_control::{Config, Server};
use callfunnel_sim::{self as sim, Latency, Provider, SimConfig};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_test_completes_its_calls_and_reports_both_sides() {
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let stt: Vec<String> = std::fs::read_to_string(repo.join("assets/load/stt-lines.txt")).unwrap().lines().map(str::to_string).collect();
    let latency = Latency { stt_finalize_ms: 50, llm_first_token_ms: 100, llm_tokens_per_s: 0.0, tts_first_audio_ms: 40, tts_rtf: 0.2, embed_ms: 0 };
    let start = |p, script: Vec<String>| sim::start(p, ([127, 0, 0, 1], 0).into(), SimConfig { script, latency: latency.clone(), ..Default::default() });
    let (dg, an, ca) = (start(Provider::Deepgram, stt).await.unwrap(), start(Provider::Anthropic, Vec::new()).await.unwrap(), start(Provider::Cartesia, Vec::new()).await.unwrap());

    let dir = std::env::temp_dir().join(format!("cf-loadtest-{}", std::process::id()));
    let mut cfg = Config::default();
    cfg.server.listen = ([127, 0, 0, 1], 0).into();
    cfg.data.dir = dir.clone();
    cfg.agents.dir = repo.join("agents");
    cfg.agents.default_agent = "clinic-llm".into();
    cfg.providers.stt = vec!["deepgram".into()];
    cfg.providers.tts = vec!["cartesia".into()];
    cfg.providers.deepgram.url = dg.url();
    cfg.providers.anthropic.url = an.url();
    cfg.providers.cartesia.url = ca.url();
    let stop = CancellationToken::new();
    let secrets = StaticSecrets::default().with("deepgram", "sim-key").with("anthropic", "sim-key").with("cartesia", "sim-key");
    // the server announces its own address in the stream URLs
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    cfg.server.listen = ([127, 0, 0, 1], port).into();
    cfg.server.public_host = format!("127.0.0.1:{port}");
    cfg.server.public_ws_scheme = "ws".into();
    let server = Server::start_with(cfg, stop.clone(), Arc::new(secrets)).await.unwrap();
    let target = format!("http://{}", server.addr);

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_callfunnel"))
        .args(["loadtest", "--target", &target, "--calls", "3", "--ramp", "1", "--duration", "2", "--json"])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), out).await.expect("the load test ends").unwrap();
    assert!(out.status.success(), "loadtest failed: {}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert!(r["completed"].as_u64().unwrap() >= 3, "{r:#}");
    assert_eq!(r["dropped"], 0, "{r:#}");
    assert!((1..=3).contains(&r["peak_active_calls"].as_u64().unwrap()), "{r:#}");
    // three caller lines per call, each answered; one barge-in per call
    assert!(r["reply_after_ms"]["n"].as_u64().unwrap() >= 9 && r["reply_after_ms"]["p50"].as_f64().unwrap() > 100.0, "{r:#}");
    assert!(r["barge_in_clear_ms"]["n"].as_u64().unwrap() >= 3, "{r:#}");
    let stages: Vec<(String, Value)> = serde_json::from_value(r["stages"].clone()).unwrap();
    let stage = |s: &str| stages.iter().find(|(n, _)| n == s).map(|(_, v)| v.clone()).unwrap();
    assert!(stage("total")["n"].as_u64().unwrap() >= 6, "the server's turns: {r:#}");
    // the simulated LLM answers after 100 ms: the brain stage says so
    let brain = stage("brain_first_token")["p50"].as_f64().unwrap();
    assert!((75.0..=400.0).contains(&brain), "{r:#}");
    assert_eq!(r["engine_added_ms"], stage("engine_overhead"));
    assert!(r["server_cpu_percent"].as_f64().unwrap() > 0.0 && r["cpu_ms_per_call_second"].as_f64().unwrap() > 0.0, "{r:#}");
    // Calls score their VAD frames through the batcher (at least one frame per model run).
    assert!(r["vad_batch_mean"].as_f64().unwrap() >= 1.0, "{r:#}");
    assert!(r["server_rss_peak_mb"].as_f64().unwrap() >= r["server_rss_idle_mb"].as_f64().unwrap(), "{r:#}");

    // a wrong target is a clear error, not a hang
    let bad = tokio::process::Command::new(env!("CARGO_BIN_EXE_callfunnel")).args(["loadtest", "--target", "127.0.0.1:1", "--calls", "1"]).output().await.unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--target must be"), "{}", String::from_utf8_lossy(&bad.stderr));
    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}
