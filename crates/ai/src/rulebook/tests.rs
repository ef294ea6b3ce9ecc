//! Rule-book conversations against the example clinic agent (lexical matching only, plus a
//! deterministic bag-of-words embedder to check the embedding path).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::net_guard::{ToolHttp, ToolHttpPolicy};
use crate::{BrainEvent, CallAction, EmbedKind, Embedder, Message, Role, TurnInput};

const CLINIC: &str = include_str!("../../../../agents/clinic.toml");

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 24).unwrap() // a Tuesday
}

struct Call {
    s: session::Session,
    history: Vec<Message>,
}

impl Call {
    async fn new(embedder: Option<Arc<dyn Embedder>>) -> Call {
        let brain = RuleBookBrain::new(RuleBook::from_toml_str(CLINIC).unwrap(), embedder).await.unwrap();
        let s = session::Session::new(brain.book.clone(), brain.matcher.clone(), crate::CallContext { caller: "+15550100".into(), ..Default::default() }, today(), brain.http.clone());
        Call { s, history: Vec::new() }
    }

    async fn turn(&mut self, input: TurnInput) -> (String, Vec<BrainEvent>) {
        if let TurnInput::UserSaid(t) = &input {
            self.history.push(Message { role: Role::User, text: t.clone(), interrupted: false });
        }
        let mut rx = crate::BrainSession::respond(&mut self.s, input, &self.history).await.unwrap();
        let mut text = Vec::new();
        let mut other = Vec::new();
        while let Some(e) = rx.recv().await {
            match e {
                BrainEvent::Text(t) => text.push(t),
                e => other.push(e),
            }
        }
        let text = text.concat().trim().to_string();
        self.history.push(Message { role: Role::Agent, text: text.clone(), interrupted: false });
        (text, other)
    }

    async fn say(&mut self, t: &str) -> (String, Vec<BrainEvent>) {
        self.turn(TurnInput::UserSaid(t.into())).await
    }
}

fn intent(ev: &[BrainEvent]) -> Option<&str> {
    ev.iter().find_map(|e| if let BrainEvent::Intent { name, .. } = e { Some(name.as_str()) } else { None })
}

#[tokio::test]
async fn books_an_appointment_across_turns_and_says_goodbye() {
    let mut c = Call::new(None).await;
    let (g, _) = c.turn(TurnInput::CallStarted).await;
    assert!(g.starts_with("Thanks for calling Riverside"));
    let (r, ev) = c.say("what are your opening hour months at or days?").await; // as Whisper heard it
    assert_eq!(intent(&ev), Some("hours"));
    assert!(r.contains("Saturdays from 9 am to 1 pm"));
    let (r, ev) = c.say("I'd like to book an appointment.").await;
    assert_eq!(intent(&ev), Some("book"));
    assert_eq!(r, "Sure. Can I have your name, please?");
    let (r, _) = c.say("My name is Priya Shah.").await;
    assert_eq!(r, "What day would suit you?");
    let (r, _) = c.say("Tomorrow at 3 p.m.").await;
    assert_eq!(r, "So that's Priya Shah on Wednesday, November 25 at 3 PM. Shall I book it?");
    let (r, ev) = c.say("Yes please.").await;
    assert!(r.starts_with("You're all set, Priya Shah."), "{r}");
    assert!(matches!(&ev[..], [BrainEvent::ToolCalled { ok: true, .. }]), "{ev:?}");
    let (r, ev) = c.say("No, that's all. Goodbye.").await;
    assert!(r.contains("Goodbye"));
    assert!(ev.contains(&BrainEvent::Action(CallAction::EndCall { reason: "goodbye".into() })));
}

#[tokio::test]
async fn repeated_misses_escalate_to_a_human_and_dtmf_zero_transfers() {
    let mut c = Call::new(None).await;
    let (r, ev) = c.say("the weather is lovely").await;
    assert!(r.starts_with("Sorry, I didn't catch that") && ev.is_empty());
    let (r, ev) = c.say("purple elephants").await;
    assert!(r.contains("receptionist"));
    assert!(matches!(&ev[..], [BrainEvent::Action(CallAction::Transfer { to, .. })] if to == "+15550123000"));
    let (_, ev) = c.turn(TurnInput::Dtmf("0".into())).await;
    assert!(ev.iter().any(|e| matches!(e, BrainEvent::Action(CallAction::Transfer { .. }))));
}

#[tokio::test]
async fn a_clear_new_intent_switches_and_an_interrupted_question_is_asked_again() {
    let mut c = Call::new(None).await;
    c.say("I need to book an appointment").await;
    // The caller cut the agent off before it finished asking for the name.
    c.history.last_mut().unwrap().interrupted = true;
    c.history.last_mut().unwrap().text = "Sure.".into();
    let (r, _) = c.say("hmm").await;
    assert_eq!(r, "Sure. Can I have your name, please?");
    let (r, ev) = c.say("actually I want to cancel my appointment").await;
    assert_eq!(intent(&ev), Some("cancel"));
    assert_eq!(r, "Sure. What name is the appointment under?");
    let (r, _) = c.say("John Smith").await;
    assert_eq!(r, "And what day is it on?");
    let (r, _) = c.say("on Friday").await;
    assert!(r.contains("John Smith on Friday, November 27"), "{r}");
    let (r, _) = c.say("no").await;
    assert!(r.starts_with("Okay, I've left your appointment"));
}

/// Bag of hashed words: deterministic, and similar sentences share words.
struct HashEmbedder;

#[async_trait]
impl Embedder for HashEmbedder {
    fn name(&self) -> &'static str { "hash" }
    fn dim(&self) -> usize { 64 }
    async fn embed(&self, texts: Vec<String>, _k: EmbedKind) -> crate::Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| {
            let mut v = vec![0f32; 64];
            for w in matcher::content_words(t) {
                let h = w.bytes().fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
                v[(h % 64) as usize] += 1.0;
            }
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
            v.iter().map(|x| x / n).collect()
        }).collect())
    }
}

#[tokio::test]
async fn embedding_scores_route_paraphrases() {
    let mut c = Call::new(Some(Arc::new(HashEmbedder))).await;
    let (_, ev) = c.say("could I speak with a person please").await;
    assert_eq!(intent(&ev), Some("human"));
    let mut c = Call::new(Some(Arc::new(HashEmbedder))).await;
    let (r, ev) = c.say("sing me a song about the sea").await;
    assert!(intent(&ev).is_none() && r.starts_with("Sorry"), "{r} {ev:?}");
}

/// A one-shot HTTP server: answers `status` with `body`, returns the request it got.
async fn http_once(status: &str, body: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/bookings", l.local_addr().unwrap());
    let status = status.to_string();
    let h = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let mut req = Vec::new();
        loop {
            let n = s.read(&mut buf).await.unwrap();
            req.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&req).to_string();
            if let Some(i) = text.find("\r\n\r\n") {
                let len = text.lines().find_map(|l| l.to_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))).unwrap_or(0);
                if req.len() >= i + 4 + len || n == 0 { break }
            }
        }
        let resp = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        s.write_all(resp.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&req).to_string()
    });
    (url, h)
}

fn book_with_url(url: &str) -> RuleBook {
    RuleBook::from_toml_str(&CLINIC.replace("url = \"{env.BOOKING_URL}\"", &format!("url = \"{url}\"")).replace("We'll see you on {date} at {time}.", "Your reference is {http.id}.")).unwrap()
}

/// The tool servers here are on 127.0.0.1 over plain http: the network policy must allow
/// that explicitly (the default refuses it).
fn local_tools() -> ToolHttp {
    ToolHttp::new(ToolHttpPolicy::local(&["127.0.0.1/32"])).unwrap()
}

async fn booked(book: RuleBook) -> (String, Vec<BrainEvent>) {
    booked_with(book, local_tools()).await
}

async fn booked_with(book: RuleBook, http: ToolHttp) -> (String, Vec<BrainEvent>) {
    let brain = RuleBookBrain::new(book, None).await.unwrap().with_tool_http(http);
    let mut c = Call { s: session::Session::new(brain.book.clone(), brain.matcher.clone(), Default::default(), today(), brain.http.clone()), history: vec![] };
    c.say("book an appointment for tomorrow at 10 am, my name is Ana Lee").await;
    c.say("yes").await
}

#[tokio::test]
async fn http_action_posts_the_slots_and_uses_the_response() {
    let (url, req) = http_once("200 OK", r#"{"id":"BK-42"}"#).await;
    let (r, ev) = booked(book_with_url(&url)).await;
    assert!(r.contains("Your reference is BK-42."), "{r}");
    assert!(matches!(&ev[..], [BrainEvent::ToolCalled { ok: true, .. }]));
    let req = req.await.unwrap();
    assert!(req.starts_with("POST /bookings"));
    assert!(req.contains(r#""name":"Ana Lee""#) && req.contains(r#""time":"10 AM""#), "{req}");
}

#[tokio::test]
async fn http_action_failure_says_so() {
    let (url, _req) = http_once("503 Service Unavailable", "{}").await;
    let (r, ev) = booked(book_with_url(&url)).await;
    assert!(r.starts_with("Sorry, I couldn't reach the booking system"), "{r}");
    assert!(matches!(&ev[..], [BrainEvent::ToolCalled { ok: false, .. }]));
}

#[tokio::test]
async fn http_action_to_an_internal_address_is_refused_by_default() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/bookings?key=SECRET", l.local_addr().unwrap());
    let (r, ev) = booked_with(book_with_url(&url), ToolHttp::default()).await;
    assert!(r.starts_with("Sorry, I couldn't reach the booking system"), "{r}");
    match &ev[..] {
        [BrainEvent::ToolCalled { ok: false, detail, .. }] => {
            assert!(detail.contains("tool URL refused: plain http is not allowed"), "{detail}");
            assert!(!detail.contains("SECRET"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // https, still refused: loopback
    let (_, ev) = booked_with(book_with_url(&url.replace("http:", "https:")), ToolHttp::default()).await;
    assert!(matches!(&ev[..], [BrainEvent::ToolCalled { ok: false, detail, .. }] if detail.contains("127.0.0.1 is a loopback address")), "{ev:?}");
    // the booking server got no connection
    assert!(tokio::time::timeout(std::time::Duration::from_millis(150), l.accept()).await.is_err());
}

#[tokio::test]
async fn http_action_success_detail_has_no_query() {
    let (url, _req) = http_once("200 OK", r#"{"id":"BK-7"}"#).await;
    let (_, ev) = booked(book_with_url(&format!("{url}?key=SECRET"))).await;
    match &ev[..] {
        [BrainEvent::ToolCalled { ok: true, detail, .. }] => assert!(detail.starts_with("POST http://127.0.0.1:") && detail.ends_with("/bookings → 200") && !detail.contains("SECRET"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

/// A knowledge base that knows insurance and nothing else.
struct Faq;

#[async_trait]
impl crate::knowledge::KnowledgeSearch for Faq {
    async fn search(&self, query: &str, _k: usize) -> crate::Result<Vec<crate::knowledge::Passage>> {
        let q = query.to_lowercase();
        let score = if q.contains("medicaid") || q.contains("insurance") { 0.8 } else { 0.1 };
        Ok(vec![crate::knowledge::Passage { text: "Insurance and payment\nWe accept most major insurance plans, including Medicare and Medicaid. Please bring your insurance card and a photo ID to every visit.".into(), source: "Insurance".into(), score }])
    }
}

#[tokio::test]
async fn the_knowledge_base_answers_what_no_intent_covers() {
    assert!(CLINIC.contains("knowledge_fallback = 0.45"), "the example agent falls back to its knowledge base");
    let brain = RuleBookBrain::new(RuleBook::from_toml_str(CLINIC).unwrap(), None).await.unwrap().with_knowledge(Arc::new(Faq));
    let mut call = Call { s: session::Session::new(brain.book.clone(), brain.matcher.clone(), Default::default(), today(), brain.http.clone()).with_knowledge(brain.knowledge.clone()), history: Vec::new() };
    let (said, ev) = call.turn(TurnInput::UserSaid("Do you take Medicaid?".into())).await;
    assert!(said.contains("including Medicare and Medicaid"), "{said}");
    assert!(!said.contains("Insurance and payment"), "the heading is not read out: {said}");
    assert!(ev.iter().any(|e| matches!(e, BrainEvent::ToolCalled { name, ok: true, .. } if name == "knowledge")), "{ev:?}");
    // nothing close enough: the usual fallback
    let (said, _) = call.turn(TurnInput::UserSaid("Do you sell ice cream?".into())).await;
    assert!(said.starts_with("Sorry"), "{said}");
}

#[tokio::test]
async fn an_intent_can_answer_from_the_knowledge_base() {
    let extra = "\n[[intent]]\nname = \"coverage\"\nexamples = [\"do you take my insurance\", \"do you accept medicaid\"]\nreply = \"Sure. {knowledge}\"\non_error = \"Let me check that for you.\"\n[intent.action]\nkind = \"knowledge\"\n";
    let book = format!("{CLINIC}{extra}");
    let brain = RuleBookBrain::new(RuleBook::from_toml_str(&book).unwrap(), None).await.unwrap().with_knowledge(Arc::new(Faq));
    let mut call = Call { s: session::Session::new(brain.book.clone(), brain.matcher.clone(), Default::default(), today(), brain.http.clone()).with_knowledge(brain.knowledge.clone()), history: Vec::new() };
    let (said, _) = call.turn(TurnInput::UserSaid("do you accept medicaid".into())).await;
    assert!(said.starts_with("Sure. We accept most major insurance plans"), "{said}");
    // without a knowledge base the intent says its on_error line
    let bare = RuleBookBrain::new(RuleBook::from_toml_str(&book).unwrap(), None).await.unwrap();
    let mut call = Call { s: session::Session::new(bare.book.clone(), bare.matcher.clone(), Default::default(), today(), bare.http.clone()).with_knowledge(bare.knowledge.clone()), history: Vec::new() };
    assert_eq!(call.turn(TurnInput::UserSaid("do you accept medicaid".into())).await.0.trim(), "Let me check that for you.");
}

#[test]
fn spoken_answers_pick_the_sentence_that_answers() {
    let p = "Vaccinations\nWe offer flu shots every autumn. Flu shots are walk-in on Tuesday and Thursday mornings, no appointment needed. Travel vaccines need a consultation six weeks before you leave.";
    assert!(crate::knowledge::spoken_answer("when can I get a flu shot", p).contains("walk-in on Tuesday and Thursday mornings"));
    assert!(crate::knowledge::spoken_answer("travel vaccines?", p).starts_with("Travel vaccines need"));
}

/// `agents/rulebook.schema.json` describes what loads: the clinic agent (in TOML and as YAML)
/// is valid, and what loading rejects the schema rejects too.
#[test]
fn the_json_schema_describes_the_format() {
    let schema: serde_json::Value = serde_json::from_str(include_str!("../../../../agents/rulebook.schema.json")).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors = |doc: &serde_json::Value| v.iter_errors(doc).map(|e| format!("{e} at {}", e.instance_path())).collect::<Vec<_>>();
    let clinic: serde_json::Value = toml::from_str(CLINIC).unwrap();
    assert_eq!(errors(&clinic), Vec::<String>::new());
    let yaml: serde_json::Value = serde_yaml_ng::from_str(&author::convert(CLINIC, BookFormat::Toml, BookFormat::Yaml).unwrap()).unwrap();
    assert_eq!(errors(&yaml), Vec::<String>::new());
    for bad in [
        CLINIC.replace("greeting =", "greting ="),
        CLINIC.replace("kind = \"date\"", "kind = \"day\""),
        CLINIC.replace("kind = \"end_call\"", "kind = \"hang_up\""),
        CLINIC.replace("match_threshold = 0.55", "match_threshold = 1.5"),
        CLINIC.replace("to = \"+15550123000\"\nsay", "to = \"reception\"\nsay"),
    ] {
        let doc: serde_json::Value = toml::from_str(&bad).unwrap();
        assert!(!errors(&doc).is_empty(), "the schema accepts what it should not:\n{bad}");
        let loaded = RuleBook::from_toml_str(&bad).map(|b| lint::lint(&b, &Default::default()));
        assert!(loaded.as_ref().map_or(true, |l| lint::has_errors(l)), "loading or lint accepts it");
    }
}
