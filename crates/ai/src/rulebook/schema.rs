//! The rule-book format (TOML) and its validation. See `agents/clinic.toml` for an example and
//! `agents/rulebook.schema.json` for the JSON Schema.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use crate::{AiError, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleBook {
    pub name: String,
    pub greeting: String,
    /// Said when nothing matches; the n-th consecutive miss uses the n-th line (last repeats).
    pub fallback: Vec<String>,
    /// After this many consecutive misses, `escalate` runs.
    #[serde(default = "default_max_fallbacks")]
    pub max_fallbacks: u32,
    pub escalate: Option<Action>,
    #[serde(default = "default_silence")]
    pub silence: String,
    /// Minimum combined score (0..1) for an intent to match.
    #[serde(default = "default_threshold")]
    pub match_threshold: f32,
    /// DTMF digit → intent name.
    #[serde(default)]
    pub dtmf: BTreeMap<String, String>,
    /// When no intent matches, answer from the agent's knowledge base if a passage scores at
    /// least this (cosine similarity); `None`: never (straight to `fallback`).
    #[serde(default)]
    pub knowledge_fallback: Option<f32>,
    #[serde(rename = "intent")]
    pub intents: Vec<Intent>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub name: String,
    pub examples: Vec<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default, rename = "slot")]
    pub slots: Vec<Slot>,
    /// Asked once every slot is filled, before the action runs (yes/no).
    pub confirm: Option<String>,
    /// Said after a "no" to `confirm`.
    #[serde(default = "default_declined")]
    pub declined: String,
    /// The reply; `{slot}`, `{http.FIELD}` and `{caller}` are filled in.
    pub reply: String,
    pub action: Option<Action>,
    /// Said instead of `reply` if the action fails.
    #[serde(default = "default_on_error")]
    pub on_error: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slot {
    pub name: String,
    pub kind: SlotKind,
    pub prompt: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    Name,
    Date,
    Time,
    Number,
    Phone,
    YesNo,
    Text,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Calls an HTTP tool. An empty `url` (e.g. an unset `{env.X}`) records the request in the
    /// call timeline without calling out.
    Http {
        #[serde(default = "default_method")]
        method: String,
        url: String,
        #[serde(default)]
        body: Option<serde_json::Value>,
        #[serde(default = "default_timeout")]
        timeout_ms: u64,
    },
    Transfer {
        to: String,
        say: Option<String>,
        /// Brief the human with a summary of the call before putting the caller through.
        #[serde(default)]
        warm: bool,
    },
    EndCall,
    /// Press keys on the line (e.g. to navigate the other side's IVR).
    SendDtmf { digits: String },
    /// Answer from the agent's knowledge base: `{knowledge}` in the reply is the best passage's
    /// answer to what the caller said (the reply defaults to just that); `on_error` when the
    /// knowledge base has nothing close enough.
    Knowledge {
        #[serde(default = "default_min_score")]
        min_score: f32,
    },
}

fn default_min_score() -> f32 {
    0.35
}

fn default_max_fallbacks() -> u32 { 2 }
fn default_silence() -> String { "Are you still there?".into() }
fn default_threshold() -> f32 { 0.55 }
fn default_declined() -> String { "Okay, I won't do that. What would you like instead?".into() }
fn default_on_error() -> String { "Sorry, I couldn't do that right now. Let me put you through to someone who can help.".into() }
fn default_method() -> String { "POST".into() }
fn default_timeout() -> u64 { 3000 }

impl RuleBook {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| AiError::Config(format!("cannot read rule-book {}: {e}", path.display())))?;
        Self::from_toml_str(&text).map_err(|e| AiError::Config(format!("{}: {e}", path.display())))
    }

    pub fn from_toml_str(s: &str) -> Result<Self> {
        let book: RuleBook = toml::from_str(s).map_err(|e| AiError::Config(format!("invalid rule-book: {e}")))?;
        book.validate()?;
        Ok(book)
    }

    pub fn intent(&self, name: &str) -> Option<usize> {
        self.intents.iter().position(|i| i.name == name)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(AiError::Config(m));
        if self.intents.is_empty() {
            return bad("a rule-book needs at least one [[intent]]".into());
        }
        if self.fallback.is_empty() {
            return bad("`fallback` needs at least one line".into());
        }
        if !(0.0..=1.0).contains(&self.match_threshold) {
            return bad(format!("match_threshold {} is not in 0..1", self.match_threshold));
        }
        let mut names = HashSet::new();
        for i in &self.intents {
            if !names.insert(i.name.as_str()) {
                return bad(format!("intent `{}` is defined twice", i.name));
            }
            if i.examples.is_empty() {
                return bad(format!("intent `{}` has no examples", i.name));
            }
            let slots: HashSet<&str> = i.slots.iter().map(|s| s.name.as_str()).collect();
            for (field, t) in [("reply", &i.reply), ("confirm", i.confirm.as_ref().unwrap_or(&String::new()))] {
                for var in template_vars(t) {
                    let knowledge = var == "knowledge" && matches!(i.action, Some(Action::Knowledge { .. }));
                    if !(slots.contains(var.as_str()) || var.starts_with("http.") || var == "caller" || knowledge) {
                        return bad(format!("intent `{}` {field}: unknown slot `{{{var}}}`", i.name));
                    }
                }
            }
            if let Some(Action::Http { url, method, .. }) = &i.action {
                if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://") || url.starts_with("{env.")) {
                    return bad(format!("intent `{}`: url `{url}` must be http(s):// or {{env.NAME}}", i.name));
                }
                if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
                    return bad(format!("intent `{}`: unsupported method `{method}`", i.name));
                }
            }
        }
        for (digit, intent) in &self.dtmf {
            if self.intent(intent).is_none() {
                return bad(format!("dtmf `{digit}` names unknown intent `{intent}`"));
            }
        }
        Ok(())
    }
}

/// `{name}` placeholders in a template.
pub fn template_vars(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(a) = rest.find('{') {
        let Some(b) = rest[a..].find('}') else { break };
        out.push(rest[a + 1..a + b].trim().to_string());
        rest = &rest[a + b + 1..];
    }
    out
}

/// Fills `{var}` placeholders; unknown ones become empty.
pub fn render(t: &str, vars: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = t;
    while let Some(a) = rest.find('{') {
        let Some(b) = rest[a..].find('}') else { break };
        out.push_str(&rest[..a]);
        out.push_str(&vars(rest[a + 1..a + b].trim()).unwrap_or_default());
        rest = &rest[a + b + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "name = \"x\"\ngreeting = \"hi\"\nfallback = [\"what?\"]\n[[intent]]\nname = \"a\"\nexamples = [\"hello\"]\nreply = \"ok\"\n";

    #[test]
    fn validation_names_the_problem() {
        RuleBook::from_toml_str(MIN).unwrap();
        let e = |s: &str| RuleBook::from_toml_str(s).unwrap_err().to_string();
        assert!(e(&format!("{MIN}[[intent]]\nname = \"a\"\nexamples = [\"x\"]\nreply = \"y\"\n")).contains("`a` is defined twice"));
        assert!(e(&MIN.replace("examples = [\"hello\"]", "examples = []")).contains("`a` has no examples"));
        assert!(e(&MIN.replace("reply = \"ok\"", "reply = \"ok {when}\"")).contains("unknown slot `{when}`"));
        assert!(e(&format!("{MIN}[dtmf]\n0 = \"human\"\n")).contains("unknown intent `human`"));
        assert!(e(&MIN.replace("greeting", "greting")).contains("greting"));
        assert!(e(&format!("{MIN}[intent.action]\nkind = \"http\"\nurl = \"ftp://x\"\n")).contains("must be http"));
    }

    #[test]
    fn templates_render() {
        let v = |k: &str| (k == "name").then(|| "Priya".to_string());
        assert_eq!(render("Hi {name}, {missing}!", &v), "Hi Priya, !");
        assert_eq!(template_vars("a {x} b {http.id}"), ["x", "http.id"]);
    }
}
