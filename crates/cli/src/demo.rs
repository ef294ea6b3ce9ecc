//! `callfunnel demo`: a whole phone call offline. Starts the server in-process, places a
//! scripted Twilio call against it (with a barge-in), prints the conversation and latencies.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use callfunnel_ai::models::{fetch, ModelPaths};
use callfunnel_control::{Config, Server};
use callfunnel_media::caller::{self, CallerOptions, Script};
use tokio_util::sync::CancellationToken;

/// The example agent and the demo caller, built in so the demo runs from any directory.
pub const CLINIC_RULEBOOK: &str = include_str!("../../../agents/clinic.toml");
pub const DEMO_SCRIPT: &str = include_str!("../../../assets/demo/clinic-call.toml");

#[derive(clap::Args)]
pub struct Args {
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    /// A caller script instead of the built-in one.
    #[arg(long)]
    script: Option<PathBuf>,
    /// Where to write the call recording (stereo WAV: caller left, agent right).
    #[arg(long, default_value = "recordings/demo-call.wav")]
    record: PathBuf,
    /// Fail instead of fetching missing models.
    #[arg(long)]
    no_fetch: bool,
}

pub async fn run(args: Args, config: Option<&Path>) -> anyhow::Result<()> {
    let mut cfg = Config::load(config)?;
    cfg.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.server.public_ws_scheme = "ws".into();
    cfg.server.preload_models = false;
    cfg.data.timeline = "memory".into();
    let paths = ModelPaths::new(&cfg.models.dir);
    let missing = fetch::missing(&paths);
    if !missing.is_empty() {
        if args.no_fetch {
            anyhow::bail!("models missing ({}): run `callfunnel models fetch`", missing.join(", "));
        }
        eprintln!("first run: fetching the offline models into {} ...", paths.root.display());
        let p = paths.clone();
        tokio::task::spawn_blocking(move || fetch::fetch_all(&p, true)).await??;
    }
    let agent = cfg.agents.default_agent.clone();
    let _tmp_agents;
    if !cfg.agents.dir.join(format!("{agent}.toml")).exists() {
        let dir = std::env::temp_dir().join(format!("callfunnel-demo-agents-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{agent}.toml")), CLINIC_RULEBOOK)?;
        cfg.agents.dir = dir.clone();
        _tmp_agents = TempDir(dir);
    }
    let script = match &args.script {
        Some(p) => Script::from_file(p)?,
        None => Script::from_toml(DEMO_SCRIPT).map_err(|e| anyhow::anyhow!("built-in demo script: {e}"))?,
    };

    let shutdown = CancellationToken::new();
    let server = Server::start(cfg, shutdown.clone()).await?;
    eprintln!("loading models ...");
    let t = std::time::Instant::now();
    server.state.hub.models().await?;
    server.state.hub.brain(&server.state.config.agents.default_tenant, &agent).await?;
    eprintln!("models loaded in {:.1} s; placing the call (real time, about a minute) ...", t.elapsed().as_secs_f64());

    let call_id = format!("demo-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());
    let url = format!("ws://{}/twilio/media/{call_id}", server.addr);
    if let Some(dir) = args.record.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let result = caller::run(&script, &CallerOptions { url, record: Some(args.record.clone()) }).await;
    let events = wait_for_timeline(&server, &call_id).await;
    shutdown.cancel();
    let result = result?;
    let report = crate::report::build(&call_id, &result.lines, &events, result.recording.as_ref().map(|p| p.display().to_string()));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        crate::report::print_demo(&report);
    }
    Ok(())
}

async fn wait_for_timeline(server: &Server, call_id: &str) -> Vec<callfunnel_data::TimelineEvent> {
    let mut events = Vec::new();
    for _ in 0..50 {
        events = server.state.store.timeline(call_id).await.unwrap_or_default();
        if events.iter().any(|e| e.kind == "call_ended") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    events
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
