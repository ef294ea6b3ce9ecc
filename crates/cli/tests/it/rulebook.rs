//! `callfunnel rulebook lint|author`: lint files from the command line, and draft rule-books
//! against the Anthropic simulator, whose replies are its script lines in order — so the
//! "model" can first answer with a broken rule-book and then a valid one.

use std::path::{Path, PathBuf};
use std::process::Command;

use callfunnel_ai::cloud::anthropic::AnthropicClient;
use callfunnel_ai::cloud::{Endpoint, Secret};
use callfunnel_ai::rulebook::author::{self, AuthorError, AuthorOptions, Document};
use callfunnel_ai::rulebook::{BookFormat, RuleBook};
use callfunnel_sim::{Provider, SimConfig, SimServer};

const CLINIC: &str = include_str!("../../../../agents/clinic.toml");

/// A small valid rule-book, as a model would answer it.
const GOOD: &str = "name = \"Acme Bikes\"\ngreeting = \"Hello, Acme Bikes. How can I help?\"\nfallback = [\"Sorry, I can tell you our opening hours or put you through.\"]\n\n[dtmf]\n\"0\" = \"human\"\n\n[[intent]]\nname = \"hours\"\nexamples = [\"when are you open\", \"what are your opening hours\"]\nkeywords = [\"hours\"]\nreply = \"We're open nine to five, Monday to Saturday.\"\n\n[[intent]]\nname = \"human\"\nexamples = [\"let me talk to a person\"]\nreply = \"Putting you through.\"\n\n[intent.action]\nkind = \"transfer\"\nto = \"+15550100200\"\n";

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("cf-rulebook-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("docs")).unwrap();
        std::fs::write(d.join("docs/faq.md"), "# Acme Bikes\n\nWe are open **nine to five**, Monday to Saturday.\n").unwrap();
        std::fs::write(d.join("docs/contact.html"), "<p>Call the workshop on +1 555 0100 200.</p>").unwrap();
        std::fs::write(d.join("c.toml"), format!("[data]\ndir = {:?}\ntimeline = \"memory\"\n", d.join("data"))).unwrap();
        Dir(d)
    }
    fn path(&self, p: &str) -> String {
        self.0.join(p).to_string_lossy().into()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary without any Anthropic key from the environment, plus `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callfunnel"));
    c.args(args).env_remove("ANTHROPIC_API_KEY").env_remove("CALLFUNNEL_ANTHROPIC_API_KEY").env_remove("CALLFUNNEL_RULEBOOK_MODEL");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

async fn sim(script: Vec<String>) -> SimServer {
    callfunnel_sim::start(Provider::Anthropic, ([127, 0, 0, 1], 0).into(), SimConfig { script, ..Default::default() }).await.unwrap()
}

/// `rulebook author` against `sim`, off the runtime that serves it.
async fn author_cli(d: &Dir, sim: &SimServer, out: &str) -> (bool, String, String) {
    let args: Vec<String> = ["--config", &d.path("c.toml"), "rulebook", "author", "--docs", &d.path("docs"), "--out", &d.path(out), "--base-url", &sim.url()].map(String::from).to_vec();
    tokio::task::spawn_blocking(move || run(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[("ANTHROPIC_API_KEY", "sim-key")])).await.unwrap()
}

#[test]
fn every_rulebook_subcommand_has_help() {
    for sub in [&["rulebook", "--help"][..], &["rulebook", "lint", "--help"], &["rulebook", "author", "--help"]] {
        let (ok, out, _) = run(sub, &[]);
        assert!(ok && out.contains("Usage:"), "{sub:?}: {out}");
    }
    let (_, out, _) = run(&["rulebook", "author", "--help"], &[]);
    assert!(out.contains("ANTHROPIC_API_KEY") && out.contains("--base-url") && out.contains("claude-opus"), "{out}");
}

#[test]
fn lint_lists_findings_and_fails_on_errors() {
    let d = Dir::new("lint");
    let (ok, out, err) = run(&["rulebook", "lint", "../../agents/clinic.toml"], &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("clinic.toml: 0 errors, 0 warnings"), "{out}");

    let bad = d.path("bad.toml");
    std::fs::write(&bad, GOOD.replace("Putting you through.", "Putting you through, {name}.").replace("+15550100200", "reception")).unwrap();
    let (ok, out, err) = run(&["rulebook", "lint", &bad], &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("error: intent.human.reply: intent `human` reply: unknown slot `{name}`"), "{out}");
    assert!(out.contains("error: intent.human.action.to: `reception` is neither an E.164 number"), "{out}");
    assert!(out.contains("bad.toml: 2 errors, 0 warnings") && err.contains("bad.toml: 2 errors"), "{out}{err}");
    let (ok, out, _) = run(&["rulebook", "lint", &bad, "--json"], &[]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(!ok && v["errors"] == 2 && v["lints"][0]["severity"] == "error" && v["lints"][1]["at"] == "intent.human.action.to", "{v}");

    // YAML, a syntax error with its line and column, a warning that does not fail, the budget
    let yaml = d.path("book.yaml");
    std::fs::write(&yaml, "name: Acme\ngreeting: Hello.\nfallback: [\"Sorry?\"\nintent: []\n").unwrap();
    let (ok, out, _) = run(&["rulebook", "lint", &yaml], &[]);
    assert!(!ok && out.contains("book.yaml: error: line 4, column "), "{out}");
    std::fs::write(&yaml, "name: Acme\ngreeting: Hello, this is Acme Bikes on the high street. How can I help?\nfallback: [\"Sorry?\"]\nintent:\n- name: hours\n  examples: [when are you open]\n  reply: Nine to five.\n").unwrap();
    let (ok, out, _) = run(&["rulebook", "lint", &yaml], &[]);
    assert!(ok && out.contains("0 errors, 0 warnings"), "{out}");
    let (ok, out, _) = run(&["rulebook", "lint", &yaml, "--max-words", "8"], &[]);
    assert!(ok && out.contains("warning: greeting: 13 words") && out.contains("0 errors, 1 warning"), "{out}");
    let (ok, _, err) = run(&["rulebook", "lint", &d.path("book.json")], &[]);
    assert!(!ok && err.contains(".toml, .yaml or .yml"), "{err}");
}

#[test]
fn author_without_a_key_says_what_it_needs() {
    let d = Dir::new("nokey");
    let (ok, _, err) = run(&["--config", &d.path("c.toml"), "rulebook", "author", "--docs", &d.path("docs"), "--out", &d.path("acme.toml")], &[]);
    assert!(!ok, "{err}");
    assert!(err.contains("no Anthropic API key: set ANTHROPIC_API_KEY (or CALLFUNNEL_ANTHROPIC_API_KEY)") && err.contains("tenant `demo`"), "{err}");
    assert!(!Path::new(&d.path("acme.toml")).exists());
    let (ok, _, err) = run(&["--config", &d.path("c.toml"), "rulebook", "author", "--docs", &d.path("nothing"), "--out", &d.path("acme.toml")], &[("ANTHROPIC_API_KEY", "k")]);
    assert!(!ok && err.contains("does not exist"), "{err}");
}

/// The first answer is not TOML (and wrapped in prose), the second is valid: one repair round,
/// and the written file is the valid rule-book with a header; the key never shows.
#[tokio::test(flavor = "multi_thread")]
async fn author_repairs_a_draft_that_does_not_parse() {
    let d = Dir::new("repair");
    let broken = "Here is the rule-book:\n\n```toml\nname = \"Acme Bikes\"\ngreeting = Hello\n```\n\nHope this helps.".to_string();
    let good = format!("Sorry about that. Here it is, fixed:\n\n```toml\n{GOOD}```\n");
    let s = sim(vec![broken, good]).await;
    let (ok, out, err) = author_cli(&d, &s, "acme.toml").await;
    assert!(ok, "{out}{err}");
    assert_eq!(s.faults.stats().requests, 2, "one repair round");
    assert!(out.contains("acme.toml: 2 intents, 2 requests"), "{out}");
    let written = std::fs::read_to_string(d.path("acme.toml")).unwrap();
    assert!(written.starts_with("# Drafted with claude-opus-4-5 from 2 documents under "), "{written}");
    assert!(written.ends_with(GOOD), "{written}");
    assert_eq!(RuleBook::from_file(Path::new(&d.path("acme.toml"))).unwrap().intents.len(), 2);
    assert!(!out.contains("sim-key") && !err.contains("sim-key"));
    // an existing file is not replaced without --force
    let (ok, _, err) = author_cli(&d, &s, "acme.toml").await;
    assert!(!ok && err.contains("pass --force"), "{err}");
}

/// Every answer has a lint error: the CLI gives up after 3 requests, names the problems and
/// keeps the last draft in OUT.rejected.
#[tokio::test(flavor = "multi_thread")]
async fn author_keeps_a_draft_that_stays_invalid() {
    let d = Dir::new("rejected");
    let unfilled = GOOD.replace("Putting you through.", "Putting you through, {name}.");
    let s = sim(vec![format!("```toml\n{unfilled}```")]).await;
    let (ok, out, err) = author_cli(&d, &s, "acme.toml").await;
    assert!(!ok, "{out}");
    assert_eq!(s.faults.stats().requests, 3);
    assert!(err.contains("still invalid after 3 attempts; kept in ") && err.contains("acme.toml.rejected"), "{err}");
    assert!(err.contains("error: intent.human.reply: intent `human` reply: unknown slot `{name}`"), "{err}");
    assert!(!Path::new(&d.path("acme.toml")).exists());
    let kept = std::fs::read_to_string(d.path("acme.toml.rejected")).unwrap();
    assert!(kept.starts_with("# Rejected draft (claude-opus-4-5): still invalid after 3 attempts:\n#   error: intent.human.reply"), "{kept}");
    assert!(kept.ends_with(&unfilled), "{kept}");
}

/// The library call, for YAML: a draft with a lint error, then a valid one (answered as TOML,
/// converted); the second request reads the system block and the documents from the prompt
/// cache.
#[tokio::test]
async fn a_yaml_draft_is_repaired_after_a_lint_error_with_the_prompt_cached() {
    let unreachable = format!("{GOOD}\n[[intent]]\nname = \"late\"\nexamples = [\"when are you open late\"]\nreply = \"Until eight on Thursdays.\"\n");
    let s = sim(vec![format!("```toml\n{unreachable}```"), format!("```toml\n{GOOD}```")]).await;
    let client = AnthropicClient::offline(Endpoint::new(s.url(), Secret::new("sim-key")));
    let docs = [Document { name: "faq.md".into(), text: "We are open nine to five, Monday to Saturday.".into() }];
    let opts = AuthorOptions { format: BookFormat::Yaml, ..Default::default() };
    let draft = author::author(&client, &docs, &opts).await.unwrap();
    assert_eq!(draft.attempts, 2);
    assert_eq!(RuleBook::from_yaml_str(&draft.text).unwrap().intents.len(), 2);
    assert!(draft.usage.cache_read_input_tokens > 1000, "{:?}", draft.usage);
    // the same script once more, with a single attempt: the lint error is the answer
    let s = sim(vec![format!("```toml\n{unreachable}```")]).await;
    let client = AnthropicClient::offline(Endpoint::new(s.url(), Secret::new("sim-key")));
    match author::author(&client, &docs, &AuthorOptions { attempts: 1, ..opts.clone() }).await {
        Err(AuthorError::Rejected { attempts: 1, problems, last_draft }) => {
            assert!(problems.len() == 1 && problems[0].at == "intent.late.examples" && problems[0].message.contains("unreachable"), "{problems:?}");
            assert_eq!(RuleBook::from_yaml_str(&last_draft).unwrap().intents.len(), 3);
        }
        other => panic!("{other:?}"),
    }
    // a wrong key is an error of the API, not a rejected draft
    let client = AnthropicClient::offline(Endpoint::new(s.url(), Secret::new("wrong")));
    let e = author::author(&client, &docs, &opts).await.unwrap_err();
    assert!(matches!(e, AuthorError::Client(_)) && e.to_string().contains("401"), "{e}");
}

#[test]
fn the_clinic_agent_lints_clean() {
    let (book, lints) = callfunnel_ai::rulebook::lint_text(CLINIC, BookFormat::Toml, &Default::default());
    assert!(book.is_some() && lints.is_empty(), "{lints:#?}");
}
