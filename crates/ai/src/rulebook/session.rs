//! One call's dialogue with a rule-book: which intent is active, which slots are filled,
//! what is awaited (a slot or a yes/no confirmation), and consecutive misses.
//!
//! Interruptions: `history` holds what the caller actually heard. If the agent's last message
//! was cut off, the caller may not have heard the question; an answer that does not fill the
//! awaited slot then gets the question again (not counted as a miss).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use tokio::sync::{mpsc, Mutex};

use super::matcher::Matcher;
use super::schema::{render, Action, RuleBook};
use super::slots::{self, yes_no};
use crate::net_guard::{ToolHttp, redact_url};
use crate::text::SentenceSplitter;
use crate::{BrainEvent, BrainSession, CallAction, CallContext, Message, Result, Role, TurnInput};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Awaiting {
    Slot(usize),
    Confirm,
}

#[derive(Debug, Clone)]
struct Active {
    intent: usize,
    values: BTreeMap<String, String>,
    awaiting: Option<Awaiting>,
}

struct Inner {
    book: Arc<RuleBook>,
    matcher: Arc<Matcher>,
    ctx: CallContext,
    today: NaiveDate,
    active: Option<Active>,
    misses: u32,
    http: ToolHttp,
    knowledge: Option<Arc<dyn crate::knowledge::KnowledgeSearch>>,
    /// What the caller said this turn (a knowledge answer looks it up).
    said: String,
}

pub struct Session {
    inner: Arc<Mutex<Inner>>,
}

impl Session {
    pub fn new(book: Arc<RuleBook>, matcher: Arc<Matcher>, ctx: CallContext, today: NaiveDate, http: ToolHttp) -> Self {
        let inner = Inner { book, matcher, ctx, today, active: None, misses: 0, http, knowledge: None, said: String::new() };
        Session { inner: Arc::new(Mutex::new(inner)) }
    }

    pub fn with_knowledge(self, k: Option<Arc<dyn crate::knowledge::KnowledgeSearch>>) -> Self {
        if let Ok(mut i) = self.inner.try_lock() {
            i.knowledge = k;
        }
        self
    }
}

#[async_trait]
impl BrainSession for Session {
    async fn respond(&mut self, input: TurnInput, history: &[Message]) -> Result<mpsc::Receiver<BrainEvent>> {
        let (tx, rx) = mpsc::channel(32);
        let inner = self.inner.clone();
        let interrupted = last_agent_interrupted(history);
        // The work (embedding, HTTP tools) runs off the caller's task: a barge-in can cancel it.
        tokio::spawn(async move {
            let mut g = inner.lock().await;
            let mut out = Out { tx, ok: true };
            if let Err(e) = g.handle(input, interrupted, &mut out).await {
                tracing::error!(error = %e, "rule-book turn failed");
                let line = g.book.fallback[0].clone();
                out.say(&line).await;
            }
        });
        Ok(rx)
    }
}

fn last_agent_interrupted(history: &[Message]) -> bool {
    history.iter().rev().find(|m| m.role == Role::Agent).is_some_and(|m| m.interrupted)
}

struct Out {
    tx: mpsc::Sender<BrainEvent>,
    ok: bool,
}

impl Out {
    async fn send(&mut self, e: BrainEvent) {
        if self.ok && self.tx.send(e).await.is_err() {
            self.ok = false; // the turn was cancelled
        }
    }

    /// Streams a reply sentence by sentence.
    async fn say(&mut self, text: &str) {
        let mut s = SentenceSplitter::default();
        let mut parts = s.push(text);
        parts.extend(s.finish());
        // Each piece ends with a space, as streamed LLM text does, so pieces concatenate cleanly.
        for p in parts {
            self.send(BrainEvent::Text(format!("{p} "))).await;
        }
    }
}

impl Inner {
    async fn handle(&mut self, input: TurnInput, interrupted: bool, out: &mut Out) -> Result<()> {
        match input {
            TurnInput::CallStarted => {
                let g = self.render(&self.book.greeting.clone(), &BTreeMap::new());
                out.say(&g).await;
            }
            TurnInput::Silence => match self.active.as_ref().and_then(|a| a.awaiting.map(|w| (a.clone(), w))) {
                Some((a, w)) => self.ask(&a, w, out).await,
                None => out.say(&self.book.silence.clone()).await,
            },
            TurnInput::Dtmf(d) => match { self.said.clear(); self.book.dtmf.get(&d).and_then(|n| self.book.intent(n)) } {
                Some(i) => self.start(i, 1.0, "", out).await?,
                None => self.miss(out).await,
            },
            TurnInput::UserSaid(text) => self.user(&text, interrupted, out).await?,
        }
        Ok(())
    }

    async fn user(&mut self, text: &str, interrupted: bool, out: &mut Out) -> Result<()> {
        self.said = text.to_string();
        let best = self.matcher.best(text).await?;
        let threshold = self.book.match_threshold;
        let Some(mut a) = self.active.clone().filter(|a| a.awaiting.is_some()) else {
            return match best {
                Some((i, score)) if score >= threshold => self.start(i, score, text, out).await,
                _ => {
                    self.miss(out).await;
                    Ok(())
                }
            };
        };
        // Another intent said clearly ("actually, cancel that") wins over slot filling.
        let switch = best.filter(|&(i, s)| i != a.intent && s >= threshold + 0.1);
        match a.awaiting {
            Some(Awaiting::Confirm) => match yes_no(text) {
                Some(true) => self.complete(a, out).await?,
                Some(false) => {
                    let line = self.book.intents[a.intent].declined.clone();
                    self.active = None;
                    out.say(&line).await;
                }
                None => match switch {
                    Some((i, s)) => self.start(i, s, text, out).await?,
                    None if interrupted => self.ask(&a, Awaiting::Confirm, out).await,
                    None => {
                        let q = self.render(self.book.intents[a.intent].confirm.as_deref().unwrap_or(""), &a.values);
                        out.say(&format!("Sorry, was that a yes or a no? {q}")).await;
                    }
                },
            },
            Some(Awaiting::Slot(k)) => {
                let slot = self.book.intents[a.intent].slots[k].clone();
                let value = slots::extract(slot.kind, text, self.today, true);
                // A bare name or free text is a weak reading: a clear other intent wins over it.
                let weak = matches!(slot.kind, super::SlotKind::Name | super::SlotKind::Text) && slots::name(text, false).is_none();
                let value = value.filter(|_| !(weak && switch.is_some()));
                match (value, switch) {
                    (None, Some((i, s))) => self.start(i, s, text, out).await?,
                    (Some(v), _) => {
                        a.values.insert(slot.name.clone(), v);
                        self.fill_from(&mut a, text, false);
                        self.misses = 0;
                        self.next(a, out).await?;
                    }
                    (None, None) if interrupted => self.ask(&a, Awaiting::Slot(k), out).await,
                    (None, None) => {
                        self.misses += 1;
                        if self.misses >= self.book.max_fallbacks && self.book.escalate.is_some() {
                            self.escalate(out).await;
                        } else {
                            out.say(&format!("Sorry, I didn't catch that. {}", slot.prompt)).await;
                        }
                    }
                }
            }
            None => {}
        }
        Ok(())
    }

    /// Fills any still-missing slots that `text` mentions (names only when introduced).
    fn fill_from(&self, a: &mut Active, text: &str, bare: bool) {
        for s in &self.book.intents[a.intent].slots {
            if !a.values.contains_key(&s.name) {
                let bare_ok = bare && !matches!(s.kind, super::SlotKind::Name | super::SlotKind::Text);
                if let Some(v) = slots::extract(s.kind, text, self.today, bare_ok) {
                    a.values.insert(s.name.clone(), v);
                }
            }
        }
    }

    async fn start(&mut self, i: usize, score: f32, text: &str, out: &mut Out) -> Result<()> {
        self.misses = 0;
        out.send(BrainEvent::Intent { name: self.book.intents[i].name.clone(), score }).await;
        let mut a = Active { intent: i, values: BTreeMap::new(), awaiting: None };
        self.fill_from(&mut a, text, true);
        self.next(a, out).await
    }

    /// Asks for the next missing slot, or for confirmation, or completes the intent.
    async fn next(&mut self, mut a: Active, out: &mut Out) -> Result<()> {
        let intent = &self.book.intents[a.intent];
        if let Some(k) = intent.slots.iter().position(|s| !a.values.contains_key(&s.name)) {
            a.awaiting = Some(Awaiting::Slot(k));
        } else if intent.confirm.is_some() && a.awaiting != Some(Awaiting::Confirm) {
            a.awaiting = Some(Awaiting::Confirm);
        } else {
            return self.complete(a, out).await;
        }
        let w = a.awaiting.unwrap_or(Awaiting::Confirm);
        self.active = Some(a.clone());
        self.ask(&a, w, out).await;
        Ok(())
    }

    async fn ask(&self, a: &Active, w: Awaiting, out: &mut Out) {
        let intent = &self.book.intents[a.intent];
        let q = match w {
            Awaiting::Slot(k) => intent.slots[k].prompt.clone(),
            Awaiting::Confirm => self.render(intent.confirm.as_deref().unwrap_or(""), &a.values),
        };
        out.say(&q).await;
    }

    async fn complete(&mut self, a: Active, out: &mut Out) -> Result<()> {
        self.active = None;
        self.misses = 0;
        let intent = self.book.intents[a.intent].clone();
        let mut vars = a.values.clone();
        match &intent.action {
            Some(Action::Http { method, url, body, timeout_ms }) => match self.http(&intent.name, method, url, body.as_ref(), *timeout_ms, &vars).await {
                Ok((fields, detail)) => {
                    out.send(BrainEvent::ToolCalled { name: intent.name.clone(), ok: true, detail }).await;
                    vars.extend(fields);
                    out.say(&self.render(&intent.reply, &vars)).await;
                }
                Err(detail) => {
                    out.send(BrainEvent::ToolCalled { name: intent.name.clone(), ok: false, detail }).await;
                    out.say(&intent.on_error).await;
                }
            },
            Some(Action::Transfer { to, say, warm }) => {
                out.say(&self.render(say.as_deref().unwrap_or(&intent.reply), &vars)).await;
                out.send(BrainEvent::Action(CallAction::Transfer { to: to.clone(), reason: intent.name.clone(), warm: *warm, summary: None })).await;
            }
            Some(Action::SendDtmf { digits }) => {
                out.say(&self.render(&intent.reply, &vars)).await;
                out.send(BrainEvent::Action(CallAction::SendDtmf { digits: digits.clone() })).await;
            }
            Some(Action::EndCall) => {
                out.say(&self.render(&intent.reply, &vars)).await;
                out.send(BrainEvent::Action(CallAction::EndCall { reason: intent.name.clone() })).await;
            }
            Some(Action::Knowledge { min_score }) => match self.look_up(*min_score, out).await {
                Some(answer) => {
                    vars.insert("knowledge".into(), answer.clone());
                    let reply = if intent.reply.trim().is_empty() { answer } else { self.render(&intent.reply, &vars) };
                    out.say(&reply).await;
                }
                None => out.say(&intent.on_error).await,
            },
            None => out.say(&self.render(&intent.reply, &vars)).await,
        }
        Ok(())
    }

    /// The knowledge base's answer to what the caller said, if a passage is close enough.
    async fn look_up(&self, min_score: f32, out: &mut Out) -> Option<String> {
        let k = self.knowledge.as_ref()?;
        if self.said.trim().is_empty() {
            return None;
        }
        match k.search(&self.said, 3).await {
            Ok(hits) => {
                let best = hits.into_iter().next().filter(|h| h.score >= min_score)?;
                out.send(BrainEvent::ToolCalled { name: "knowledge".into(), ok: true, detail: format!("{} ({:.2})", best.source, best.score) }).await;
                Some(crate::knowledge::spoken_answer(&self.said, &best.text))
            }
            Err(e) => {
                out.send(BrainEvent::ToolCalled { name: "knowledge".into(), ok: false, detail: e.to_string() }).await;
                None
            }
        }
    }

    async fn miss(&mut self, out: &mut Out) {
        if let Some(min) = self.book.knowledge_fallback
            && let Some(answer) = self.look_up(min, out).await
        {
            self.misses = 0;
            out.say(&answer).await;
            return;
        }
        self.misses += 1;
        if self.misses >= self.book.max_fallbacks && self.book.escalate.is_some() {
            self.escalate(out).await;
        } else {
            let lines = &self.book.fallback;
            let line = lines[(self.misses as usize - 1).min(lines.len() - 1)].clone();
            out.say(&line).await;
        }
    }

    async fn escalate(&mut self, out: &mut Out) {
        self.misses = 0;
        self.active = None;
        match self.book.escalate.clone() {
            Some(Action::Transfer { to, say, warm }) => {
                out.say(say.as_deref().unwrap_or("Let me put you through to someone who can help.")).await;
                out.send(BrainEvent::Action(CallAction::Transfer { to, reason: "escalation after repeated misunderstandings".into(), warm, summary: None })).await;
            }
            Some(Action::EndCall) => out.send(BrainEvent::Action(CallAction::EndCall { reason: "escalation".into() })).await,
            _ => {}
        }
    }

    /// Calls an HTTP tool; its JSON response fields become `{http.FIELD}`.
    async fn http(&self, name: &str, method: &str, url: &str, body: Option<&serde_json::Value>, timeout_ms: u64, vars: &BTreeMap<String, String>) -> std::result::Result<(BTreeMap<String, String>, String), String> {
        let url = self.render(url, vars);
        let body = body.map(|b| render_json(b, &|k| self.var(k, vars)));
        if url.is_empty() {
            return Ok((BTreeMap::new(), format!("no URL configured: recorded {}", body.map(|b| b.to_string()).unwrap_or_default())));
        }
        // through the SSRF guard; for GET the body's fields become the query
        let (status, text) = self.http.send(method, &url, body.as_ref(), timeout_ms).await.map_err(|e| format!("{name}: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(format!("{name}: HTTP {status}"));
        }
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        let fields = json.as_object().map(|o| o.iter().map(|(k, v)| (format!("http.{k}"), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect()).unwrap_or_default();
        Ok((fields, format!("{method} {} → {status}", redact_url(&url))))
    }

    fn var(&self, k: &str, vars: &BTreeMap<String, String>) -> Option<String> {
        if let Some(v) = vars.get(k) {
            return Some(v.clone());
        }
        if let Some(env) = k.strip_prefix("env.") {
            return std::env::var(format!("CALLFUNNEL_{env}")).ok().or_else(|| std::env::var(env).ok());
        }
        match k {
            "caller" => Some(self.ctx.caller.clone()),
            "call_id" => Some(self.ctx.call_id.clone()),
            _ => None,
        }
    }

    fn render(&self, t: &str, vars: &BTreeMap<String, String>) -> String {
        render(t, &|k| self.var(k, vars))
    }
}

fn render_json(v: &serde_json::Value, vars: &dyn Fn(&str) -> Option<String>) -> serde_json::Value {
    match v {
        serde_json::Value::String(s) => serde_json::Value::String(render(s, vars)),
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(|x| render_json(x, vars)).collect()),
        serde_json::Value::Object(o) => serde_json::Value::Object(o.iter().map(|(k, x)| (k.clone(), render_json(x, vars))).collect()),
        other => other.clone(),
    }
}
