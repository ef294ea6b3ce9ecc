//! Static checks of a rule-book before it takes calls: everything loading rejects, and what
//! would go wrong on a call — intents that no phrase or key reaches, placeholders that are never
//! filled (or read out as written), actions missing what they need, turns too long to speak,
//! example phrases that two intents share.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::matcher::{Matcher, content_words};
use super::schema::{Action, BookFormat, RuleBook, template_vars};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The rule-book must not take calls like this.
    Error,
    /// Works, but probably not as meant.
    Warning,
}

/// One finding: where (`intent.book.reply`, `dtmf.0`, `line 3, column 5`) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lint {
    pub severity: Severity,
    pub at: String,
    pub message: String,
}

impl std::fmt::Display for Lint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{s}: {}: {}", self.at, self.message)
    }
}

#[derive(Debug, Clone)]
pub struct LintOptions {
    /// A spoken turn longer than this many characters is flagged.
    pub max_chars: usize,
    /// ... or this many words.
    pub max_words: usize,
    /// Check that every `{env.NAME}` is set here (`CALLFUNNEL_NAME` or `NAME`).
    pub check_env: bool,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions { max_chars: 220, max_words: 35, check_env: false }
    }
}

pub fn has_errors(lints: &[Lint]) -> bool {
    lints.iter().any(|l| l.severity == Severity::Error)
}

/// Lints a rule-book text; a text that does not load gives one error with its line and column.
/// An agent file's `[profile]` and `[analysis]` sections are not part of the rule-book and are
/// skipped.
pub fn lint_text(text: &str, format: BookFormat, opts: &LintOptions) -> (Option<RuleBook>, Vec<Lint>) {
    match RuleBook::parse(&without_agent_sections(text, format), format) {
        Ok(book) => {
            let lints = lint(&book, opts);
            (Some(book), lints)
        }
        Err(e) => {
            let at = e.at.map(|(l, c)| format!("line {l}, column {c}")).unwrap_or_else(|| "file".into());
            (None, vec![Lint { severity: Severity::Error, at, message: e.message }])
        }
    }
}

/// Every finding, errors first (in the rule-book's order within each severity).
pub fn lint(book: &RuleBook, opts: &LintOptions) -> Vec<Lint> {
    let mut out = Out::default();
    for (at, m) in book.problems() {
        out.error(at, m);
    }
    spoken_texts(book, opts, &mut out);
    placeholders(book, opts, &mut out);
    for i in &book.intents {
        if let Some(a) = &i.action {
            action(a, &format!("intent.{}.action", i.name), &mut out);
        }
    }
    escalation(book, &mut out);
    keypad(book, &mut out);
    examples(book, &mut out);
    reachability(book, &mut out);
    out.0.sort_by_key(|l| l.severity);
    out.0
}

#[derive(Default)]
struct Out(Vec<Lint>);

impl Out {
    fn error(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.0.push(Lint { severity: Severity::Error, at: at.into(), message: message.into() });
    }
    fn warn(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.0.push(Lint { severity: Severity::Warning, at: at.into(), message: message.into() });
    }
}

/// Every line the agent may say, with where it is and whether placeholders in it are filled.
fn spoken(book: &RuleBook) -> Vec<(String, &str, bool)> {
    let mut v = vec![("greeting".to_string(), book.greeting.as_str(), true), ("silence".to_string(), book.silence.as_str(), false)];
    for (k, l) in book.fallback.iter().enumerate() {
        v.push((format!("fallback.{k}"), l.as_str(), false));
    }
    if let Some(Action::Transfer { say: Some(s), .. }) = &book.escalate {
        v.push(("escalate.say".into(), s.as_str(), false));
    }
    for i in &book.intents {
        let at = |f: &str| format!("intent.{}.{f}", i.name);
        let reply_said = !matches!(&i.action, Some(Action::Transfer { say: Some(_), .. }));
        if reply_said {
            v.push((at("reply"), i.reply.as_str(), true));
        }
        if let Some(c) = &i.confirm {
            v.push((at("confirm"), c.as_str(), true));
            v.push((at("declined"), i.declined.as_str(), false));
        }
        if i.action.as_ref().is_some_and(|a| matches!(a, Action::Http { .. } | Action::Knowledge { .. })) {
            v.push((at("on_error"), i.on_error.as_str(), false));
        }
        if let Some(Action::Transfer { say: Some(s), .. }) = &i.action {
            v.push((at("action.say"), s.as_str(), true));
        }
        for s in &i.slots {
            v.push((format!("intent.{}.slot.{}.prompt", i.name, s.name), s.prompt.as_str(), false));
        }
    }
    v
}

/// Empty lines, lines too long for one spoken turn, markup a voice would read out, and
/// placeholders in lines that are spoken as written.
fn spoken_texts(book: &RuleBook, opts: &LintOptions, out: &mut Out) {
    for (at, text, template) in spoken(book) {
        let knowledge_reply = at.ends_with(".reply") && book.intents.iter().any(|i| at == format!("intent.{}.reply", i.name) && matches!(i.action, Some(Action::Knowledge { .. })));
        if text.trim().is_empty() {
            if !knowledge_reply {
                out.error(&at, "is empty: the caller would hear nothing");
            }
            continue;
        }
        if !template && let Some(v) = template_vars(text).first() {
            out.error(&at, format!("is spoken as written, not a template: `{{{v}}}` would be read out"));
        }
        // a placeholder counts as one word of ten characters
        let filled = super::schema::render(text, &|_| Some("xxxxxxxxxx".into()));
        let (chars, words) = (filled.chars().count(), filled.split_whitespace().count());
        if chars > opts.max_chars || words > opts.max_words {
            out.warn(&at, format!("{words} words, {chars} characters: too long for one spoken turn (budget {} words, {} characters); shorten it or leave the detail to the knowledge base", opts.max_words, opts.max_chars));
        }
        if filled.contains("http://") || filled.contains("https://") || filled.contains(['*', '#', '<', '>', '|', '`']) || filled.contains("](") {
            out.warn(&at, "has markup or a link, which a voice reads out literally: write it as it should be said");
        }
    }
}

/// Placeholders that nothing fills, slots nothing uses, and (with `check_env`) unset variables.
fn placeholders(book: &RuleBook, opts: &LintOptions, out: &mut Out) {
    let common = |v: &str| v == "caller" || v == "call_id" || v.starts_with("env.");
    let mut env_vars: Vec<(String, String)> = template_vars(&book.greeting).into_iter().map(|v| ("greeting".to_string(), v)).collect();
    for v in template_vars(&book.greeting) {
        if !common(&v) {
            out.error("greeting", format!("`{{{v}}}` is never filled in the greeting (only {{caller}}, {{call_id}} and {{env.NAME}} are)"));
        }
    }
    for i in &book.intents {
        let at = |f: &str| format!("intent.{}.{f}", i.name);
        let slots: HashSet<&str> = i.slots.iter().map(|s| s.name.as_str()).collect();
        let mut seen = HashSet::new();
        for s in &i.slots {
            if !seen.insert(s.name.as_str()) {
                out.error(at(&format!("slot.{}", s.name)), format!("slot `{}` is declared twice: the second is never asked", s.name));
            }
        }
        let http = matches!(i.action, Some(Action::Http { .. }));
        let mut texts: Vec<(String, String)> = vec![(at("reply"), i.reply.clone())];
        if let Some(c) = &i.confirm {
            texts.push((at("confirm"), c.clone()));
        }
        // Loading already rejects unknown names in the reply and confirmation; a response
        // field only exists after an HTTP action, which runs after the confirmation.
        for v in template_vars(&i.reply).into_iter().filter(|v| v.starts_with("http.")) {
            if !http {
                out.error(at("reply"), format!("`{{{v}}}` is filled only by an http action's response, and this intent has none"));
            }
        }
        for v in template_vars(i.confirm.as_deref().unwrap_or("")).into_iter().filter(|v| v.starts_with("http.")) {
            out.error(at("confirm"), format!("`{{{v}}}` is not known yet when confirming: the action runs after the caller says yes"));
        }
        let mut action_texts: Vec<(String, String)> = Vec::new();
        match &i.action {
            Some(Action::Http { url, body, .. }) => {
                action_texts.push((at("action.url"), url.clone()));
                if let Some(b) = body {
                    action_texts.push((at("action.body"), json_strings(b).join(" ")));
                }
            }
            Some(Action::Transfer { say: Some(s), .. }) => action_texts.push((at("action.say"), s.clone())),
            _ => {}
        }
        for (where_, t) in &action_texts {
            for v in template_vars(t) {
                if !(slots.contains(v.as_str()) || common(&v)) {
                    out.error(where_, format!("`{{{v}}}` is never filled: declare a slot `{v}` in this intent (or use {{caller}}, {{call_id}}, {{env.NAME}})"));
                }
            }
        }
        texts.extend(action_texts);
        let used: HashSet<String> = texts.iter().flat_map(|(_, t)| template_vars(t)).collect();
        for s in &i.slots {
            if !used.contains(&s.name) {
                out.warn(at(&format!("slot.{}", s.name)), format!("slot `{}` is asked for but never used in the reply, confirmation or action", s.name));
            }
        }
        env_vars.extend(texts.into_iter().flat_map(|(w, t)| template_vars(&t).into_iter().map(move |v| (w.clone(), v))));
    }
    if opts.check_env {
        let mut reported = HashSet::new();
        for (at, v) in env_vars {
            let Some(name) = v.strip_prefix("env.") else { continue };
            let set = |k: &str| std::env::var(k).is_ok_and(|x| !x.trim().is_empty());
            if !set(&format!("CALLFUNNEL_{name}")) && !set(name) && reported.insert(name.to_string()) {
                out.error(at, format!("`{{env.{name}}}` is not set here (CALLFUNNEL_{name} or {name}): it would be empty on a call"));
            }
        }
    }
}

fn json_strings(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a.iter().flat_map(json_strings).collect(),
        serde_json::Value::Object(o) => o.values().flat_map(json_strings).collect(),
        _ => Vec::new(),
    }
}

/// What an action needs to work on a call.
fn action(a: &Action, at: &str, out: &mut Out) {
    match a {
        Action::Http { url, timeout_ms, .. } => {
            let url = url.trim();
            if url.is_empty() {
                out.error(format!("{at}.url"), "has no url: the request would only be recorded, and the caller told it worked");
            } else if url.starts_with("http://") || url.starts_with("https://") {
                // placeholders stand for one path or host segment each
                let probe = super::schema::render(url, &|_| Some("x".into()));
                match reqwest::Url::parse(&probe) {
                    Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => {}
                    Ok(_) => out.error(format!("{at}.url"), format!("`{url}` has no host")),
                    Err(e) => out.error(format!("{at}.url"), format!("`{url}` is not a valid URL: {e}")),
                }
                if url.starts_with("http://") {
                    out.warn(format!("{at}.url"), "plain http: tools are called over https only, unless [tools] allows http (development)");
                }
            }
            if *timeout_ms == 0 {
                out.error(format!("{at}.timeout_ms"), "0 ms: the request would always time out");
            } else if *timeout_ms > 10_000 {
                out.warn(format!("{at}.timeout_ms"), format!("{timeout_ms} ms of silence on the line is too long for a caller"));
            }
        }
        Action::Transfer { to, .. } => transfer_target(to, &format!("{at}.to"), out),
        Action::SendDtmf { digits } => {
            if digits.is_empty() {
                out.error(format!("{at}.digits"), "no digits to press");
            } else if let Err(e) = callfunnel_media_dsp::dtmf::tones(digits, 8000) {
                out.error(format!("{at}.digits"), format!("`{digits}` cannot be played: {e}"));
            }
        }
        Action::Knowledge { min_score } => {
            if !(0.0..=1.0).contains(min_score) {
                out.error(format!("{at}.min_score"), format!("{min_score} is not in 0..1"));
            }
        }
        Action::EndCall => {}
    }
}

/// An E.164 number or a SIP URI: what the carriers dial.
fn transfer_target(to: &str, at: &str, out: &mut Out) {
    let e164 = to.strip_prefix('+').is_some_and(|d| (7..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()) && !d.starts_with('0'));
    let sip = to.strip_prefix("sip:").is_some_and(|r| r.split_once('@').is_some_and(|(u, h)| !u.is_empty() && !h.is_empty()));
    if to.trim().is_empty() {
        out.error(at, "no transfer target: give an E.164 number (\"+15550123000\") or a SIP URI");
    } else if to.contains('{') {
        out.error(at, format!("`{to}` is not a template: give the number itself"));
    } else if !(e164 || sip) {
        out.error(at, format!("`{to}` is neither an E.164 number (\"+15550123000\") nor a SIP URI (\"sip:desk@pbx.example\")"));
    }
}

fn escalation(book: &RuleBook, out: &mut Out) {
    match &book.escalate {
        Some(Action::Transfer { to, .. }) => transfer_target(to, "escalate.to", out),
        Some(Action::EndCall) => {}
        Some(other) => {
            let kind = match other {
                Action::Http { .. } => "http",
                Action::SendDtmf { .. } => "send_dtmf",
                _ => "knowledge",
            };
            out.error("escalate.kind", format!("escalation does nothing with a `{kind}` action: use transfer or end_call"));
        }
        None => {}
    }
    if book.escalate.is_some() && book.max_fallbacks == 0 {
        out.warn("max_fallbacks", "0: the very first miss escalates");
    }
    if let Some(k) = book.knowledge_fallback
        && !(0.0..=1.0).contains(&k)
    {
        out.error("knowledge_fallback", format!("{k} is not in 0..1"));
    }
}

/// Keypad entries arrive as digits and `*` (a `#` ends an entry and is dropped, so only a lone
/// `#` arrives as itself), at most 32 keys.
fn keypad(book: &RuleBook, out: &mut Out) {
    for key in book.dtmf.keys() {
        let ok = key == "#" || (!key.is_empty() && key.len() <= 32 && key.chars().all(|c| c.is_ascii_digit() || c == '*'));
        if !ok {
            out.error(format!("dtmf.{key}"), format!("`{key}` can never be entered: keypad entries are digits and `*` (a final `#` ends the entry), or a lone `#`"));
        }
    }
}

/// An example phrase as the matcher sees it (its content words; the words when it has none).
fn normalized(phrase: &str) -> String {
    let mut cw: Vec<String> = content_words(phrase).into_iter().collect();
    if cw.is_empty() {
        cw = super::slots::words(phrase);
    }
    cw.sort();
    cw.join(" ")
}

/// Example phrases (and keywords) that two intents share.
fn examples(book: &RuleBook, out: &mut Out) {
    let mut seen: HashMap<String, (&str, &str)> = HashMap::new();
    for i in &book.intents {
        for e in &i.examples {
            let at = format!("intent.{}.examples", i.name);
            if e.trim().is_empty() {
                out.error(&at, "an example phrase is empty");
                continue;
            }
            match seen.get(&normalized(e)) {
                Some((other, first)) if *other != i.name => out.error(&at, format!("\"{e}\" is the same to the matcher as \"{first}\" of intent `{other}`: one phrase cannot lead to two intents")),
                Some(_) => out.warn(&at, format!("\"{e}\" repeats another example of this intent")),
                None => {
                    seen.insert(normalized(e), (i.name.as_str(), e.as_str()));
                }
            }
        }
    }
    let mut keywords: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for i in &book.intents {
        for k in i.keywords.iter().flat_map(|k| content_words(k)).collect::<HashSet<_>>() {
            keywords.entry(k).or_default().push(i.name.as_str());
        }
    }
    for (k, names) in keywords.into_iter().filter(|(_, n)| n.len() > 1) {
        out.warn(format!("intent.{}.keywords", names[1]), format!("keyword `{k}` is shared with intent `{}`, which wins ties", names[0]));
    }
}

/// How an intent is chosen (see the session): a keypad entry in `dtmf`, or what the caller says
/// scoring highest (ties go to the earlier intent) and at least `match_threshold`. Scored here
/// lexically, the matching that always runs; an embedding model scores an intent's own
/// example 1.0, so with one an example reaches its intent unless an earlier intent also scores
/// 1.0 on it.
fn reachability(book: &RuleBook, out: &mut Out) {
    let all: Vec<(usize, String)> = book.intents.iter().enumerate().flat_map(|(k, i)| i.examples.iter().map(move |e| (k, e.clone()))).collect();
    let matcher = Matcher::new(book, all, None, None);
    let keyed: HashSet<&str> = book.dtmf.values().map(String::as_str).collect();
    for (k, intent) in book.intents.iter().enumerate() {
        if intent.examples.is_empty() {
            continue; // loading rejects it already
        }
        let at = format!("intent.{}.examples", intent.name);
        let (mut lexical, mut embedded, mut misrouted) = (false, false, Vec::new());
        for e in intent.examples.iter().filter(|e| !e.trim().is_empty()) {
            let Some((scores, best)) = score(&matcher, e) else { continue };
            match best {
                Some((b, s)) if b == k && s >= book.match_threshold => lexical = true,
                Some((b, s)) if s >= book.match_threshold => misrouted.push(format!("\"{e}\" picks `{}`", book.intents[b].name)),
                _ => misrouted.push(format!("\"{e}\" matches nothing without an embedding model")),
            }
            let same = |j: usize| book.intents[j].examples.iter().any(|x| normalized(x) == normalized(e));
            if !(0..k).any(|j| scores[j] >= 0.999 || same(j)) {
                embedded = true;
            }
        }
        let keys = keyed.contains(intent.name.as_str());
        if !keys && !lexical && !embedded {
            out.error(&at, format!("intent `{}` is unreachable: no keypad entry leads to it and an earlier intent wins each of its examples ({})", intent.name, misrouted.join("; ")));
        } else if !keys && !lexical {
            out.warn(&at, format!("intent `{}` is reached only with an embedding model: {}; add examples or keywords with words of their own", intent.name, misrouted.join("; ")));
        } else {
            for m in misrouted.iter().filter(|m| m.contains(" picks `")) {
                out.warn(&at, format!("{m}, not `{}`: reword it or it leads elsewhere", intent.name));
            }
        }
    }
}

/// Lexical scores of every intent for `text`, and the one the session would pick.
fn score(matcher: &Matcher, text: &str) -> Option<(Vec<f32>, Option<(usize, f32)>)> {
    // without an embedder both resolve at once; nothing here waits
    let scores = futures::executor::block_on(matcher.scores(text)).ok()?;
    let best = futures::executor::block_on(matcher.best(text)).ok()?;
    Some((scores, best))
}

/// Blanks an agent file's `[profile]`/`[analysis]` sections (not rule-book fields), keeping
/// every other line where it was so positions in errors stay right.
fn without_agent_sections(text: &str, format: BookFormat) -> String {
    let agent_key = |l: &str| ["profile", "analysis"].iter().any(|k| l.strip_prefix(k).is_some_and(|r| r.trim_start().starts_with([']', '.', ':'])));
    let mut skipping = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        match format {
            BookFormat::Toml if t.starts_with('[') => skipping = agent_key(t.trim_start_matches('[').trim_start()),
            BookFormat::Yaml if !line.starts_with([' ', '\t', '#', '-']) && !t.is_empty() => skipping = agent_key(t),
            _ => {}
        }
        out.push(if skipping { "" } else { line });
    }
    out.join("\n")
}

#[cfg(test)]
#[path = "lint_tests.rs"]
mod tests;
