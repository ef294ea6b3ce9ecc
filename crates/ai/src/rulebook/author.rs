//! Drafting a rule-book with Claude (Opus by default) from a business's own documents (SOPs,
//! FAQs). The system prompt teaches the format — how a call runs, the JSON Schema and the clinic
//! example — in one stable block, so prompt caching applies across drafts and repair rounds;
//! the documents follow in the first user message (cached too). Each reply's rule-book is taken
//! out of its fenced block, parsed, validated and linted; its errors go back to the model for a
//! corrected whole rule-book, up to `attempts` requests in all. Warnings do not block.

use std::path::Path;

use super::lint::{Lint, LintOptions, Severity, has_errors, lint_text};
use super::schema::{BookFormat, RuleBook};
use crate::cloud::anthropic::complete::add_usage;
use crate::cloud::anthropic::stream::Usage;
use crate::cloud::anthropic::wire::{Block, CacheControl, Request, WireMessage, WireRole};
use crate::cloud::anthropic::{AnthropicClient, ClientError};
use crate::knowledge::{ExtractError, Format, extract};

/// The model that drafts rule-books unless told otherwise.
pub const DEFAULT_MODEL: &str = "claude-opus-4-5";

const SCHEMA: &str = include_str!("../../../../agents/rulebook.schema.json");
const EXAMPLE: &str = include_str!("../../../../agents/clinic.toml");
/// About 100k tokens of documents: enough for a business's SOPs and FAQs.
const MAX_DOCUMENT_CHARS: usize = 400_000;

/// A document's name (its path under the folder) and text.
#[derive(Debug, Clone)]
pub struct Document {
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct AuthorOptions {
    pub model: String,
    /// The format of the rule-book asked for (and of [`Draft::text`]).
    pub format: BookFormat,
    /// Requests in all: the first draft and the repairs.
    pub attempts: u32,
    pub max_tokens: u32,
    pub lint: LintOptions,
}

impl Default for AuthorOptions {
    fn default() -> Self {
        AuthorOptions { model: DEFAULT_MODEL.into(), format: BookFormat::Toml, attempts: 3, max_tokens: 16_000, lint: LintOptions::default() }
    }
}

/// A rule-book that loads and has no lint errors.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The rule-book as the model wrote it (comments kept), in the format asked for.
    pub text: String,
    pub book: RuleBook,
    pub warnings: Vec<Lint>,
    /// Requests it took (1 = no repair).
    pub attempts: u32,
    pub usage: Usage,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    #[error("{0}")]
    Documents(String),
    #[error("the model could not be reached: {0}")]
    Client(#[from] ClientError),
    /// Still invalid after every attempt; `last_draft` is kept so nothing is lost.
    #[error("the draft is still invalid after {attempts} attempts:\n{}", list(problems))]
    Rejected { attempts: u32, problems: Vec<Lint>, last_draft: String },
}

fn list(lints: &[Lint]) -> String {
    lints.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}

/// The documents under `path` (a folder, searched recursively, or one file): text, Markdown,
/// HTML and PDF, as plain text, in path order.
pub fn read_documents(path: &Path) -> Result<Vec<Document>, AuthorError> {
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            let entries = std::fs::read_dir(&p).map_err(|e| AuthorError::Documents(format!("cannot read {}: {e}", p.display())))?;
            stack.extend(entries.flatten().map(|e| e.path()));
        } else if p.is_file() {
            let name = p.to_string_lossy().to_string();
            if p.extension().is_some() && Format::guess(&name).is_ok() {
                files.push(p);
            } else if p == path {
                return Err(AuthorError::Documents(format!("{}: not a .txt, .md, .html or .pdf document", p.display())));
            }
        } else {
            return Err(AuthorError::Documents(format!("{} does not exist", p.display())));
        }
    }
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        let raw = std::fs::read(&f).map_err(|e| AuthorError::Documents(format!("cannot read {}: {e}", f.display())))?;
        let name = f.strip_prefix(path).ok().filter(|r| !r.as_os_str().is_empty()).unwrap_or(&f).to_string_lossy().to_string();
        let format = Format::detect(&name, &raw).map_err(|e| AuthorError::Documents(format!("{}: {e}", f.display())))?;
        match extract(&raw, format) {
            Ok(x) => docs.push(Document { name, text: x.text }),
            Err(ExtractError::Empty) => tracing::warn!(file = %f.display(), "skipped: no text"),
            Err(e) => return Err(AuthorError::Documents(format!("{}: {e}", f.display()))),
        }
    }
    if docs.is_empty() {
        return Err(AuthorError::Documents(format!("no documents with text (.txt, .md, .html, .pdf) under {}", path.display())));
    }
    let total: usize = docs.iter().map(|d| d.text.chars().count()).sum();
    if total > MAX_DOCUMENT_CHARS {
        return Err(AuthorError::Documents(format!("the documents hold {total} characters, more than {MAX_DOCUMENT_CHARS}: keep the SOPs and FAQs a phone agent needs (the rest can go to its knowledge base)")));
    }
    Ok(docs)
}

/// Drafts a rule-book from `docs`, repairing it until it loads without lint errors.
pub async fn author(client: &AnthropicClient, docs: &[Document], opts: &AuthorOptions) -> Result<Draft, AuthorError> {
    let system = vec![Block::Text { text: system_prompt(opts), cache_control: Some(CacheControl::ephemeral()) }];
    let mut messages = vec![WireMessage {
        role: WireRole::User,
        content: vec![Block::Text { text: documents(docs), cache_control: Some(CacheControl::ephemeral()) }, Block::text(task(opts.format))],
    }];
    let mut usage = Usage::default();
    let mut last = (String::new(), Vec::new());
    let attempts = opts.attempts.max(1);
    for attempt in 1..=attempts {
        let req = Request { model: opts.model.clone(), max_tokens: opts.max_tokens, stream: true, system: system.clone(), tools: Vec::new(), messages: messages.clone(), temperature: None, tool_choice: None };
        let reply = client.complete(&req).await?;
        add_usage(&mut usage, &reply.usage);
        let cut = reply.stop_reason.as_deref() == Some("max_tokens");
        let (text, mut problems) = match check(&reply.text, opts) {
            Ok((text, book, warnings)) if !cut => {
                tracing::info!(attempt, warnings = warnings.len(), "rule-book draft accepted");
                return Ok(Draft { text, book, warnings, attempts: attempt, usage });
            }
            Ok((text, ..)) => (text, Vec::new()),
            Err(rejected) => rejected,
        };
        if cut {
            let m = format!("the reply was cut off at {} tokens: write a shorter complete rule-book (fewer, tighter examples and replies)", opts.max_tokens);
            problems.insert(0, Lint { severity: Severity::Error, at: "reply".into(), message: m });
        }
        tracing::warn!(attempt, problems = problems.len(), "rule-book draft rejected");
        let said = if reply.text.trim().is_empty() { "(no answer)".to_string() } else { reply.text };
        messages.push(WireMessage { role: WireRole::Assistant, content: vec![Block::text(said)] });
        messages.push(WireMessage { role: WireRole::User, content: vec![Block::text(repair(&problems, opts.format))] });
        last = (text, problems);
    }
    Err(AuthorError::Rejected { attempts, problems: last.1, last_draft: last.0 })
}

/// The rule-book in a reply, in the format asked for: parsed, validated and linted. Err: the
/// draft text (as found) and its errors.
pub fn check(reply: &str, opts: &AuthorOptions) -> Result<(String, RuleBook, Vec<Lint>), (String, Vec<Lint>)> {
    let (text, labelled) = fenced_block(reply);
    let other = match opts.format {
        BookFormat::Toml => BookFormat::Yaml,
        BookFormat::Yaml => BookFormat::Toml,
    };
    // a block labelled with the other format is read as that; an unlabelled one as either
    let format = match labelled {
        Some(f) => f,
        None if RuleBook::parse(&text, opts.format).is_err() && RuleBook::parse(&text, other).is_ok() => other,
        None => opts.format,
    };
    let (book, lints) = lint_text(&text, format, &opts.lint);
    let Some(book) = book else { return Err((text, lints)) };
    let text = if format == opts.format {
        text
    } else {
        match convert(&text, format, opts.format) {
            Ok(t) => t,
            Err(e) => return Err((text, vec![Lint { severity: Severity::Error, at: "file".into(), message: format!("answer in {}: {e}", opts.format.name().to_uppercase()) }])),
        }
    };
    if has_errors(&lints) {
        return Err((text, lints.into_iter().filter(|l| l.severity == Severity::Error).collect()));
    }
    Ok((text, book, lints))
}

/// The rule-book text of a reply and the format its fence names: the first block labelled
/// toml or yaml, else the longest fenced block (an unclosed one runs to the end), else the reply
/// from its first line that looks like a rule-book, without trailing prose.
pub fn fenced_block(reply: &str) -> (String, Option<BookFormat>) {
    let mut blocks: Vec<(Option<BookFormat>, Vec<&str>)> = Vec::new();
    let mut open: Option<(Option<BookFormat>, Vec<&str>)> = None;
    for line in reply.lines() {
        let t = line.trim_start();
        let fence = t.strip_prefix("```").or_else(|| t.strip_prefix("~~~"));
        match (open.take(), fence) {
            (None, Some(info)) => {
                let label = match info.trim().to_ascii_lowercase().as_str() {
                    "toml" => Some(BookFormat::Toml),
                    "yaml" | "yml" => Some(BookFormat::Yaml),
                    _ => None,
                };
                open = Some((label, Vec::new()));
            }
            (Some(b), Some(_)) => blocks.push(b),
            (Some((label, mut lines)), None) => {
                lines.push(line);
                open = Some((label, lines));
            }
            (None, None) => {}
        }
    }
    blocks.extend(open);
    let pick = blocks.iter().find(|(l, _)| l.is_some()).or_else(|| blocks.iter().max_by_key(|(_, lines)| lines.iter().map(|l| l.len()).sum::<usize>()));
    if let Some((label, lines)) = pick {
        return (lines.join("\n") + "\n", *label);
    }
    (unfenced(reply), None)
}

/// A reply without fences: from the first line that looks like a rule-book (a comment, a table
/// header or a `key =`/`key:` line), and without a trailing paragraph of prose.
fn unfenced(reply: &str) -> String {
    let looks_like_book = |l: &str| {
        let key: String = l.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        l.starts_with('#') || l.starts_with('[') || l.starts_with("---") || (!key.is_empty() && l[key.len()..].trim_start().starts_with(['=', ':']))
    };
    let lines: Vec<&str> = reply.lines().collect();
    let start = lines.iter().position(|l| looks_like_book(l)).unwrap_or(0);
    let mut body = &lines[start..];
    // drop closing prose: a last paragraph none of whose lines looks like the rule-book
    if let Some(gap) = body.iter().rposition(|l| l.trim().is_empty()) {
        let tail = &body[gap + 1..];
        if !tail.is_empty() && tail.iter().all(|l| !looks_like_book(l) && !l.starts_with([' ', '\t', '-', ']', '"', '}'])) {
            body = &body[..gap];
        }
    }
    body.join("\n") + "\n"
}

/// The same rule-book in the other format (comments are lost; fields in the schema's order).
pub fn convert(text: &str, from: BookFormat, to: BookFormat) -> Result<String, String> {
    let mut v: serde_yaml_ng::Value = match from {
        BookFormat::Toml => toml::from_str(text).map_err(|e| e.to_string())?,
        BookFormat::Yaml => serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?,
    };
    drop_nulls(&mut v);
    in_schema_order(&mut v);
    match to {
        BookFormat::Toml => toml::to_string(&v).map_err(|e| e.to_string()),
        BookFormat::Yaml => serde_yaml_ng::to_string(&v).map_err(|e| e.to_string()),
    }
}

/// TOML has no null: an absent field means the same.
fn drop_nulls(v: &mut serde_yaml_ng::Value) {
    match v {
        serde_yaml_ng::Value::Mapping(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        serde_yaml_ng::Value::Sequence(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Fields as the schema lists them (TOML parsing sorts them), so a converted rule-book reads
/// like a written one; an action's `body` is left as it is.
fn in_schema_order(v: &mut serde_yaml_ng::Value) {
    const ORDER: [&str; 29] = [
        "name", "kind", "greeting", "fallback", "max_fallbacks", "knowledge_fallback", "silence", "match_threshold", "escalate", "dtmf", "intent",
        "examples", "keywords", "slot", "prompt", "confirm", "declined", "reply", "method", "url", "body", "timeout_ms", "to", "say", "warm", "digits", "min_score", "action", "on_error",
    ];
    match v {
        serde_yaml_ng::Value::Mapping(m) => {
            let mut entries: Vec<(serde_yaml_ng::Value, serde_yaml_ng::Value)> = std::mem::take(m).into_iter().collect();
            entries.sort_by_key(|(k, _)| k.as_str().and_then(|k| ORDER.iter().position(|o| *o == k)).unwrap_or(ORDER.len()));
            for (k, x) in entries.iter_mut() {
                if k.as_str() != Some("body") {
                    in_schema_order(x);
                }
            }
            *m = entries.into_iter().collect();
        }
        serde_yaml_ng::Value::Sequence(a) => a.iter_mut().for_each(in_schema_order),
        _ => {}
    }
}

fn fence(format: BookFormat) -> String {
    format!("```{}", format.name())
}

/// The stable instructions: the same for every tenant and every round (cached).
pub fn system_prompt(opts: &AuthorOptions) -> String {
    let example = match opts.format {
        BookFormat::Toml => EXAMPLE.to_string(),
        BookFormat::Yaml => convert(EXAMPLE, BookFormat::Toml, BookFormat::Yaml).unwrap_or_else(|_| EXAMPLE.to_string()),
    };
    let (words, chars, f, name) = (opts.lint.max_words, opts.lint.max_chars, fence(opts.format), opts.format.name().to_uppercase());
    format!(
        r#"You write rule-books for callfunnel, a platform that answers a business's phone calls with a voice agent. A rule-book is the agent's whole behaviour and it is deterministic: no language model runs during the call, and every word the agent says is a line of the rule-book, read aloud by text-to-speech.

How a call runs:
- The call opens with `greeting`.
- Each thing the caller says is scored against every intent: the share of an example phrase's content words that the caller used (small words like "I", "the", "can", "my" do not count), a hit on one of the intent's `keywords`, and, when a sentence-embedding model is available, similarity to the examples. The best intent wins if it scores at least `match_threshold`; on a tie the intent listed first wins. So an example that contains every content word of an earlier intent's example goes to that earlier intent.
- A matched intent asks for each of its slots (`slot`) in order with the slot's `prompt` (details the caller already gave are picked up), asks `confirm` (yes/no) if it has one, then runs its `action` and says `reply`. After a "no" to `confirm` it says `declined`; if the action fails it says `on_error`.
- Slot kinds: name, date, time, number, phone, yes_no, text (free text).
- When nothing matches, the n-th miss in a row says the n-th `fallback` line; after `max_fallbacks` misses in a row, `escalate` runs (a transfer to a person, or end_call). `silence` is said when the caller says nothing.
- `dtmf` maps keypad entries ("0", "1", ...) to intents.
- Actions: `http` (calls the business's system; `{{http.FIELD}}` in the reply is a field of its JSON answer), `transfer` (to an E.164 number or a SIP URI; `warm` true briefs the person first), `end_call`, `send_dtmf`, `knowledge` (answers from the business's documents, indexed as its knowledge base: `{{knowledge}}` in the reply is the answer).
- `knowledge_fallback` (0 to 1): when no intent matches, answer from the documents if a passage is at least this similar; 0.45 works well.

Templates: `greeting`, `reply`, `confirm`, a transfer's `say` and an http action's `url` and `body` may hold placeholders: `{{slot}}` (a slot of the same intent), `{{http.FIELD}}` (in the reply of an intent with an http action), `{{knowledge}}` (knowledge action), `{{caller}}`, `{{call_id}}`, `{{env.NAME}}` (a setting of the deployment). Every other line (fallback, silence, prompts, declined, on_error, escalate's say) is spoken exactly as written: never put a placeholder there.

How to write one:
1. Use only facts from the documents. Never invent opening hours, prices, addresses, phone numbers or policies. When the documents do not give something an intent needs, leave it out or offer to put the caller through.
2. Write for the ear: short sentences a good receptionist would say, each line at most {words} words and {chars} characters; no markdown, lists, emoji, links or symbols; numbers and times as they are said ("9 am", "nine to five").
3. One intent per reason people call: each question the documents answer, each task (booking, cancelling, rescheduling, ...), a person, goodbye. Give each intent 4 to 8 varied example phrases in a caller's own words and a few keywords of its own. No two intents share an example phrase or a keyword, and no example may contain every content word of another intent's example.
4. Always include a `human` intent (transfer to the business's number from the documents), a `goodbye` intent (end_call), an `escalate` to a person (end_call if the documents give no number to transfer to) and fallback lines that say what the agent can help with. Put keypad shortcuts in `dtmf` ("0" for a person).
5. Tasks collect their details in slots, confirm them, and send them with an http action whose url is `{{env.NAME}}` (e.g. `{{env.BOOKING_URL}}`) unless the documents give the https address of the business's system. Every placeholder must be filled by a slot of that intent, and every slot must be used.
6. Long or detailed answers (price lists, policies) belong to the knowledge base: set `knowledge_fallback` and use a `knowledge` intent instead of reciting them.
7. Phone numbers are E.164 strings in quotes ("+15550123000"). Intent and slot names are lower_snake_case.

The format, as a JSON Schema (the field names and nesting are the same in TOML and YAML):
```json
{SCHEMA}```

An example rule-book, for a family clinic, in {name}:
{f}
{example}```

Answer with the complete rule-book in {name}, in one {f} fenced block."#
    )
}

fn documents(docs: &[Document]) -> String {
    let mut s = String::from("The business's documents:\n");
    for d in docs {
        s.push_str(&format!("\n<document name=\"{}\">\n{}\n</document>\n", d.name.replace('"', "'"), d.text.trim()));
    }
    s
}

fn task(format: BookFormat) -> String {
    format!("Write the rule-book for this business's phone agent, following the format and rules above. Answer with the whole rule-book in {}, in one {} fenced block.", format.name().to_uppercase(), fence(format))
}

fn repair(problems: &[Lint], format: BookFormat) -> String {
    format!(
        "That rule-book cannot take calls yet:\n{}\n(Line numbers count from the first line inside the fenced block.)\n\nFix every problem and answer with the complete corrected rule-book in {}, in one {} fenced block.",
        list(problems),
        format.name().to_uppercase(),
        fence(format)
    )
}

#[cfg(test)]
#[path = "author_tests.rs"]
mod tests;
