use std::net::SocketAddr;
use std::path::Path;

use callfunnel_control::{Config, Server};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (default from config: 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Host:port the carrier reaches this server at (for wss:// stream URLs).
    #[arg(long)]
    public_host: Option<String>,
}

pub async fn run(args: Args, config: Option<&Path>) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut cfg = Config::load(config)?;
    if let Some(l) = args.listen {
        cfg.server.listen = l;
    }
    if let Some(h) = args.public_host {
        cfg.server.public_host = h;
    }
    let shutdown = CancellationToken::new();
    let server = Server::start(cfg, shutdown.clone()).await?;
    let missing = server.state.hub.missing();
    if !missing.is_empty() {
        tracing::warn!(?missing, "models missing: calls will fail until `callfunnel models fetch` is run");
    }
    tracing::info!(addr = %server.addr, ready_ms = started.elapsed().as_millis() as u64, "callfunnel serving");
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    let stores = server.state.stores.clone();
    server.task.await??;
    // Calls have ended: ship what the timeline buffer still holds (what cannot be shipped
    // now stays in its log on disk and ships at the next start).
    if tokio::time::timeout(std::time::Duration::from_secs(10), stores.flush()).await.is_err() {
        tracing::warn!("timeline buffer not drained within 10 s; the rest ships at the next start");
    }
    Ok(())
}
