//! `callfunnel kb`: ingest documents into a knowledge base and search it, on the stores the
//! configuration names (the embedded ones by default) — the same indexing as the API's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use callfunnel_ai::cloud::EnvSecrets;
use callfunnel_ai::knowledge::{Format, extract};
use callfunnel_control::Config;
use callfunnel_control::knowledge::{DocMeta, Knowledge};
use callfunnel_control::providers::ProviderHub;
use callfunnel_control::store_secrets::StoreSecrets;
use callfunnel_control::stores::Stores;
use callfunnel_data::control::{DocumentStatus, NewDocument};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Index files (.txt, .md, .html, .pdf) or directories of them; unchanged documents are skipped.
    Ingest {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The knowledge base (created if missing; default: the agent's id).
        #[arg(long)]
        kb: Option<String>,
        /// The agent whose knowledge base this is (its id names the knowledge base).
        #[arg(long)]
        agent: Option<String>,
        /// The tenant (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Embedding model of a new knowledge base: minilm-l6-v2 (on the box) or voyage-3.5.
        #[arg(long, default_value = "minilm-l6-v2")]
        model: String,
    },
    /// The chunks closest to a question.
    Search {
        question: String,
        #[arg(long)]
        kb: String,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(short, default_value_t = 3)]
        k: usize,
    },
}

async fn open(cfg: &Config) -> anyhow::Result<Knowledge> {
    let stores = Stores::open(cfg).await?;
    let secrets = Arc::new(StoreSecrets { store: stores.secrets.clone(), fallback: Arc::new(EnvSecrets) });
    let hub = ProviderHub::new(callfunnel_ai::models::ModelPaths::new(&cfg.models.dir), cfg.models.whisper_threads, cfg.agents.dir.clone(), cfg.providers.clone(), secrets).with_control(stores.control.clone());
    Ok(Knowledge::new(stores, Arc::new(hub)))
}

fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                let mut entries: Vec<PathBuf> = std::fs::read_dir(&d).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", d.display()))?.flatten().map(|e| e.path()).collect();
                entries.sort();
                for e in entries {
                    if e.is_dir() {
                        stack.push(e);
                    } else if Format::guess(&e.to_string_lossy()).is_ok() && e.extension().is_some() {
                        let rel = e.strip_prefix(p).unwrap_or(&e).with_extension("");
                        out.push((e.clone(), doc_id(&rel)));
                    }
                }
            }
        } else if p.is_file() {
            Format::guess(&p.to_string_lossy()).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            out.push((p.clone(), doc_id(&p.with_extension("").file_name().map(PathBuf::from).unwrap_or_default())));
        } else {
            anyhow::bail!("{} does not exist", p.display());
        }
    }
    Ok(out)
}

/// A document id from a path: `faq/Opening Hours` → `faq-opening-hours`.
fn doc_id(rel: &Path) -> String {
    let s: String = rel.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_ascii_lowercase() } else { '-' }).collect();
    s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-").chars().take(128).collect()
}

pub async fn run(args: Args, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    match args.command {
        Cmd::Ingest { paths, kb, agent, tenant, model } => {
            let kb_id = kb.or(agent).ok_or_else(|| anyhow::anyhow!("give --kb ID or --agent ID"))?;
            callfunnel_data::check_id(&kb_id)?;
            let tenant = tenant.unwrap_or_else(|| cfg.agents.default_tenant.clone());
            let todo = files(&paths)?;
            if todo.is_empty() {
                anyhow::bail!("no .txt, .md, .html or .pdf files under {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
            }
            let k = open(&cfg).await?;
            let control = k.stores.control.clone();
            control.tenant(&tenant).await.map_err(|e| anyhow::anyhow!("tenant `{tenant}`: {e}"))?;
            let kb = match control.kbs(&tenant).await?.into_iter().find(|x| x.id == kb_id) {
                Some(x) => x,
                None => {
                    let dim = match model.as_str() {
                        "minilm-l6-v2" => 384,
                        m if m.starts_with("voyage-") => 1024,
                        m => anyhow::bail!("unknown embedding model `{m}`: minilm-l6-v2 or voyage-3.5"),
                    };
                    control.create_kb(&tenant, &kb_id, &kb_id, &model, dim).await?
                }
            };
            let existing = control.documents(&tenant, &kb.id).await?;
            let bar = indicatif::ProgressBar::new(todo.len() as u64);
            bar.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
            let (mut indexed, mut unchanged, mut skipped, mut chunks) = (0, 0, 0, 0);
            for (path, id) in &todo {
                bar.set_message(id.clone());
                let raw = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                let format = Format::detect(&path.to_string_lossy(), &raw)?;
                // a document without text (empty, a scan, password-protected, damaged) is
                // skipped with the reason; the others are indexed
                let doc = match tokio::task::spawn_blocking(move || extract(&raw, format)).await? {
                    Ok(d) => d,
                    Err(e) => {
                        bar.suspend(|| eprintln!("skipped {}: {e} ({})", path.display(), e.code()));
                        skipped += 1;
                        bar.inc(1);
                        continue;
                    }
                };
                let text = doc.text.as_str();
                let sha: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect();
                if existing.iter().any(|d| d.id == *id && d.sha256 == sha && d.status == DocumentStatus::Ready) {
                    unchanged += 1;
                    bar.inc(1);
                    continue;
                }
                let title = doc.title_or_first_line();
                let source = path.display().to_string();
                if existing.iter().any(|d| d.id == *id) {
                    control.delete_document(&tenant, &kb.id, id).await?;
                }
                control.add_document(&tenant, &kb.id, NewDocument { id: id.clone(), title: title.clone(), source: source.chars().take(2048).collect(), sha256: sha, chunks: 0 }).await?;
                chunks += k.index(&tenant, &kb, DocMeta { id, title: &title, source: &source }, text).await?;
                indexed += 1;
                bar.inc(1);
            }
            bar.finish_and_clear();
            k.stores.flush().await;
            println!("knowledge base `{}` (tenant `{tenant}`, {}): {indexed} documents indexed into {chunks} chunks, {unchanged} unchanged, {skipped} skipped", kb.id, kb.embed_model);
        }
        Cmd::Search { question, kb, tenant, k: n } => {
            let tenant = tenant.unwrap_or_else(|| cfg.agents.default_tenant.clone());
            let k = open(&cfg).await?;
            let base = k.stores.control.kbs(&tenant).await?.into_iter().find(|x| x.id == kb).ok_or_else(|| anyhow::anyhow!("no knowledge base `{kb}` for tenant `{tenant}`"))?;
            for (i, h) in k.search(&tenant, &base, &question, n.clamp(1, 20)).await?.into_iter().enumerate() {
                println!("{}. [{}] ({:.3}) {}", i + 1, h.doc_id, h.score, h.text.replace('\n', " "));
            }
        }
    }
    Ok(())
}
