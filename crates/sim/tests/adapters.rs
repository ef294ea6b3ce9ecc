//! The cloud adapters against the simulators, including every injected fault: the stream
//! (and so the call) goes on.

use std::sync::Arc;
use std::time::Duration;

use callfunnel_ai::cloud::anthropic::{AnthropicClient, ClaudeBrain, LlmAgent, ToolSpec};
use callfunnel_ai::cloud::cartesia::{CartesiaConfig, CartesiaTts};
use callfunnel_ai::cloud::deepgram::{DeepgramConfig, DeepgramStt};
use callfunnel_ai::cloud::failover::{self, ApologyBrain, BrainChain, SttChain, TtsChain};
use callfunnel_ai::cloud::sarvam::{SarvamStt, SarvamTts};
use callfunnel_ai::cloud::voyage::{VoyageConfig, VoyageEmbedder};
use callfunnel_ai::cloud::{Endpoint, Secret};
use callfunnel_ai::{Brain, BrainEvent, CallAction, CallContext, EmbedKind, Embedder, Message, Role, SpeechToText, SttConfig, SttEvent, SttInput, TextToSpeech, TtsConfig, TtsEvent, TtsInput, TurnInput};
use callfunnel_sim::{Fault, Provider, SimConfig, SimServer, start};

async fn sim(p: Provider, script: &[&str]) -> SimServer {
    let cfg = SimConfig { script: script.iter().map(|s| s.to_string()).collect(), ..Default::default() };
    start(p, ([127, 0, 0, 1], 0).into(), cfg).await.unwrap()
}

fn ep(s: &SimServer) -> Endpoint {
    Endpoint::new(s.url(), Secret::new("sim-key"))
}

/// "Speech": a loud 180 Hz tone; silence is zeros.
fn tone(ms: usize) -> Vec<i16> {
    (0..ms * 8).map(|i| (8000.0 * (i as f64 * 180.0 * 2.0 * std::f64::consts::PI / 8000.0).sin()) as i16).collect()
}

async fn feed(tx: &tokio::sync::mpsc::Sender<SttInput>, pcm: &[i16]) {
    for c in pcm.chunks(160) {
        tx.send(SttInput::Audio(c.to_vec())).await.unwrap();
    }
}

async fn next_final(rx: &mut tokio::sync::mpsc::Receiver<SttEvent>) -> (String, bool) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("no final in time") {
            Some(SttEvent::Final { text, flushed, .. }) => return (text, flushed),
            Some(_) => {}
            None => panic!("stream closed"),
        }
    }
}

fn stt_cfg() -> SttConfig {
    SttConfig { language: "en-US".into(), sample_rate: 8000 }
}

#[tokio::test]
async fn deepgram_streams_finals_and_answers_finalize() {
    let s = sim(Provider::Deepgram, &["book an appointment", "tomorrow at three"]).await;
    let dg = DeepgramStt::new(ep(&s), DeepgramConfig::default());
    let mut st = dg.open(stt_cfg()).await.unwrap();
    feed(&st.input, &tone(1000)).await;
    feed(&st.input, &vec![0; 9600]).await; // 1.2 s: the utterance is over
    let mut first = Vec::new();
    while first.join(" ") != "book an appointment" {
        let (t, flushed) = next_final(&mut st.events).await;
        assert!(!flushed);
        first.push(t);
    }
    feed(&st.input, &tone(800)).await;
    st.input.send(SttInput::Finalize).await.unwrap();
    assert_eq!(next_final(&mut st.events).await, ("tomorrow at three".into(), true));
}

#[tokio::test]
async fn deepgram_bad_key_fails_fast() {
    let s = sim(Provider::Deepgram, &[]).await;
    let dg = DeepgramStt::new(Endpoint::new(s.url(), Secret::new("wrong")), DeepgramConfig::default());
    let err = dg.open(stt_cfg()).await.err().expect("must fail").to_string();
    assert!(err.contains("401"), "{err}");
}

#[tokio::test]
async fn deepgram_reconnects_after_1011_and_loses_no_words() {
    let lines = ["one two three", "four five", "six seven eight nine"];
    let s = sim(Provider::Deepgram, &lines).await;
    s.faults.inject(Fault::Close1011, 1);
    let dg = DeepgramStt::new(ep(&s), DeepgramConfig::default());
    let mut st = dg.open(stt_cfg()).await.unwrap();
    let mut heard = Vec::new();
    for line in &lines {
        feed(&st.input, &tone(900)).await;
        feed(&st.input, &vec![0; 9600]).await;
        let mut words = Vec::new();
        while words.join(" ").split_whitespace().count() < line.split_whitespace().count() {
            let t = next_final(&mut st.events).await.0;
            if !t.is_empty() {
                words.push(t);
            }
        }
        heard.push(words.join(" "));
    }
    let words_in: usize = lines.iter().map(|l| l.split_whitespace().count()).sum();
    let words_out: usize = heard.iter().map(|l| l.split_whitespace().count()).sum();
    assert_eq!(heard, lines, "the utterance cut by the 1011 close was replayed on the new connection");
    assert_eq!(words_in, words_out);
    assert!(s.faults.stats().connections >= 2, "a second connection was made");
}

#[tokio::test]
async fn stt_chain_fails_over_to_the_next_provider_mid_utterance() {
    let dg_sim = sim(Provider::Deepgram, &["never heard"]).await;
    let sv_sim = sim(Provider::Sarvam, &["hello from sarvam"]).await;
    dg_sim.faults.inject(Fault::DropMidStream, 10); // every reconnect dies too
    let dg: Arc<dyn SpeechToText> = Arc::new(DeepgramStt::new(ep(&dg_sim), DeepgramConfig { reconnects: 1, ..Default::default() }));
    let sv: Arc<dyn SpeechToText> = Arc::new(SarvamStt::new(ep(&sv_sim), Default::default()));
    let chain = SttChain::new(vec![dg, sv], Duration::from_millis(2500));
    let mut st = chain.open(SttConfig { language: "en-IN".into(), sample_rate: 8000 }).await.unwrap();
    let before = failover::failover_counts().get("stt:deepgram->sarvam").copied().unwrap_or(0);
    feed(&st.input, &tone(1200)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    st.input.send(SttInput::Finalize).await.unwrap();
    let (text, flushed) = next_final(&mut st.events).await;
    assert_eq!((text.as_str(), flushed), ("hello from sarvam", true));
    assert_eq!(failover::failover_counts()["stt:deepgram->sarvam"], before + 1);
}

fn agent(tools: Vec<ToolSpec>, fallback: Option<&str>) -> LlmAgent {
    let mut a = LlmAgent::new("You are the receptionist of Riverside Family Clinic. ".repeat(40));
    a.tools = tools;
    a.fallback_model = fallback.map(str::to_string);
    a.first_token_timeout_ms = 2000;
    a
}

async fn turn(brain: &dyn Brain, inputs: &[(TurnInput, Vec<Message>)]) -> Vec<Vec<BrainEvent>> {
    let mut s = brain.session(CallContext { call_id: "c1".into(), ..Default::default() }).await.unwrap();
    let mut all = Vec::new();
    for (input, history) in inputs {
        let mut rx = s.respond(input.clone(), history).await.unwrap();
        let mut evs = Vec::new();
        while let Some(e) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("turn stalled") {
            evs.push(e);
        }
        all.push(evs);
    }
    all
}

fn text_of(evs: &[BrainEvent]) -> String {
    evs.iter().filter_map(|e| if let BrainEvent::Text(t) = e { Some(t.as_str()) } else { None }).collect()
}

fn user(t: &str) -> Message {
    Message { role: Role::User, text: t.into(), interrupted: false }
}

#[tokio::test]
async fn claude_streams_replies_and_the_prompt_cache_hits_on_the_next_turn() {
    let s = sim(Provider::Anthropic, &["We open at eight.", "You're welcome."]).await;
    let brain = ClaudeBrain::new(AnthropicClient::new(ep(&s)), agent(vec![], None));
    let h1 = vec![user("When do you open?")];
    let mut h2 = h1.clone();
    h2.push(Message { role: Role::Agent, text: "We open at eight.".into(), interrupted: false });
    h2.push(user("Thanks"));
    let turns = turn(&brain, &[(TurnInput::UserSaid("When do you open?".into()), h1), (TurnInput::UserSaid("Thanks".into()), h2)]).await;
    assert_eq!(text_of(&turns[0]), "We open at eight.");
    assert_eq!(text_of(&turns[1]), "You're welcome.");
    let usage = |evs: &[BrainEvent]| evs.iter().find_map(|e| if let BrainEvent::Usage(u) = e { Some(u.clone()) } else { None }).expect("usage");
    let (u1, u2) = (usage(&turns[0]), usage(&turns[1]));
    assert!(u1.cache_creation_input_tokens > 0 && u1.cache_read_input_tokens == 0, "{u1:?}");
    assert!(u2.cache_read_input_tokens > 0, "the system prompt prefix is read from the cache: {u2:?}");
    assert_eq!(u1.model, "claude-haiku-4-5");
}

#[tokio::test]
async fn claude_calls_tools_in_parallel_and_feeds_results_back() {
    let s = sim(Provider::Anthropic, &[]).await;
    let tools = vec![ToolSpec::EndCall { description: None }, ToolSpec::Transfer { to: "+15550123000".into(), description: None, warm: false }];
    let brain = ClaudeBrain::new(AnthropicClient::new(ep(&s)), agent(tools, None));
    let h = vec![user("Please transfer the call, then end the call")];
    let turns = turn(&brain, &[(TurnInput::UserSaid(h[0].text.clone()), h)]).await;
    let evs = &turns[0];
    let actions: Vec<&CallAction> = evs.iter().filter_map(|e| if let BrainEvent::Action(a) = e { Some(a) } else { None }).collect();
    assert_eq!(actions.len(), 2, "{evs:?}");
    assert!(actions.iter().any(|a| matches!(a, CallAction::Transfer { to, .. } if to == "+15550123000")));
    assert!(actions.iter().any(|a| matches!(a, CallAction::EndCall { .. })));
    // the second request carried both tool results (the simulator validates that) and the
    // model's answer to them was spoken
    assert!(text_of(evs).contains("will be transferred"), "{}", text_of(evs));
    assert_eq!(evs.iter().filter(|e| matches!(e, BrainEvent::Usage(_))).count(), 2);
}

#[tokio::test]
async fn claude_overload_moves_to_the_fallback_model() {
    let s = sim(Provider::Anthropic, &["Fallback says hello."]).await;
    s.faults.inject(Fault::Overloaded, 2); // the first try and its one retry
    let brain = ClaudeBrain::new(AnthropicClient::new(ep(&s)), agent(vec![], Some("claude-sonnet-4-6")));
    let h = vec![user("hi")];
    let turns = turn(&brain, &[(TurnInput::UserSaid("hi".into()), h)]).await;
    assert_eq!(text_of(&turns[0]), "Fallback says hello.");
    assert!(turns[0].iter().any(|e| matches!(e, BrainEvent::Usage(u) if u.model == "claude-sonnet-4-6")));
}

#[tokio::test]
async fn claude_error_mid_stream_continues_on_the_fallback_model() {
    let s = sim(Provider::Anthropic, &["one two three four five."]).await;
    s.faults.inject(Fault::ErrorAfterOk, 1);
    let brain = ClaudeBrain::new(AnthropicClient::new(ep(&s)), agent(vec![], Some("claude-sonnet-4-6")));
    let turns = turn(&brain, &[(TurnInput::UserSaid("hi".into()), vec![user("hi")])]).await;
    let t = text_of(&turns[0]);
    assert!(t.starts_with("one two "), "what was said stands: {t}");
    assert!(!turns[0].iter().any(|e| matches!(e, BrainEvent::Failed(_))), "{:?}", turns[0]);
}

#[tokio::test]
async fn claude_rate_limit_is_retried_after_the_servers_wait() {
    let s = sim(Provider::Anthropic, &["ok then."]).await;
    s.faults.inject(Fault::RateLimited { retry_after_ms: 150 }, 1);
    let brain = ClaudeBrain::new(AnthropicClient::new(ep(&s)), agent(vec![], None));
    let turns = turn(&brain, &[(TurnInput::UserSaid("hi".into()), vec![user("hi")])]).await;
    assert_eq!(text_of(&turns[0]), "ok then.");
    assert_eq!(s.faults.stats().requests, 2);
}

#[tokio::test]
async fn brain_chain_apologises_when_every_model_is_down() {
    let s = sim(Provider::Anthropic, &[]).await;
    s.faults.inject(Fault::Overloaded, 100);
    let claude: Arc<dyn Brain> = Arc::new(ClaudeBrain::new(AnthropicClient::new(ep(&s)), agent(vec![], Some("claude-sonnet-4-6"))));
    let chain = BrainChain::new(vec![claude, Arc::new(ApologyBrain("Sorry, say that again?".into()))]);
    let turns = turn(&chain, &[(TurnInput::UserSaid("hi".into()), vec![user("hi")])]).await;
    assert_eq!(text_of(&turns[0]), "Sorry, say that again?");
}

async fn speak(tts: &dyn TextToSpeech, text: &[&str]) -> (usize, Vec<String>, bool) {
    let st = tts.open(TtsConfig { voice: "x".into(), language: "en-US".into(), sample_rate: 8000 }).await.unwrap();
    for t in text {
        st.input.send(TtsInput::Text(t.to_string())).await.unwrap();
    }
    st.input.send(TtsInput::Flush).await.unwrap();
    let mut events = st.events;
    let (mut samples, mut labels, mut done) = (0, Vec::new(), false);
    while let Some(e) = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("tts stalled") {
        match e {
            TtsEvent::Audio(c) => {
                samples += c.pcm.len();
                labels.extend(c.text);
            }
            TtsEvent::Done => {
                done = true;
                break;
            }
        }
    }
    (samples, labels, done)
}

#[tokio::test]
async fn cartesia_streams_a_turn_with_sentence_labels() {
    let s = sim(Provider::Cartesia, &[]).await;
    let tts = CartesiaTts::new(ep(&s), CartesiaConfig::default());
    let (samples, labels, done) = speak(&tts, &["We open at ", "eight. On Saturday ", "at nine."]).await;
    assert!(done);
    assert!(samples > 8000, "audio length follows the text: {samples}");
    assert_eq!(labels.join(" "), "We open at eight. On Saturday at nine.");
    // a second turn reuses the shared socket
    speak(&tts, &["Bye."]).await;
    assert_eq!(s.faults.stats().connections, 1);
}

#[tokio::test]
async fn tts_chain_finishes_the_turn_on_the_next_provider_when_a_socket_drops() {
    let c = sim(Provider::Cartesia, &[]).await;
    let sv = sim(Provider::Sarvam, &[]).await;
    c.faults.inject(Fault::DropMidStream, 1);
    let a: Arc<dyn TextToSpeech> = Arc::new(CartesiaTts::new(ep(&c), CartesiaConfig::default()));
    let b: Arc<dyn TextToSpeech> = Arc::new(SarvamTts::new(ep(&sv), Default::default()));
    let chain = TtsChain::new(vec![a, b], Duration::from_millis(1500));
    let t0 = std::time::Instant::now();
    let (samples, labels, done) = speak(&chain, &["First sentence here. ", "Second one."]).await;
    assert!(done && samples > 0);
    assert!(labels.join(" ").contains("Second one."), "{labels:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn sarvam_tts_speaks_hindi_and_reuses_its_socket() {
    let s = sim(Provider::Sarvam, &[]).await;
    let tts = SarvamTts::new(ep(&s), Default::default());
    let st = tts.open(TtsConfig { voice: "anushka".into(), language: "hi-IN".into(), sample_rate: 8000 }).await.unwrap();
    st.input.send(TtsInput::Text("नमस्ते, मैं आपकी कैसे मदद कर सकती हूँ?".into())).await.unwrap();
    st.input.send(TtsInput::Flush).await.unwrap();
    let mut ev = st.events;
    let mut got_audio = false;
    loop {
        match ev.recv().await {
            Some(TtsEvent::Audio(c)) => got_audio |= !c.pcm.is_empty(),
            Some(TtsEvent::Done) => break,
            None => panic!("closed early"),
        }
    }
    assert!(got_audio);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let again = tts.open(TtsConfig { voice: "anushka".into(), language: "hi-IN".into(), sample_rate: 8000 }).await.unwrap();
    drop(again);
    assert_eq!(s.faults.stats().connections, 1, "the finished socket was pooled");
    assert!(tts.open(TtsConfig { voice: "x".into(), language: "fr-FR".into(), sample_rate: 8000 }).await.is_err());
}

#[tokio::test]
async fn voyage_embeds_in_order_and_retries_a_429() {
    let s = sim(Provider::Voyage, &[]).await;
    s.faults.inject(Fault::RateLimited { retry_after_ms: 100 }, 1);
    let v = VoyageEmbedder::new(ep(&s), VoyageConfig { output_dimension: 256, ..Default::default() });
    let texts = vec!["opening hours on saturday".to_string(), "book an appointment".into(), "when are you open on saturday".into()];
    let e = v.embed(texts, EmbedKind::Document).await.unwrap();
    assert_eq!(e.len(), 3);
    assert_eq!(e[0].len(), 256);
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(dot(&e[0], &e[2]) > dot(&e[0], &e[1]), "similar texts score higher");
    let bad = VoyageEmbedder::new(Endpoint::new(s.url(), Secret::new("nope")), VoyageConfig::default());
    assert!(bad.embed(vec!["x".into()], EmbedKind::Query).await.unwrap_err().to_string().contains("401"));
}

/// Every fault the Anthropic simulator can inject, once: the turn still says the whole reply
/// (retried, or continued on the fallback model from the words already spoken).
#[tokio::test]
async fn claude_turns_survive_every_fault() {
    let faults = [Fault::DropMidStream, Fault::Malformed, Fault::ErrorAfterOk, Fault::Overloaded, Fault::RateLimited { retry_after_ms: 100 }, Fault::Slow { ms: 300 }, Fault::RejectHandshake { status: 500 }];
    for fault in faults {
        let s = sim(Provider::Anthropic, &["one two three four five."]).await;
        s.faults.inject(fault.clone(), 1);
        let brain = ClaudeBrain::new(AnthropicClient::new(ep(&s)), agent(vec![], Some("claude-sonnet-4-6")));
        let turns = turn(&brain, &[(TurnInput::UserSaid("hi".into()), vec![user("hi")])]).await;
        assert_eq!(text_of(&turns[0]), "one two three four five.", "{fault:?}: {:?}", turns[0]);
        assert!(!turns[0].iter().any(|e| matches!(e, BrainEvent::Failed(_))), "{fault:?}");
    }
}

/// Every TTS fault once, on a chain of two Cartesia endpoints: the turn is spoken to the end.
#[tokio::test]
async fn tts_turns_survive_every_fault() {
    let faults = [Fault::DropMidStream, Fault::Malformed, Fault::ErrorAfterOk, Fault::Slow { ms: 300 }, Fault::RejectHandshake { status: 503 }, Fault::RateLimited { retry_after_ms: 0 }];
    for fault in faults {
        let a = sim(Provider::Cartesia, &[]).await;
        let b = sim(Provider::Cartesia, &[]).await;
        a.faults.inject(fault.clone(), 1);
        let x: Arc<dyn TextToSpeech> = Arc::new(CartesiaTts::new(ep(&a), CartesiaConfig::default()));
        let y: Arc<dyn TextToSpeech> = Arc::new(CartesiaTts::new(ep(&b), CartesiaConfig::default()));
        let chain = TtsChain::new(vec![x, y], Duration::from_millis(1000));
        let (samples, labels, done) = speak(&chain, &["First sentence here. ", "Second one."]).await;
        assert!(done && samples > 0, "{fault:?}");
        assert!(labels.join(" ").ends_with("Second one."), "{fault:?}: {labels:?}");
    }
}

/// Every STT fault once, on Deepgram with Whisper-like fallback to Sarvam: the utterance is
/// transcribed.
#[tokio::test]
async fn stt_turns_survive_every_fault() {
    let faults = [Fault::DropMidStream, Fault::Close1011, Fault::Malformed, Fault::Slow { ms: 300 }, Fault::RejectHandshake { status: 503 }, Fault::RateLimited { retry_after_ms: 0 }];
    for fault in faults {
        let dg_sim = sim(Provider::Deepgram, &["book an appointment"]).await;
        let sv_sim = sim(Provider::Sarvam, &["book an appointment"]).await;
        dg_sim.faults.inject(fault.clone(), 1);
        let dg: Arc<dyn SpeechToText> = Arc::new(DeepgramStt::new(ep(&dg_sim), DeepgramConfig::default()));
        let sv: Arc<dyn SpeechToText> = Arc::new(SarvamStt::new(ep(&sv_sim), Default::default()));
        let chain = SttChain::new(vec![dg, sv], Duration::from_millis(1000));
        let mut st = chain.open(SttConfig { language: "en-IN".into(), sample_rate: 8000 }).await.unwrap();
        feed(&st.input, &tone(1200)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        st.input.send(SttInput::Finalize).await.unwrap();
        let (text, flushed) = next_final(&mut st.events).await;
        assert_eq!((text.as_str(), flushed), ("book an appointment", true), "{fault:?}");
    }
}

/// Cartesia closes idle sockets (after 5 minutes; 300 ms here): the next turn reconnects.
#[tokio::test]
async fn cartesia_reconnects_after_the_idle_close() {
    let cfg = SimConfig { idle_timeout: Duration::from_millis(300), ..Default::default() };
    let s = start(Provider::Cartesia, ([127, 0, 0, 1], 0).into(), cfg).await.unwrap();
    let tts = CartesiaTts::new(ep(&s), CartesiaConfig::default());
    assert!(speak(&tts, &["Hello."]).await.2);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(speak(&tts, &["Hello again."]).await.2, "the second turn spoke on a new socket");
    assert_eq!(s.faults.stats().connections, 2);
}
