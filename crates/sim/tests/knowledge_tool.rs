//! The Claude brain with a knowledge base, against the Anthropic simulator: a question the
//! prompt cannot answer is looked up with `search_knowledge`, the passage comes back as the
//! tool result and is spoken; the tools and system prompt stay byte-identical across turns (the
//! prompt cache is read); a failed search is an error result and the call goes on.

use std::sync::Arc;
use std::time::Duration;

use callfunnel_ai::cloud::anthropic::{AnthropicClient, ClaudeBrain, LlmAgent, ToolSpec};
use callfunnel_ai::cloud::{Endpoint, Secret};
use callfunnel_ai::knowledge::{KnowledgeSearch, Passage};
use callfunnel_ai::{Brain, BrainEvent, CallContext, Message, ProviderUsage, Role, TurnInput};
use callfunnel_sim::{Provider, SimConfig, SimServer, start};
use parking_lot::Mutex;

/// A small knowledge base in memory: passages ranked by the words they share with the query.
struct MemoryKb {
    passages: Vec<Passage>,
    queries: Mutex<Vec<String>>,
    down: bool,
}

impl MemoryKb {
    fn clinic() -> Self {
        let p = |text: &str, source: &str| Passage { text: text.into(), source: source.into(), score: 0.0 };
        MemoryKb {
            passages: vec![
                p("Only trained assistance dogs are allowed inside the clinic. Pets must stay outside.", "Patient and visitor policy"),
                p("Free professional interpreters are available in more than 40 languages.", "Patient and visitor policy"),
                p("Free parking for patients is on level 2 of the Riverside garage.", "Parking and directions"),
                p("Flu shots are walk-in on Tuesday and Thursday mornings.", "Vaccinations"),
            ],
            queries: Mutex::new(Vec::new()),
            down: false,
        }
    }
}

fn words(s: &str) -> Vec<String> {
    s.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 2).map(|w| w.trim_end_matches('s').to_string()).collect()
}

#[async_trait::async_trait]
impl KnowledgeSearch for MemoryKb {
    async fn search(&self, query: &str, k: usize) -> callfunnel_ai::Result<Vec<Passage>> {
        self.queries.lock().push(query.to_string());
        if self.down {
            return Err(callfunnel_ai::AiError::Provider { provider: "knowledge", message: "vector store unreachable".into() });
        }
        let q = words(query);
        let mut hits: Vec<Passage> = self
            .passages
            .iter()
            .map(|p| Passage { score: words(&p.text).iter().filter(|w| q.contains(w)).count() as f32, ..p.clone() })
            .filter(|p| p.score > 0.0)
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(k);
        Ok(hits)
    }
}

async fn sim(script: &[&str]) -> SimServer {
    let cfg = SimConfig { script: script.iter().map(|s| s.to_string()).collect(), ..Default::default() };
    start(Provider::Anthropic, ([127, 0, 0, 1], 0).into(), cfg).await.unwrap()
}

const PROMPT: &str = "You are the receptionist of Riverside Family Clinic. Answer in short sentences. ";

fn brain(s: &SimServer, kb: Arc<MemoryKb>) -> ClaudeBrain {
    let mut agent = LlmAgent::new(PROMPT.repeat(30));
    agent.tools = vec![ToolSpec::EndCall { description: None }];
    agent.first_token_timeout_ms = 2000;
    ClaudeBrain::new(AnthropicClient::new(Endpoint::new(s.url(), Secret::new("sim-key"))), agent).with_knowledge(kb)
}

fn msg(role: Role, t: &str) -> Message {
    Message { role, text: t.into(), interrupted: false }
}

/// Runs the turns of one session; the events of each.
async fn session(brain: &dyn Brain, turns: &[(&str, Vec<Message>)]) -> Vec<Vec<BrainEvent>> {
    let mut s = brain.session(CallContext { call_id: "kb-1".into(), ..Default::default() }).await.unwrap();
    let mut all = Vec::new();
    for (said, history) in turns {
        let mut rx = s.respond(TurnInput::UserSaid(said.to_string()), history).await.unwrap();
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

fn usages(evs: &[BrainEvent]) -> Vec<ProviderUsage> {
    evs.iter().filter_map(|e| if let BrainEvent::Usage(u) = e { Some(u.clone()) } else { None }).collect()
}

#[tokio::test]
async fn a_question_is_answered_from_the_knowledge_base_and_the_prompt_cache_keeps_hitting() {
    let s = sim(&["You're welcome, goodbye."]).await;
    let kb = Arc::new(MemoryKb::clinic());
    let b = brain(&s, kb.clone());
    let q = "Can I bring my dog to the clinic?";
    let h1 = vec![msg(Role::User, q)];
    let mut h2 = h1.clone();
    h2.push(msg(Role::Agent, "Only trained assistance dogs are allowed inside the clinic."));
    h2.push(msg(Role::User, "Thanks a lot."));
    let turns = session(&b, &[(q, h1), ("Thanks a lot.", h2)]).await;

    // turn 1: the model called search_knowledge with the caller's question ...
    assert_eq!(*kb.queries.lock(), [q], "one search, with the question");
    let called: Vec<_> = turns[0].iter().filter_map(|e| if let BrainEvent::ToolCalled { name, ok, detail } = e { Some((name.clone(), *ok, detail.clone())) } else { None }).collect();
    assert_eq!(called.len(), 1, "{:?}", turns[0]);
    assert_eq!((called[0].0.as_str(), called[0].1), ("search_knowledge", true));
    assert!(called[0].2.starts_with("[1] From \"Patient and visitor policy\": Only trained assistance dogs"), "the passage with its document: {}", called[0].2);
    // ... and answered from the passage (the simulator reads the tool result back)
    let said = text_of(&turns[0]);
    assert!(said.contains("Only trained assistance dogs are allowed inside the clinic."), "{said}");
    assert!(!turns[0].iter().any(|e| matches!(e, BrainEvent::Failed(_) | BrainEvent::Action(_))), "{:?}", turns[0]);

    // turn 2: no question, no search
    assert_eq!(text_of(&turns[1]), "You're welcome, goodbye.");
    assert_eq!(kb.queries.lock().len(), 1);
    // the tools (search_knowledge last, with the breakpoint) and the system prompt are the same
    // bytes on every request: the simulator reads that prefix from its cache on the tool-result
    // round of turn 1 and on turn 2 (its tokens are ~bytes/4; the system prompt alone is ~600)
    let (u1, u2) = (usages(&turns[0]), usages(&turns[1]));
    assert_eq!(u1.len(), 2, "a tool round and the answer: {u1:?}");
    assert!(u1[0].cache_creation_input_tokens > 0 && u1[0].cache_read_input_tokens == 0, "{u1:?}");
    let system_tokens = (PROMPT.len() * 30 / 4) as u64;
    assert!(u1[1].cache_read_input_tokens > system_tokens, "{u1:?}");
    assert_eq!(u2[0].cache_read_input_tokens, u1[1].cache_read_input_tokens, "the same prefix: {u2:?}");
}

#[tokio::test]
async fn a_failed_search_is_an_error_result_and_the_call_goes_on() {
    let s = sim(&[]).await;
    let kb = Arc::new(MemoryKb { down: true, ..MemoryKb::clinic() });
    let b = brain(&s, kb.clone());
    let q = "Do you have interpreters?";
    let turns = session(&b, &[(q, vec![msg(Role::User, q)])]).await;
    let evs = &turns[0];
    assert!(evs.iter().any(|e| matches!(e, BrainEvent::ToolCalled { name, ok: false, detail } if name == "search_knowledge" && detail.contains("vector store unreachable"))), "{evs:?}");
    assert!(!evs.iter().any(|e| matches!(e, BrainEvent::Failed(_))), "{evs:?}");
    assert_eq!(usages(evs).len(), 2, "the error went back to the model, which answered: {evs:?}");
    assert!(!text_of(evs).is_empty());
}

#[tokio::test]
async fn without_a_knowledge_base_no_search_is_offered() {
    let s = sim(&["I'm not sure, let me transfer you."]).await;
    let mut agent = LlmAgent::new("You are a receptionist.");
    agent.first_token_timeout_ms = 2000;
    let b = ClaudeBrain::new(AnthropicClient::new(Endpoint::new(s.url(), Secret::new("sim-key"))), agent);
    let q = "Can I bring my dog to the clinic?";
    let turns = session(&b, &[(q, vec![msg(Role::User, q)])]).await;
    assert!(!turns[0].iter().any(|e| matches!(e, BrainEvent::ToolCalled { .. })), "{:?}", turns[0]);
    assert_eq!(text_of(&turns[0]), "I'm not sure, let me transfer you.");
}
