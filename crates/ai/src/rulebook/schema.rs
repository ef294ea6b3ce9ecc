//! The rule-book format (TOML or YAML, the same fields) and its validation. See
//! `agents/clinic.toml` for an example and `agents/rulebook.schema.json` for the JSON Schema.

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
    #[serde(default, deserialize_with = "dtmf_keys")]
    pub dtmf: BTreeMap<String, String>,
    /// When no intent matches, answer from the agent's knowledge base if a passage scores at
    /// least this (cosine similarity); `None`: never (straight to `fallback`).
    #[serde(default)]
    pub knowledge_fallback: Option<f32>,
    #[serde(rename = "intent")]
    pub intents: Vec<Intent>,
    /// An agent file's `[profile]` and `[analysis]` tables belong to the agent loader: allowed
    /// beside a rule-book, not read here.
    #[serde(default, rename = "profile")]
    pub agent_profile: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "analysis")]
    pub agent_analysis: Option<serde::de::IgnoredAny>,
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

/// DTMF keys are strings; YAML reads an unquoted `1:` as a number, which is taken as its digits.
fn dtmf_keys<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize, PartialEq, Eq, PartialOrd, Ord)]
    #[serde(untagged)]
    enum Key {
        Text(String),
        Number(u64),
    }
    let map = BTreeMap::<Key, String>::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (match k { Key::Text(s) => s, Key::Number(n) => n.to_string() }, v)).collect())
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

/// The text format of a rule-book file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookFormat {
    Toml,
    Yaml,
}

impl BookFormat {
    /// By extension: `.toml`, `.yaml` or `.yml`.
    pub fn from_path(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("toml") => Ok(BookFormat::Toml),
            Some("yaml" | "yml") => Ok(BookFormat::Yaml),
            _ => Err(AiError::Config(format!("{}: a rule-book file ends in .toml, .yaml or .yml", path.display()))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BookFormat::Toml => "toml",
            BookFormat::Yaml => "yaml",
        }
    }
}

/// A rule-book text that does not load (bad syntax, unknown or missing fields, wrong types):
/// where (1-based, when the parser knows) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", at.map(|(l, c)| format!("line {l}, column {c}: ")).unwrap_or_default())]
pub struct SyntaxError {
    pub at: Option<(usize, usize)>,
    pub message: String,
}

impl SyntaxError {
    fn toml(text: &str, e: toml::de::Error) -> Self {
        let at = e.span().map(|s| line_col(text, s.start));
        SyntaxError { at, message: e.message().trim().to_string() }
    }

    fn yaml(e: serde_yaml_ng::Error) -> Self {
        let at = e.location().map(|l| (l.line(), l.column()));
        let mut message = e.to_string();
        if let Some((l, c)) = at {
            message = message.replace(&format!(" at line {l} column {c}"), "");
        }
        SyntaxError { at, message }
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

impl RuleBook {
    /// Loads and validates a rule-book file, TOML or YAML by its extension.
    pub fn from_file(path: &Path) -> Result<Self> {
        let format = BookFormat::from_path(path)?;
        let text = std::fs::read_to_string(path).map_err(|e| AiError::Config(format!("cannot read rule-book {}: {e}", path.display())))?;
        Self::from_str_as(&text, format).map_err(|e| AiError::Config(format!("{}: {e}", path.display())))
    }

    pub fn from_toml_str(s: &str) -> Result<Self> {
        Self::from_str_as(s, BookFormat::Toml)
    }

    pub fn from_yaml_str(s: &str) -> Result<Self> {
        Self::from_str_as(s, BookFormat::Yaml)
    }

    /// Parses and validates.
    pub fn from_str_as(s: &str, format: BookFormat) -> Result<Self> {
        let book = Self::parse(s, format).map_err(|e| AiError::Config(format!("invalid rule-book: {e}")))?;
        book.validate()?;
        Ok(book)
    }

    /// Parses without validating (see [`RuleBook::problems`]).
    pub fn parse(s: &str, format: BookFormat) -> std::result::Result<Self, SyntaxError> {
        match format {
            BookFormat::Toml => toml::from_str(s).map_err(|e| SyntaxError::toml(s, e)),
            BookFormat::Yaml => serde_yaml_ng::from_str(s).map_err(SyntaxError::yaml),
        }
    }

    pub fn intent(&self, name: &str) -> Option<usize> {
        self.intents.iter().position(|i| i.name == name)
    }

    fn validate(&self) -> Result<()> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        Err(AiError::Config(problems.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; ")))
    }

    /// Everything that makes this rule-book unusable, as (where, what): what loading rejects.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut bad = |at: String, m: String| out.push((at, m));
        if self.intents.is_empty() {
            bad("intent".into(), "a rule-book needs at least one [[intent]]".into());
        }
        if self.fallback.is_empty() {
            bad("fallback".into(), "`fallback` needs at least one line".into());
        }
        if !(0.0..=1.0).contains(&self.match_threshold) {
            bad("match_threshold".into(), format!("match_threshold {} is not in 0..1", self.match_threshold));
        }
        let mut names = HashSet::new();
        for i in &self.intents {
            let at = |f: &str| format!("intent.{}.{f}", i.name);
            if !names.insert(i.name.as_str()) {
                bad(at("name"), format!("intent `{}` is defined twice", i.name));
            }
            if i.examples.is_empty() {
                bad(at("examples"), format!("intent `{}` has no examples", i.name));
            }
            let slots: HashSet<&str> = i.slots.iter().map(|s| s.name.as_str()).collect();
            for (field, t) in [("reply", &i.reply), ("confirm", i.confirm.as_ref().unwrap_or(&String::new()))] {
                for var in template_vars(t) {
                    let knowledge = var == "knowledge" && matches!(i.action, Some(Action::Knowledge { .. }));
                    if !(slots.contains(var.as_str()) || var.starts_with("http.") || var.starts_with("env.") || var == "caller" || var == "call_id" || knowledge) {
                        bad(at(field), format!("intent `{}` {field}: unknown slot `{{{var}}}`", i.name));
                    }
                }
            }
            if let Some(Action::Http { url, method, .. }) = &i.action {
                if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://") || url.starts_with("{env.")) {
                    bad(at("action.url"), format!("intent `{}`: url `{url}` must be http(s):// or {{env.NAME}}", i.name));
                }
                if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
                    bad(at("action.method"), format!("intent `{}`: unsupported method `{method}`", i.name));
                }
            }
        }
        for (digit, intent) in &self.dtmf {
            if self.intent(intent).is_none() {
                bad(format!("dtmf.{digit}"), format!("dtmf `{digit}` names unknown intent `{intent}`"));
            }
        }
        out
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
    fn yaml_books_are_the_same_format() {
        let yaml = "name: x\ngreeting: hi\nfallback: [\"what?\"]\ndtmf:\n  1: a\n  \"*\": a\nintent:\n  - name: a\n    examples: [hello]\n    reply: ok\n    action: {kind: transfer, to: \"+15550100\"}\n";
        let b = RuleBook::from_yaml_str(yaml).unwrap();
        assert_eq!(b.dtmf.get("1").map(String::as_str), Some("a"));
        assert!(b.dtmf.contains_key("*"));
        assert!(matches!(&b.intents[0].action, Some(Action::Transfer { to, .. }) if to == "+15550100"));
        let e = RuleBook::parse("name: x\ngreting: hi\n", BookFormat::Yaml).unwrap_err();
        assert!(e.message.contains("greting") && e.at.is_some_and(|(l, _)| l == 2), "{e:?}");
        let e = RuleBook::parse("name: [x\n  y: {\n", BookFormat::Yaml).unwrap_err();
        assert!(e.at.is_some(), "{e:?}");
    }

    #[test]
    fn syntax_errors_have_a_line_and_column() {
        let e = RuleBook::parse("name = \"x\"\ngreeting = \"hi\"\nfallback = [\"a\",\n[[intent]]\n", BookFormat::Toml).unwrap_err();
        assert!(e.at.is_some_and(|(l, _)| l >= 3), "{e:?}");
        let e = RuleBook::parse(&MIN.replace("greeting", "greting"), BookFormat::Toml).unwrap_err();
        assert_eq!(e.at, Some((2, 1)), "{e:?}");
        assert!(e.to_string().starts_with("line 2, column 1: ") && e.message.contains("greting"), "{e}");
        assert_eq!(line_col("ab\ncdé\nx", 7), (2, 4));
    }

    #[test]
    fn files_pick_the_format_by_extension() {
        let dir = std::env::temp_dir().join(format!("cf-rulebook-ext-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.toml"), MIN).unwrap();
        std::fs::write(dir.join("a.yml"), "name: x\ngreeting: hi\nfallback: [what?]\nintent: [{name: a, examples: [hello], reply: ok}]\n").unwrap();
        std::fs::write(dir.join("a.json"), "{}").unwrap();
        assert_eq!(RuleBook::from_file(&dir.join("a.toml")).unwrap().name, "x");
        assert_eq!(RuleBook::from_file(&dir.join("a.yml")).unwrap().intents[0].reply, "ok");
        assert!(RuleBook::from_file(&dir.join("a.json")).unwrap_err().to_string().contains(".toml, .yaml or .yml"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn problems_are_all_listed_with_their_place() {
        let b = RuleBook::parse(&format!("{MIN}[dtmf]\n0 = \"human\"\n").replace("reply = \"ok\"", "reply = \"ok {when} {call_id} {env.X}\""), BookFormat::Toml).unwrap();
        let p = b.problems();
        assert_eq!(p.iter().map(|(at, _)| at.as_str()).collect::<Vec<_>>(), ["intent.a.reply", "dtmf.0"], "{p:?}");
    }

    #[test]
    fn templates_render() {
        let v = |k: &str| (k == "name").then(|| "Priya".to_string());
        assert_eq!(render("Hi {name}, {missing}!", &v), "Hi Priya, !");
        assert_eq!(template_vars("a {x} b {http.id}"), ["x", "http.id"]);
    }
}
