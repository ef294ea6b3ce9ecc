//! The deterministic analyzer of the embedded default. Summary: what the caller first asked,
//! what the agent handled (intents, tools), how the call ended. Extraction: each schema
//! property is filled by the slot extractor its name or format calls for (dates, times,
//! names, phone numbers, numbers), enums by the option the call names (or a sentiment
//! lexicon), booleans by whether an intent or tool of that name ran; what the call does not
//! say is null (or left out when the schema does not allow null). Success: one of
//! `success_intents` matched, else "an intent was handled and the agent did not give up".

use async_trait::async_trait;
use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::{AnalysisError, AnalysisSpec, CallAnalysis, CallAnalyzer, CallRecord, Speaker, check_extraction};
use crate::ProviderUsage;
use crate::rulebook::slots;

#[derive(Debug, Default, Clone, Copy)]
pub struct LocalAnalyzer;

#[async_trait]
impl CallAnalyzer for LocalAnalyzer {
    fn name(&self) -> String {
        "local".into()
    }

    async fn analyze(&self, call: &CallRecord, spec: &AnalysisSpec) -> Result<(CallAnalysis, Option<ProviderUsage>), AnalysisError> {
        let summary = summary(call);
        let extraction = match &spec.schema {
            Some(schema) => extract(call, schema, &summary),
            None => json!({}),
        };
        check_extraction(spec, &extraction).map_err(|e| AnalysisError::Failed(format!("the local analyzer cannot fill the extraction schema: {e} (allow null for values a call may not mention)")))?;
        let (success, success_reason) = success(call, spec);
        Ok((CallAnalysis { summary, extraction, success, success_reason, analyzer: "local".into() }, None))
    }
}

fn humanize(name: &str) -> String {
    name.replace(['_', '-'], " ")
}

fn summary(call: &CallRecord) -> String {
    let caller: Vec<&str> = call.lines.iter().filter(|l| l.speaker == Speaker::Caller).map(|l| l.text.trim()).filter(|t| !t.is_empty()).collect();
    let mut s = match caller.first() {
        Some(first) => format!("The caller said: \"{first}\"."),
        None => "The caller said nothing the agent could transcribe.".to_string(),
    };
    let mut handled: Vec<String> = Vec::new();
    for i in call.intents.iter().filter(|i| !matches!(i.as_str(), "fallback" | "greeting")) {
        let h = humanize(i);
        if !handled.contains(&h) {
            handled.push(h);
        }
    }
    if !handled.is_empty() {
        s.push_str(&format!(" The agent handled: {}.", handled.join(", ")));
    }
    let tools: Vec<String> = call.tools.iter().map(|(n, ok)| format!("{}{}", humanize(n), if *ok { "" } else { " (failed)" })).collect();
    if !tools.is_empty() {
        s.push_str(&format!(" Actions: {}.", tools.join(", ")));
    }
    let turns = caller.len();
    s.push_str(&format!(" The call ended ({}) after {turns} caller turn{} and {} s.", humanize(&call.ended_by), if turns == 1 { "" } else { "s" }, call.duration_ms / 1000));
    s
}

fn success(call: &CallRecord, spec: &AnalysisSpec) -> (bool, String) {
    if !spec.success_intents.is_empty() {
        // the goal listed first wins (a booking matters more than the opening hours asked before it)
        return match spec.success_intents.iter().find(|i| call.intents.contains(i)) {
            Some(i) => (true, format!("The agent completed `{i}`.")),
            None => (false, format!("None of the goal intents ({}) was reached.", spec.success_intents.join(", "))),
        };
    }
    let handled = call.intents.iter().any(|i| i != "fallback");
    let gave_up = call.ended_by == "failed" || call.tools.iter().any(|(_, ok)| !ok) || call.intents.last().is_some_and(|i| i == "fallback");
    match (handled, gave_up) {
        (true, false) => (true, "The agent understood and handled the caller's request.".into()),
        (true, true) => (false, "The agent handled part of the call, but a tool failed or the last request went unanswered.".into()),
        (false, _) => (false, "The agent did not recognise what the caller wanted.".into()),
    }
}

/// The words of the call the agent may act on: intents, tools, the caller's lines.
struct Evidence {
    caller: Vec<String>,
    keys: Vec<String>,
    date: NaiveDate,
}

/// A crude stem, enough to match "booked"/"book", "cancelled"/"cancel", "transfers"/"transfer".
fn stem(w: &str) -> String {
    let w = w.to_lowercase();
    let mut s = ["ing", "ed", "es", "s"].iter().find_map(|suffix| w.strip_suffix(suffix).filter(|s| s.len() >= 3)).unwrap_or(&w).trim_end_matches('e').to_string();
    let b = s.as_bytes();
    if b.len() >= 4 && b[b.len() - 1] == b[b.len() - 2] && !b"aeiou".contains(&b[b.len() - 1]) {
        s.pop();
    }
    s
}

impl Evidence {
    fn new(call: &CallRecord) -> Self {
        let caller = call.lines.iter().filter(|l| l.speaker == Speaker::Caller).map(|l| l.text.clone()).collect();
        let mut keys: Vec<String> = call.intents.iter().chain(call.tools.iter().filter(|(_, ok)| *ok).map(|(n, _)| n)).flat_map(|n| n.split(['_', '-', ' ']).map(stem).collect::<Vec<_>>()).collect();
        keys.sort();
        keys.dedup();
        Evidence { caller, keys, date: call.date.unwrap_or_else(|| chrono::Utc::now().date_naive()) }
    }

    /// The latest caller line that yields a value.
    fn last<T>(&self, f: impl Fn(&str) -> Option<T>) -> Option<T> {
        self.caller.iter().rev().find_map(|l| f(l))
    }

    fn names_action(&self, word: &str) -> bool {
        word.split(['_', '-', ' ']).map(stem).any(|w| w.len() >= 3 && self.keys.contains(&w))
    }

    fn mentions(&self, word: &str) -> bool {
        let w = stem(word);
        self.caller.iter().any(|l| slots::words(l).iter().any(|x| stem(x) == w))
    }
}

const POSITIVE: [&str; 10] = ["thank", "thanks", "great", "perfect", "wonderful", "good", "helpful", "appreciate", "awesome", "excellent"];
const NEGATIVE: [&str; 10] = ["angry", "terrible", "awful", "bad", "useless", "ridiculous", "frustrated", "annoyed", "upset", "complaint"];

fn sentiment(ev: &Evidence) -> &'static str {
    let (mut pos, mut neg) = (0, 0);
    for w in ev.caller.iter().flat_map(|l| slots::words(l)) {
        pos += usize::from(POSITIVE.contains(&w.as_str()));
        neg += usize::from(NEGATIVE.contains(&w.as_str()));
    }
    if pos > neg { "positive" } else if neg > pos { "negative" } else { "neutral" }
}

fn types(schema: &Value) -> Vec<String> {
    match &schema["type"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

fn nullable(schema: &Value) -> bool {
    types(schema).iter().any(|t| t == "null") || schema["enum"].as_array().is_some_and(|e| e.contains(&Value::Null))
}

fn extract(call: &CallRecord, schema: &Value, summary: &str) -> Value {
    let ev = Evidence::new(call);
    let mut out = Map::new();
    for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
        match property(&ev, name, prop, summary) {
            Some(v) => {
                out.insert(name.clone(), v);
            }
            None if nullable(prop) => {
                out.insert(name.clone(), Value::Null);
            }
            None => {}
        }
    }
    Value::Object(out)
}

fn property(ev: &Evidence, name: &str, prop: &Value, summary: &str) -> Option<Value> {
    let lname = name.to_lowercase();
    if let Some(options) = prop["enum"].as_array() {
        let strs: Vec<&str> = options.iter().filter_map(Value::as_str).collect();
        if lname.contains("sentiment") || strs.contains(&"positive") && strs.contains(&"negative") {
            let s = sentiment(ev);
            return strs.contains(&s).then(|| json!(s));
        }
        // an option the agent acted on, else one the caller said
        let hit = strs.iter().find(|o| ev.names_action(o)).or_else(|| strs.iter().find(|o| ev.mentions(o)));
        return hit.map(|o| json!(o)).or_else(|| strs.iter().find(|o| matches!(**o, "other" | "unknown" | "none")).map(|o| json!(o)));
    }
    let ty = types(prop);
    let is = |t: &str| ty.iter().any(|x| x == t);
    if is("boolean") {
        return Some(json!(ev.names_action(&lname)));
    }
    if is("integer") || is("number") {
        return ev.last(slots::number).map(|n| json!(n));
    }
    if !is("string") && !ty.is_empty() {
        return None;
    }
    let format = prop["format"].as_str().unwrap_or_default();
    if format == "date" || lname.contains("date") || lname.ends_with("day") {
        return ev.last(|l| slots::date(l, ev.date)).map(|d| json!(d.format("%Y-%m-%d").to_string()));
    }
    if format == "time" || lname.contains("time") {
        return ev.last(slots::time).map(|t| json!(t.format("%H:%M").to_string()));
    }
    if lname.contains("phone") {
        return ev.last(slots::phone).map(|p| json!(p));
    }
    if lname.contains("name") {
        return ev.last(|l| slots::name(l, false)).map(|n| json!(n));
    }
    if lname.contains("summary") {
        return Some(json!(summary));
    }
    if lname.contains("intent") || lname.contains("reason") || lname.contains("topic") {
        return ev.caller.first().map(|l| json!(l.trim()));
    }
    None
}
