//! `callfunnel sim PROVIDER --listen ADDR`: one simulator as a process.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::{Latency, Provider, SimConfig};

#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Which provider to simulate.
    #[arg(value_enum)]
    pub provider: Provider,
    /// Address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The API key clients must send.
    #[arg(long, default_value = "sim-key", env = "CALLFUNNEL_SIM_API_KEY")]
    pub api_key: String,
    /// Transcripts / replies, one per line.
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// Latencies as JSON, e.g. '{"llm_first_token_ms": 300, "tts_rtf": 0.3}'.
    #[arg(long)]
    pub latency: Option<String>,
    /// Use latencies like the real services (overridden by --latency).
    #[arg(long)]
    pub realistic: bool,
}

pub async fn run_cli(args: SimArgs) -> anyhow::Result<()> {
    let script = match &args.script {
        Some(p) => std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("cannot read script {}: {e}", p.display()))?.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect(),
        None => Vec::new(),
    };
    let mut latency = if args.realistic { Latency::realistic() } else { Latency::default() };
    if let Some(j) = &args.latency {
        latency = serde_json::from_str(j).map_err(|e| anyhow::anyhow!("--latency is not valid latency JSON: {e}"))?;
    }
    let server = crate::start(args.provider, args.listen, SimConfig { api_key: args.api_key, latency, script, ..Default::default() }).await?;
    println!("{} simulator listening on http://{}", args.provider, server.addr);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
