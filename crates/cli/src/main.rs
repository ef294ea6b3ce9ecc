//! `callfunnel`: AI agents on real phone calls.

mod call;
mod demo;
mod kb;
mod loadtest;
mod logging;
mod models;
mod report;
mod rulebook;
mod serve;
mod token;
mod vad;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "callfunnel", version, about = "AI voice agents on real phone calls (Twilio Media Streams), offline or with cloud providers")]
struct Cli {
    /// Configuration file (TOML). Environment variables CALLFUNNEL_* override it.
    #[arg(long, global = true, env = "CALLFUNNEL_CONFIG")]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text", env = "CALLFUNNEL_LOG_FORMAT")]
    log_format: logging::Format,
    /// Log filter (e.g. `info`, `callfunnel_media=debug`); RUST_LOG wins if set.
    #[arg(long, global = true, default_value = "info", env = "CALLFUNNEL_LOG_LEVEL")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: Twilio webhooks, media streams, health and the call API.
    Serve(serve::Args),
    /// Place a simulated Twilio call against a running server.
    Call(call::Args),
    /// Hold N concurrent simulated Twilio calls against a running server and report latency,
    /// drops, CPU and memory.
    Loadtest(loadtest::Args),
    /// Run the offline demo call: starts a server in-process and calls it with a script.
    Demo(demo::Args),
    /// Print per-frame speech probabilities of a WAV file (Silero VAD).
    Vad(vad::Args),
    /// Manage the offline models.
    Models(models::Args),
    /// Ingest documents into a knowledge base, or search one.
    Kb(kb::Args),
    /// Mint an API access token with the built-in dev issuer.
    Token(token::Args),
    /// Lint a rule-book, or draft one from a business's documents with Claude.
    Rulebook(rulebook::Args),
    /// Run a provider simulator (deepgram, anthropic, cartesia, sarvam, voyage) for tests and load.
    Sim(callfunnel_sim::cli::SimArgs),
}

/// jemalloc: freed memory goes back to the system (dirty pages decay within seconds), so a
/// long-running server's RSS follows its live data; glibc's arenas kept growing in soaks.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's own figures for `/metrics` (refreshed at each read).
fn heap() -> Option<callfunnel_metrics::process::Heap> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    Some(callfunnel_metrics::process::Heap { allocated_bytes: stats::allocated::read().ok()? as u64, resident_bytes: stats::resident::read().ok()? as u64 })
}

fn main() -> std::process::ExitCode {
    callfunnel_metrics::process::set_heap_reader(heap);
    let cli = Cli::parse();
    logging::init(cli.log_format, &cli.log_level);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve(a) => serve::run(a, cli.config.as_deref()).await,
            Command::Call(a) => call::run(a, cli.config.as_deref()).await,
            Command::Loadtest(a) => loadtest::run(a).await,
            Command::Token(a) => token::run(a, cli.config.as_deref()),
            Command::Kb(a) => kb::run(a, cli.config.as_deref()).await,
            Command::Rulebook(a) => rulebook::run(a, cli.config.as_deref()).await,
            Command::Demo(a) => demo::run(a, cli.config.as_deref()).await,
            Command::Vad(a) => vad::run(a, cli.config.as_deref()).await,
            Command::Models(a) => models::run(a, cli.config.as_deref()).await,
            Command::Sim(a) => callfunnel_sim::cli::run_cli(a).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
