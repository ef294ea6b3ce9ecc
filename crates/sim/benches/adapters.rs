//! Adapter overhead and failover time: `cargo bench -p callfunnel-sim --bench adapters`.
//! Prints a Markdown table. (1) our SSE parser + Messages stream assembler per event, pure CPU;
//! (2) a whole Claude turn streamed from the simulator over loopback, per SSE event (adapter +
//! simulator + HTTP: an upper bound of the adapter's share); (3) failover: time from a provider
//! dropping mid-turn to the next provider's first audio / transcript.

use std::sync::Arc;
use std::time::{Duration, Instant};

use callfunnel_ai::cloud::anthropic::stream::Assembler;
use callfunnel_ai::cloud::anthropic::{AnthropicClient, ClaudeBrain, LlmAgent};
use callfunnel_ai::cloud::cartesia::{CartesiaConfig, CartesiaTts};
use callfunnel_ai::cloud::deepgram::{DeepgramConfig, DeepgramStt};
use callfunnel_ai::cloud::failover::{SttChain, TtsChain};
use callfunnel_ai::cloud::sarvam::SarvamStt;
use callfunnel_ai::cloud::sse::SseParser;
use callfunnel_ai::cloud::{Endpoint, Secret};
use callfunnel_ai::{Brain, BrainEvent, CallContext, Message, Role, SpeechToText, SttConfig, SttEvent, SttInput, TextToSpeech, TtsConfig, TtsEvent, TtsInput, TurnInput};
use callfunnel_sim::{Fault, Provider, SimConfig, start};

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

fn sse_events(n: usize) -> String {
    let mut s = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n");
    s += "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
    for i in 0..n {
        s += &format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"word{i} \"}}}}\n\n");
    }
    s += "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    s
}

fn ep(url: String) -> Endpoint {
    Endpoint::new(url, Secret::new("sim-key"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("| what | p50 | p99 | runs |\n|---|---|---|---|");
    // (1) pure parsing, per event, in 1 KB network chunks
    let text = sse_events(2000);
    let mut per_event = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let (mut p, mut a) = (SseParser::new(), Assembler::new());
        let mut n = 0;
        for chunk in text.as_bytes().chunks(1024) {
            for ev in p.push(chunk).unwrap() {
                a.event(&ev.event, &ev.data).unwrap();
                n += 1;
            }
        }
        per_event.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    println!("| SSE parse + stream assembly, per event (adapter CPU) | {:.2} µs | {:.2} µs | {} |", pct(per_event.clone(), 0.5), pct(per_event, 0.99), 30);

    // (2) a streamed Claude turn over loopback, per event
    let reply: String = (0..200).map(|i| format!("w{i} ")).collect();
    let sim = start(Provider::Anthropic, ([127, 0, 0, 1], 0).into(), SimConfig { script: vec![reply], ..Default::default() }).await.unwrap();
    let brain = ClaudeBrain::new(AnthropicClient::new(ep(sim.url())), LlmAgent::new("You are a receptionist."));
    let mut per_msg = Vec::new();
    for _ in 0..20 {
        let mut s = brain.session(CallContext::default()).await.unwrap();
        let h = [Message { role: Role::User, text: "hi".into(), interrupted: false }];
        let t = Instant::now();
        let mut rx = s.respond(TurnInput::UserSaid("hi".into()), &h).await.unwrap();
        let mut n = 0;
        while let Some(e) = rx.recv().await {
            n += matches!(e, BrainEvent::Text(_)) as usize;
        }
        per_msg.push(t.elapsed().as_secs_f64() * 1e6 / (n + 6) as f64);
    }
    println!("| Claude turn over loopback, per SSE event (adapter + simulator + HTTP) | {:.1} µs | {:.1} µs | {} |", pct(per_msg.clone(), 0.5), pct(per_msg, 0.99), 20);

    // (3a) TTS failover: Cartesia drops the socket at the turn's first audio → the next
    // provider's first audio; reported as the extra time to first audio over a clean turn
    let mut tts_ms = Vec::new();
    for _ in 0..10 {
        let mut first_audio = [0.0f64; 2];
        for (k, fault) in [false, true].into_iter().enumerate() {
            let a = start(Provider::Cartesia, ([127, 0, 0, 1], 0).into(), SimConfig::default()).await.unwrap();
            let b = start(Provider::Cartesia, ([127, 0, 0, 1], 0).into(), SimConfig::default()).await.unwrap();
            if fault {
                a.faults.inject(Fault::DropMidStream, 1);
            }
            let x: Arc<dyn TextToSpeech> = Arc::new(CartesiaTts::new(ep(a.url()), CartesiaConfig::default()));
            let y: Arc<dyn TextToSpeech> = Arc::new(CartesiaTts::new(ep(b.url()), CartesiaConfig::default()));
            let chain = TtsChain::new(vec![x, y], Duration::from_secs(2));
            let t = Instant::now();
            let st = chain.open(TtsConfig { voice: "v".into(), language: "en".into(), sample_rate: 8000 }).await.unwrap();
            st.input.send(TtsInput::Text("One sentence here. Another sentence there.".into())).await.unwrap();
            st.input.send(TtsInput::Flush).await.unwrap();
            let mut ev = st.events;
            let mut got = false;
            while let Some(e) = ev.recv().await {
                match e {
                    TtsEvent::Audio(c) if !c.pcm.is_empty() && !got => {
                        got = true;
                        first_audio[k] = t.elapsed().as_secs_f64() * 1000.0;
                    }
                    TtsEvent::Done => break,
                    _ => {}
                }
            }
            assert!(got && (!fault || b.faults.stats().connections == 1), "the second provider spoke");
        }
        tts_ms.push(first_audio[1] - first_audio[0]);
    }
    println!("| TTS failover (socket dropped at the first audio → next provider's audio), extra time to first audio | {:.1} ms | {:.1} ms | {} |", pct(tts_ms.clone(), 0.5), pct(tts_ms, 0.99), 10);

    // (3b) STT failover: Deepgram refuses every reconnect → Sarvam answers the Finalize
    let mut stt_ms = Vec::new();
    for _ in 0..10 {
        let dg = start(Provider::Deepgram, ([127, 0, 0, 1], 0).into(), SimConfig::default()).await.unwrap();
        let sv = start(Provider::Sarvam, ([127, 0, 0, 1], 0).into(), SimConfig::default()).await.unwrap();
        dg.faults.inject(Fault::DropMidStream, 1);
        dg.faults.inject(Fault::RejectHandshake { status: 401 }, 10);
        let x: Arc<dyn SpeechToText> = Arc::new(DeepgramStt::new(ep(dg.url()), DeepgramConfig::default()));
        let y: Arc<dyn SpeechToText> = Arc::new(SarvamStt::new(ep(sv.url()), Default::default()));
        let chain = SttChain::new(vec![x, y], Duration::from_millis(2500));
        let mut st = chain.open(SttConfig { language: "hi-IN".into(), sample_rate: 8000 }).await.unwrap();
        let tone: Vec<i16> = (0..8000).map(|i| (8000.0 * (i as f64 * 0.1413).sin()) as i16).collect();
        for c in tone.chunks(160) {
            st.input.send(SttInput::Audio(c.to_vec())).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await; // the drop happens at the first result
        let t = Instant::now();
        st.input.send(SttInput::Finalize).await.unwrap();
        loop {
            match st.events.recv().await {
                Some(SttEvent::Final { flushed: true, .. }) => break,
                Some(_) => {}
                None => panic!("stt chain closed"),
            }
        }
        stt_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("| STT failover (Deepgram gone → Sarvam transcript after Finalize) | {:.1} ms | {:.1} ms | {} |", pct(stt_ms.clone(), 0.5), pct(stt_ms, 0.99), 10);
}
