//! A whole call over the real Twilio Media Streams WebSocket with the model-free test kit:
//! turn-taking, barge-in (clear + history truncated to what was heard), latency records,
//! end of call, and isolation of a misbehaving stream.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::Path;
use axum::routing::any;
use callfunnel_ai::{CallContext, SttConfig, TtsConfig};
use callfunnel_data::{MemoryTimeline, TimelineStore};
use callfunnel_media::caller::{self, CallerOptions, Script};
use callfunnel_media::engine::{self, CallEnd, CallSetup, CarrierIo, PlayoutConfig, TurnConfig};
use callfunnel_media::carrier::{self, CallHandler, CallStart};
use callfunnel_media::twilio::TwilioCodec;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

struct Handler {
    store: Arc<MemoryTimeline>,
}

#[async_trait]
impl CallHandler for Handler {
    async fn run(&self, call_id: String, _start: CallStart, io: CarrierIo) -> CallEnd {
        let setup = CallSetup {
            call_id: call_id.clone(),
            context: CallContext { call_id, tenant_id: "t1".into(), ..Default::default() },
            turn: TurnConfig::default(),
            playout: PlayoutConfig::default(),
            stt: SttConfig { language: "en-US".into(), sample_rate: 8000 },
            tts: TtsConfig { voice: "tone".into(), language: "en-US".into(), sample_rate: 8000 },
            recording: None,
            screening: None,
        };
        let providers = callfunnel_media::testkit::providers(&["what are your opening hours", "i want to book an appointment please", "goodbye"]);
        engine::run_call(setup, providers, io, self.store.clone(), CancellationToken::new()).await
    }
}

async fn server(store: Arc<MemoryTimeline>) -> std::net::SocketAddr {
    let handler: Arc<dyn CallHandler> = Arc::new(Handler { store });
    let app = axum::Router::new().route(
        "/twilio/media/{id}",
        any(move |Path(id): Path<String>, ws: WebSocketUpgrade| {
            let h = handler.clone();
            async move { ws.on_upgrade(move |s| async move { let _ = carrier::serve(s, id, TwilioCodec::default(), h).await; }) }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

use callfunnel_media::testkit::BOOKING_SCRIPT as SCRIPT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_truncates_history_and_the_agent_ends_the_call() {
    let store = Arc::new(MemoryTimeline::default());
    let addr = server(store.clone()).await;

    // A misbehaving stream at the same time: garbage after `start` ends only that stream.
    let bad = tokio::spawn(async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/twilio/media/bad1")).await.unwrap();
        ws.send(Message::Text(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#.into())).await.unwrap();
        ws.send(Message::Text(r#"{"event":"media","sequenceNumber":"1","streamSid":"MZ1","media":{"payload":""}}"#.into())).await.unwrap();
        // The server must close the stream (media before start).
        let mut closed = false;
        while let Some(m) = ws.next().await {
            if matches!(m, Ok(Message::Close(_)) | Err(_)) {
                closed = true;
                break;
            }
        }
        closed
    });

    let script = Script::from_toml(SCRIPT).unwrap();
    let vad = |r| callfunnel_metrics::VAD_FRAMES.get([r]);
    let (silero_before, gated_before) = (vad("silero"), vad("gated"));
    let rec = std::env::temp_dir().join(format!("cf-call-{}.wav", std::process::id()));
    let report = caller::run(&script, &CallerOptions { record: Some(rec.clone()), ..CallerOptions::new(format!("ws://{addr}/twilio/media/good1")) }).await.unwrap();
    assert!(bad.await.unwrap(), "the bad stream was not closed");

    assert_eq!(report.ended_by, "agent closed the stream", "{report:?}");
    assert!(report.marks_echoed > 5);
    assert_eq!(report.clears, 1, "exactly one barge-in clear");
    let barge = &report.lines[1];
    let clear_ms = barge.clear_after_ms.expect("caller saw no clear");
    // The caller hears the reply soon after it stops (pause threshold + instant providers).
    assert!(report.lines.iter().all(|l| l.reply_after_ms.is_some_and(|ms| (150..1000).contains(&ms))), "{report:?}");
    assert!((320..1200).contains(&clear_ms), "clear {clear_ms} ms after the caller started");
    // the energy pre-gate judged the caller's silences (the agent talking, the pauses) without
    // the VAD model, and the conversation above went exactly as it should
    let (silero, gated) = (vad("silero") - silero_before, vad("gated") - gated_before);
    assert!(silero > 50 && gated > 50, "silero {silero}, gated {gated}");
    assert!(std::fs::metadata(&rec).unwrap().len() > 100_000);
    let _ = std::fs::remove_file(&rec);

    // The stream closes before the engine writes `call_ended`: wait for it.
    let mut tl = Vec::new();
    for _ in 0..100 {
        tl = store.timeline("t1", "good1").await.unwrap();
        if tl.last().is_some_and(|e| e.kind == "call_ended") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let kinds: Vec<&str> = tl.iter().map(|e| e.kind.as_str()).collect();
    let transcripts: Vec<&str> = tl.iter().filter(|e| e.kind == "transcript").map(|e| e.data["text"].as_str().unwrap()).collect();
    assert_eq!(transcripts, ["what are your opening hours", "i want to book an appointment please", "goodbye"], "{kinds:?}");
    let b = tl.iter().find(|e| e.kind == "barge_in").expect("no barge_in event");
    let (heard, full) = (b.data["heard"].as_str().unwrap(), b.data["full_text"].as_str().unwrap());
    assert_eq!(full, "You said: what are your opening hours.");
    assert!(!heard.is_empty() && full.starts_with(heard) && heard.len() < full.len(), "heard {heard:?} of {full:?}");
    assert_eq!(b.data["history_truncated"], true);
    let cut = tl.iter().find(|e| e.kind == "agent_said" && e.data["interrupted"] == true).unwrap();
    assert_eq!(cut.data["text"], heard);
    let lat: Vec<f64> = tl.iter().filter(|e| e.kind == "turn_latency").map(|e| e.data["latency_ms"]["total"].as_f64().unwrap()).collect();
    assert!(lat.len() >= 3, "{kinds:?}");
    assert!(lat.iter().all(|&t| t > 0.0 && t < 2000.0), "{lat:?}");
    assert_eq!(tl.last().unwrap().kind, "call_ended");
    assert_eq!(tl.last().unwrap().data["end"], "agent_ended");
    // What the call used, for billing: every character sent to TTS (the interrupted reply's
    // whole text included: it was synthesized) and the caller's speech streamed to STT.
    let usage = &tl[tl.len() - 2];
    assert_eq!(usage.kind, "call_usage");
    let said: usize = tl.iter().filter(|e| e.kind == "agent_turn_started").count();
    let synthesized: u64 = tl.iter().filter(|e| e.kind == "agent_reply_synthesized").map(|e| e.data["text"].as_str().unwrap().chars().count() as u64).sum();
    assert!(said >= 3 && usage.data["tts_characters"].as_u64().unwrap() >= synthesized && synthesized > 0, "{usage:?}");
    let stt_ms = usage.data["stt_audio_ms"].as_u64().unwrap();
    assert!(stt_ms > 1000 && stt_ms < usage.data["call_ms"].as_u64().unwrap(), "{usage:?}");
    assert_eq!((usage.data["stt_provider"].as_str(), usage.data["tts_provider"].as_str()), (Some("scripted"), Some("tone")), "{usage:?}");
}
