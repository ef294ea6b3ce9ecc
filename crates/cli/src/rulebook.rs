//! `callfunnel rulebook`: lint a rule-book file, or draft one from a business's documents with
//! Claude (Opus by default) — validated, linted and repaired before it is written.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use callfunnel_ai::cloud::anthropic::AnthropicClient;
use callfunnel_ai::cloud::{Endpoint, EnvSecrets, Secret, SecretSource};
use callfunnel_ai::rulebook::author::{self, AuthorError, AuthorOptions, DEFAULT_MODEL};
use callfunnel_ai::rulebook::lint::has_errors;
use callfunnel_ai::rulebook::{BookFormat, Lint, LintOptions, Severity, lint_text};
use callfunnel_control::Config;
use callfunnel_control::store_secrets::StoreSecrets;
use callfunnel_control::stores::Stores;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Check a rule-book (.toml, .yaml or .yml): errors and warnings with where they are; exit
    /// code 1 when there are errors.
    Lint {
        /// The rule-book or agent file.
        file: PathBuf,
        /// Print the findings as one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        budget: Budget,
        /// Also check that every {env.NAME} the rule-book uses is set here.
        #[arg(long)]
        check_env: bool,
    },
    /// Draft a rule-book from a business's documents (SOPs, FAQs: .txt, .md, .html, .pdf) with
    /// Claude; the draft is validated and linted, and sent back for repair (up to --attempts
    /// requests) while it has errors. The API key comes from ANTHROPIC_API_KEY (or
    /// CALLFUNNEL_ANTHROPIC_API_KEY), else the tenant's `anthropic` key in the secret store.
    Author {
        /// A folder of documents (searched recursively) or one document.
        #[arg(long)]
        docs: PathBuf,
        /// Where to write the rule-book (.toml, .yaml or .yml picks the format); a draft that
        /// stays invalid is written to OUT.rejected instead.
        #[arg(long)]
        out: PathBuf,
        /// The model that writes it.
        #[arg(long, env = "CALLFUNNEL_RULEBOOK_MODEL", default_value = DEFAULT_MODEL)]
        model: String,
        /// The Anthropic API (default: `[providers.anthropic] url` of the configuration).
        #[arg(long)]
        base_url: Option<String>,
        /// The tenant whose stored key to use when none is in the environment (default: the
        /// configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Requests in all: the first draft and its repairs.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
        attempts: u32,
        #[command(flatten)]
        budget: Budget,
        /// Replace OUT if it exists.
        #[arg(long)]
        force: bool,
    },
}

/// The length budget of one spoken line.
#[derive(clap::Args)]
struct Budget {
    /// Flag spoken lines longer than this many words.
    #[arg(long, default_value_t = LintOptions::default().max_words)]
    max_words: usize,
    /// Flag spoken lines longer than this many characters.
    #[arg(long, default_value_t = LintOptions::default().max_chars)]
    max_chars: usize,
}

pub async fn run(args: Args, config: Option<&Path>) -> anyhow::Result<()> {
    match args.command {
        Cmd::Lint { file, json, budget, check_env } => lint(&file, json, &LintOptions { max_words: budget.max_words, max_chars: budget.max_chars, check_env }),
        Cmd::Author { docs, out, model, base_url, tenant, attempts, budget, force } => {
            let cfg = Config::load(config)?;
            let format = BookFormat::from_path(&out)?;
            if out.exists() && !force {
                anyhow::bail!("{} exists: pass --force to replace it", out.display());
            }
            let documents = author::read_documents(&docs)?;
            let key = api_key(&cfg, tenant.as_deref()).await?;
            let url = base_url.unwrap_or_else(|| cfg.providers.anthropic.url.clone());
            let client = AnthropicClient::offline(Endpoint::new(url, key));
            let chars: usize = documents.iter().map(|d| d.text.chars().count()).sum();
            eprintln!("drafting a rule-book with {model} from {} documents ({chars} characters)…", documents.len());
            let lint = LintOptions { max_words: budget.max_words, max_chars: budget.max_chars, check_env: false };
            let opts = AuthorOptions { model: model.clone(), format, attempts, lint, ..Default::default() };
            match author::author(&client, &documents, &opts).await {
                Ok(d) => {
                    let header = format!("# Drafted with {model} from {} under {}. Review every line before it takes calls.\n", plural(documents.len(), "document"), docs.display());
                    std::fs::write(&out, header + &d.text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
                    let u = &d.usage;
                    println!("wrote {}: {} intents, {} ({} input tokens, {} from the cache, {} output)", out.display(), d.book.intents.len(), plural(d.attempts as usize, "request"), u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens, u.cache_read_input_tokens, u.output_tokens);
                    print_lints(&out, &d.warnings);
                    Ok(())
                }
                Err(AuthorError::Rejected { attempts, problems, last_draft }) => {
                    let kept = rejected_path(&out);
                    let mut header = format!("# Rejected draft ({model}): still invalid after {}:\n", plural(attempts as usize, "attempt"));
                    for p in &problems {
                        header.push_str(&format!("#   {}\n", p.to_string().replace('\n', " ")));
                    }
                    std::fs::write(&kept, header + &last_draft).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", kept.display()))?;
                    let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
                    anyhow::bail!("the draft is still invalid after {}; kept in {}:\n{}", plural(attempts as usize, "attempt"), kept.display(), list.join("\n"))
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

fn lint(file: &Path, json: bool, opts: &LintOptions) -> anyhow::Result<()> {
    let format = BookFormat::from_path(file)?;
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let (_, lints) = lint_text(&text, format, opts);
    let count = |s: Severity| lints.iter().filter(|l| l.severity == s).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    if json {
        println!("{}", serde_json::json!({"file": file.display().to_string(), "errors": errors, "warnings": warnings, "lints": lints}));
    } else {
        print_lints(file, &lints);
        println!("{}: {}, {}", file.display(), plural(errors, "error"), plural(warnings, "warning"));
    }
    if has_errors(&lints) {
        anyhow::bail!("{}: {}", file.display(), plural(errors, "error"));
    }
    Ok(())
}

fn print_lints(file: &Path, lints: &[Lint]) {
    for l in lints {
        println!("{}: {l}", file.display());
    }
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// `OUT.rejected`, next to OUT.
fn rejected_path(out: &Path) -> PathBuf {
    let mut s: OsString = out.as_os_str().to_owned();
    s.push(".rejected");
    PathBuf::from(s)
}

/// The Anthropic key as calls get it: the environment, else the tenant's (or the platform's)
/// entry in the secret store.
async fn api_key(cfg: &Config, tenant: Option<&str>) -> anyhow::Result<Secret> {
    if let Some(k) = EnvSecrets.provider_key("", "anthropic").await? {
        return Ok(k);
    }
    let tenant = tenant.map(str::to_string).unwrap_or_else(|| cfg.agents.default_tenant.clone());
    let missing = format!("no Anthropic API key: set ANTHROPIC_API_KEY (or CALLFUNNEL_ANTHROPIC_API_KEY), or store the key `anthropic` for tenant `{tenant}` (or the platform) in the secret store");
    let stores = match Stores::open(cfg).await {
        Ok(s) => s,
        Err(e) => anyhow::bail!("{missing} (the secret store could not be opened: {e:#})"),
    };
    let secrets = StoreSecrets { store: stores.secrets.clone(), fallback: Arc::new(EnvSecrets) };
    secrets.provider_key(&tenant, "anthropic").await?.ok_or_else(|| anyhow::anyhow!(missing))
}
