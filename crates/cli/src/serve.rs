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
    // the handlers first: a SIGTERM that comes while we start must drain, not kill
    let mut signals = Signals::new()?;
    let shutdown = CancellationToken::new();
    let server = Server::start(cfg, shutdown.clone()).await?;
    let telemetry = callfunnel_control::telemetry::Telemetry::install(&server.state.config.telemetry, &server.state.stores.node_id)?;
    let missing = server.state.hub.missing();
    if !missing.is_empty() {
        tracing::warn!(?missing, "models missing: calls will fail until `callfunnel models fetch` is run");
    }
    tracing::info!(addr = %server.addr, ready_ms = started.elapsed().as_millis() as u64, "callfunnel serving");
    // SIGTERM or Ctrl-C: drain (live calls finish, bounded by [server] drain_timeout_s);
    // a second signal stops at once.
    let drainer = server.state.clone();
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!("signal: draining (a second signal stops at once)");
        let second = drainer.shutdown.clone();
        tokio::spawn(async move {
            signals.next().await;
            tracing::warn!("second signal: stopping now");
            second.cancel();
        });
        let r = drainer.drain().await;
        tracing::info!(live_at_start = r.live_at_start, cut = r.cut, waited_ms = r.waited.as_millis() as u64, "drained");
    });
    let state = server.state.clone();
    server.task.await??;
    // Calls have ended: wait for their uploads and ledger lines, ship the timeline buffer (what
    // cannot be shipped now stays in its log on disk and ships at the next start).
    state.finish(std::time::Duration::from_secs(30)).await;
    if let Some(t) = telemetry {
        // the exporter blocks while it sends the last spans
        let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM (what orchestrators send) and Ctrl-C.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        Ok(Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
