//! Both carriers' media protocols end to end with the model-free test kit: an Exotel call in
//! each media format, our dual-channel recording, keypad entry, DTMF sent to the far end,
//! warm transfer, voicemail screening, and hostile input that must end only its own stream.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::Path;
use axum::routing::any;
use callfunnel_ai::{CallContext, SttConfig, TtsConfig};
use callfunnel_data::{MemoryTimeline, TimelineEvent, TimelineStore};
use callfunnel_media::caller::{self, CallerCarrier, CallerOptions, Script};
use callfunnel_media::carrier::{self, CallHandler, CallStart};
use callfunnel_media::dsp::dtmf::DtmfDetector;
use callfunnel_media::engine::{self, CallEnd, CallSetup, CarrierIo, ScreeningConfig, VoicemailAction};
use callfunnel_media::exotel::ExotelCodec;
use callfunnel_media::twilio::TwilioCodec;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

struct Handler {
    store: Arc<MemoryTimeline>,
    dir: PathBuf,
}

#[async_trait]
impl CallHandler for Handler {
    async fn run(&self, call_id: String, _start: CallStart, io: CarrierIo) -> CallEnd {
        let mut setup = CallSetup::new(
            call_id.clone(),
            CallContext { call_id: call_id.clone(), tenant_id: "t1".into(), caller: "+15550100".into(), ..Default::default() },
            SttConfig { language: "en-US".into(), sample_rate: 8000 },
            TtsConfig { voice: "tone".into(), language: "en-US".into(), sample_rate: 8000 },
        );
        setup.recording = Some(self.dir.join(format!("{call_id}.wav")));
        setup.turn.dtmf_timeout_ms = 400;
        if call_id.starts_with("vmh") {
            setup.screening = Some(ScreeningConfig { voicemail: VoicemailAction::Hangup, ..Default::default() });
        } else if call_id.starts_with("vm") {
            setup.screening = Some(ScreeningConfig { voicemail: VoicemailAction::LeaveMessage { message: "Hi, this is the clinic. Please call us back.".into() }, ..Default::default() });
        } else if call_id.starts_with("human") {
            setup.screening = Some(ScreeningConfig::default());
        }
        let lines: &[&str] = match &call_id[..2] {
            "me" => &["call the menu", "goodbye"],
            "pe" => &["a person please"],
            "vm" => &["you have reached the voicemail of sam please leave a message after the tone"],
            "hu" => &["hello", "goodbye"],
            _ => &["what are your opening hours", "i want to book an appointment please", "goodbye"],
        };
        engine::run_call(setup, callfunnel_media::testkit::providers(lines), io, self.store.clone(), CancellationToken::new()).await
    }
}

async fn server(store: Arc<MemoryTimeline>, dir: PathBuf) -> std::net::SocketAddr {
    let handler: Arc<dyn CallHandler> = Arc::new(Handler { store, dir });
    let h2 = handler.clone();
    let app = axum::Router::new()
        .route(
            "/twilio/media/{id}",
            any(move |Path(id): Path<String>, ws: WebSocketUpgrade| {
                let h = handler.clone();
                async move { ws.max_message_size(carrier::MAX_MESSAGE_BYTES).on_upgrade(move |s| async move { let _ = carrier::serve(s, id, TwilioCodec::default(), h).await; }) }
            }),
        )
        .route(
            "/exotel/media/{id}",
            any(move |Path(id): Path<String>, ws: WebSocketUpgrade| {
                let h = h2.clone();
                async move { ws.max_message_size(carrier::MAX_MESSAGE_BYTES).on_upgrade(move |s| async move { let _ = carrier::serve(s, id, ExotelCodec::default(), h).await; }) }
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cf-carriers-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn ended_timeline(store: &MemoryTimeline, id: &str) -> Vec<TimelineEvent> {
    for _ in 0..200 {
        let tl = store.timeline("t1", id).await.unwrap();
        if tl.iter().any(|e| e.kind == "call_ended") && tl.iter().any(|e| e.kind.starts_with("recording_")) {
            return tl;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("call {id} never ended: {:?}", store.timeline("t1", id).await.unwrap().iter().map(|e| e.kind.clone()).collect::<Vec<_>>());
}

fn stereo(path: &std::path::Path) -> (Vec<i16>, Vec<i16>) {
    let mut r = hound::WavReader::open(path).unwrap();
    assert_eq!((r.spec().channels, r.spec().sample_rate), (2, 8000));
    let s: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    (s.iter().step_by(2).copied().collect(), s.iter().skip(1).step_by(2).copied().collect())
}

fn energy(x: &[i16]) -> f64 {
    x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64
}

use callfunnel_media::testkit::BOOKING_SCRIPT as SCRIPT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exotel_calls_work_in_every_media_format_and_are_recorded() {
    let (store, dir) = (Arc::new(MemoryTimeline::default()), tmp("exotel"));
    let addr = server(store.clone(), dir.clone()).await;
    let script = Script::from_toml(SCRIPT).unwrap();
    for (id, mulaw) in [("pcm1", false), ("ulaw1", true)] {
        let opts = CallerOptions { carrier: CallerCarrier::Exotel { mulaw }, ..CallerOptions::new(format!("ws://{addr}/exotel/media/{id}")) };
        let report = caller::run(&script, &opts).await.unwrap();
        assert_eq!(report.ended_by, "agent closed the stream", "{id}: {report:?}");
        assert!(report.marks_echoed > 3, "{id}: marks follow the chunked audio: {report:?}");
        assert_eq!(report.clears, 1, "{id}: one barge-in clear");
        let tl = ended_timeline(&store, id).await;
        let transcripts: Vec<&str> = tl.iter().filter(|e| e.kind == "transcript").map(|e| e.data["text"].as_str().unwrap()).collect();
        assert_eq!(transcripts, ["what are your opening hours", "i want to book an appointment please", "goodbye"], "{id}");
        let saved = tl.iter().find(|e| e.kind == "recording_saved").expect("recording saved");
        let (left, right) = stereo(std::path::Path::new(saved.data["path"].as_str().unwrap()));
        assert!(left.len() as u64 >= report.duration_ms * 8 * 8 / 10, "{id}: the recording covers the call");
        // Caller speech is on the left only when the caller spoke; the agent's tone on the right.
        assert!(energy(&left) > 1e4 && energy(&right) > 1e4, "{id}: both channels carry audio");
        let agent_only = right.iter().zip(&left).filter(|(r, l)| r.abs() > 2000 && l.abs() < 50).count();
        assert!(agent_only > 8000, "{id}: the agent channel is separate from the caller's");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keypad_entries_reach_the_brain_and_the_agent_presses_keys() {
    let (store, dir) = (Arc::new(MemoryTimeline::default()), tmp("dtmf"));
    let addr = server(store.clone(), dir.clone()).await;
    let script = Script::from_toml("[[line]]\ndtmf = \"42#\"\n[[line]]\nsay = \"Call the menu\"\n[[line]]\nsay = \"Goodbye\"\n").unwrap();
    let rec = dir.join("caller.wav");
    let report = caller::run(&script, &CallerOptions { record: Some(rec.clone()), ..CallerOptions::new(format!("ws://{addr}/twilio/media/menu1")) }).await.unwrap();
    assert_eq!(report.ended_by, "agent closed the stream", "{report:?}");
    let tl = ended_timeline(&store, "menu1").await;
    let entry = tl.iter().find(|e| e.kind == "dtmf_entry").expect("keypad entry");
    assert_eq!(entry.data["digits"], "42", "two keys and # make one entry");
    assert!(tl.iter().any(|e| e.kind == "agent_said" && e.data["text"] == "You pressed 42."));
    let sent = tl.iter().find(|e| e.kind == "dtmf_sent").expect("the agent pressed keys");
    assert_eq!(sent.data["digits"], "12");
    // The caller heard the tones: decode them from what it recorded of the agent.
    let (_, agent) = stereo(&rec);
    let mut det = DtmfDetector::new(8000);
    let heard: String = det.push(&agent).into_iter().collect();
    assert_eq!(heard, "12");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_transfer_ends_with_a_brief_for_the_human() {
    let (store, dir) = (Arc::new(MemoryTimeline::default()), tmp("transfer"));
    let addr = server(store.clone(), dir.clone()).await;
    let script = Script::from_toml("[[line]]\nsay = \"A person please\"\n").unwrap();
    let report = caller::run(&script, &CallerOptions::new(format!("ws://{addr}/twilio/media/person1"))).await.unwrap();
    assert_eq!(report.ended_by, "agent closed the stream");
    let tl = ended_timeline(&store, "person1").await;
    let end = &tl.iter().find(|e| e.kind == "call_ended").unwrap().data;
    assert_eq!(end["end"], "transferred");
    assert_eq!(end["to"], "+15550123000");
    let brief = end["brief"].as_str().unwrap();
    assert!(brief.contains("asked for a person") && brief.contains("a person please") && brief.contains("+15550100"), "{brief}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screening_greets_a_person_and_leaves_a_message_on_voicemail() {
    let (store, dir) = (Arc::new(MemoryTimeline::default()), tmp("screen"));
    let addr = server(store.clone(), dir.clone()).await;
    // A person: "hello" first, then the agent greets.
    let person = Script::from_toml("[[line]]\nsay = \"Hello?\"\nstart_ms = 400\n[[line]]\nsay = \"Goodbye\"\n").unwrap();
    let r = caller::run(&person, &CallerOptions::new(format!("ws://{addr}/twilio/media/human1"))).await.unwrap();
    assert_eq!(r.ended_by, "agent closed the stream", "{r:?}");
    let tl = ended_timeline(&store, "human1").await;
    let by = tl.iter().find(|e| e.kind == "answered_by").unwrap();
    assert_eq!((by.data["answered_by"].as_str(), by.data["by"].as_str()), (Some("human"), Some("short_greeting")));
    assert!(tl.iter().any(|e| e.kind == "agent_said" && e.data["text"].as_str().unwrap().starts_with("Hello, this is the test agent")));

    // A voicemail: a long greeting, a beep, then our message, then we hang up.
    let vm = Script::from_toml(
        "[[line]]\nsay = \"You have reached the voicemail of Sam. I cannot take your call right now. Please leave a message after the tone.\"\nstart_ms = 300\n\
         [[line]]\ntone_hz = 1000\ntone_ms = 450\nstart_ms = 7000\n",
    )
    .unwrap();
    let r = caller::run(&vm, &CallerOptions::new(format!("ws://{addr}/twilio/media/vm1"))).await.unwrap();
    assert_eq!(r.ended_by, "agent closed the stream", "{r:?}");
    let tl = ended_timeline(&store, "vm1").await;
    let kinds: Vec<&str> = tl.iter().map(|e| e.kind.as_str()).collect();
    let by = tl.iter().find(|e| e.kind == "answered_by").unwrap_or_else(|| panic!("{kinds:?}"));
    assert_eq!(by.data["answered_by"], "machine");
    assert_eq!(by.data["by"], "beep", "{kinds:?}");
    assert!(kinds.contains(&"beep_detected"));
    let msg_at = tl.iter().find(|e| e.kind == "voicemail_message_started").unwrap().at_ms;
    let beep_at = tl.iter().find(|e| e.kind == "beep_detected").unwrap().at_ms;
    assert!(msg_at >= beep_at && msg_at >= 7000, "the message starts after the beep");
    assert!(!kinds.contains(&"agent_turn_started"), "the agent never greeted the machine: {kinds:?}");
    let end = &tl.iter().find(|e| e.kind == "call_ended").unwrap().data;
    assert_eq!((end["end"].as_str(), end["reason"].as_str()), (Some("agent_ended"), Some("voicemail left")));

    // An agent that leaves no message hangs up once the voicemail is recognised.
    let r = caller::run(&vm, &CallerOptions::new(format!("ws://{addr}/twilio/media/vmh1"))).await.unwrap();
    assert_eq!(r.ended_by, "agent closed the stream", "{r:?}");
    assert_eq!(r.agent_audio_ms, 0, "nothing is said to the machine");
    let tl = ended_timeline(&store, "vmh1").await;
    let end = &tl.iter().find(|e| e.kind == "call_ended").unwrap().data;
    assert_eq!(end["reason"], "voicemail: hung up");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends `msgs` on a fresh stream and reports whether the server closed it.
async fn hostile(url: String, msgs: Vec<Message>) -> bool {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    for m in msgs {
        if ws.send(m).await.is_err() {
            return true;
        }
    }
    let wait = async {
        while let Some(m) = ws.next().await {
            if matches!(m, Ok(Message::Close(_)) | Err(_)) {
                return true;
            }
        }
        true
    };
    tokio::time::timeout(Duration::from_secs(5), wait).await.unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_streams_end_alone_and_other_calls_go_on() {
    let (store, dir) = (Arc::new(MemoryTimeline::default()), tmp("hostile"));
    let addr = server(store.clone(), dir.clone()).await;
    let tw_start = r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"customParameters":{},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#;
    let ex_start = r#"{"event":"start","sequence_number":"1","stream_sid":"S1","start":{"stream_sid":"S1","call_sid":"C1","account_sid":"A1","from":"+91","to":"+91","media_format":{"encoding":"audio/x-raw","sample_rate":"8000","bit_rate":"16"}}}"#;
    let t = |s: &str| Message::Text(s.to_string().into());
    let cases: Vec<(&str, &str, Vec<Message>)> = vec![
        ("twilio", "bad base64", vec![t(tw_start), t(r#"{"event":"media","sequenceNumber":"2","streamSid":"MZ1","media":{"payload":"@@@"}}"#)]),
        ("twilio", "wrong streamSid", vec![t(tw_start), t(r#"{"event":"media","sequenceNumber":"2","streamSid":"MZ9","media":{"payload":""}}"#)]),
        ("twilio", "binary frame", vec![t(tw_start), Message::Binary(vec![0u8; 160].into())]),
        ("twilio", "huge frame", vec![t(tw_start), t(&format!(r#"{{"event":"media","sequenceNumber":"2","streamSid":"MZ1","media":{{"payload":"{}"}}}}"#, "A".repeat(100_000)))]),
        ("twilio", "flood", std::iter::once(t(tw_start)).chain((2..3000).map(|i| t(&format!(r#"{{"event":"mark","sequenceNumber":"{i}","streamSid":"MZ1","mark":{{"name":"x"}}}}"#)))).collect()),
        ("twilio", "not JSON", vec![t("hello")]),
        ("twilio", "unknown event", vec![t(r#"{"event":"teleport","sequenceNumber":"1"}"#)]),
        ("exotel", "bad base64", vec![t(ex_start), t(r#"{"event":"media","sequence_number":"2","stream_sid":"S1","media":{"payload":"@@@"}}"#)]),
        ("exotel", "odd PCM bytes", vec![t(ex_start), t(r#"{"event":"media","sequence_number":"2","stream_sid":"S1","media":{"payload":"AAEC"}}"#)]),
        ("exotel", "wrong stream_sid", vec![t(ex_start), t(r#"{"event":"media","sequence_number":"2","stream_sid":"S9","media":{"payload":""}}"#)]),
        ("exotel", "out of order", vec![t(ex_start), t(r#"{"event":"mark","sequence_number":"1","stream_sid":"S1","mark":{"name":"x"}}"#)]),
        ("exotel", "unsupported format", vec![t(&ex_start.replace("audio/x-raw", "audio/opus"))]),
        ("exotel", "binary frame", vec![t(ex_start), Message::Binary(vec![1u8; 10].into())]),
        ("exotel", "media before start", vec![t(r#"{"event":"media","sequence_number":"2","stream_sid":"S1","media":{"payload":""}}"#)]),
    ];
    let good = tokio::spawn(async move {
        let script = Script::from_toml(SCRIPT).unwrap();
        caller::run(&script, &CallerOptions { carrier: CallerCarrier::Exotel { mulaw: false }, ..CallerOptions::new(format!("ws://{addr}/exotel/media/good1")) }).await.unwrap()
    });
    for (carrier, what, msgs) in cases {
        let closed = hostile(format!("ws://{addr}/{carrier}/media/bad{}", what.replace(' ', "")), msgs).await;
        assert!(closed, "{carrier}: {what}: the server did not end the stream");
    }
    let report = good.await.unwrap();
    assert_eq!(report.ended_by, "agent closed the stream", "the good call was untouched: {report:?}");
    assert_eq!(report.lines.len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}
