//! `callfunnel demo`: a whole phone call offline. Starts the server in-process, places a
//! scripted Twilio call against it (with a barge-in), prints the conversation and latencies.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use callfunnel_ai::cloud::{EnvSecrets, SecretSource, StaticSecrets};
use callfunnel_sim::{self as sim, Latency, Provider, SimConfig};

use callfunnel_ai::models::{fetch, ModelPaths};
use callfunnel_control::{Config, Server};
use callfunnel_media::caller::{self, CallerOptions, Script};
use tokio_util::sync::CancellationToken;

/// The example agent and the demo caller, built in so the demo runs from any directory.
pub const CLINIC_RULEBOOK: &str = include_str!("../../../agents/clinic.toml");
pub const DEMO_SCRIPT: &str = include_str!("../../../assets/demo/clinic-call.toml");
pub const CLINIC_LLM: &str = include_str!("../../../agents/clinic-llm.toml");

/// The simulated LLM's replies to the demo caller, in order (the greeting is the agent's own).
/// "book an appointment" makes the simulated model call the `book_appointment` tool, whose
/// answer (from the demo's booking endpoint) it reads out.
const LLM_REPLIES: [&str; 5] = [
    "We're open weekdays from eight a.m. to six p.m., and on Saturdays from nine a.m. to one p.m. We're closed on Sundays. Is there anything else I can help you with?",
    "Thank you, Priya. What day and time would suit you?",
    "I can book you in tomorrow at three p.m. Shall I confirm that?",
    "You're booked for tomorrow at three p.m. Is there anything else?",
    "Thanks for calling Riverside Family Clinic. Goodbye!",
];

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderMode {
    /// On-box models: Whisper, the rule-book brain, Piper.
    Local,
    /// The cloud adapters (Deepgram, Claude, Cartesia) against locally started simulators.
    Cloud,
}

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
    /// Which providers the call runs on.
    #[arg(long, value_enum, default_value = "local")]
    providers: ProviderMode,
}

pub async fn run(args: Args, config: Option<&Path>) -> anyhow::Result<()> {
    let mut cfg = Config::load(config)?;
    cfg.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.server.public_ws_scheme = "ws".into();
    cfg.server.preload_models = false;
    cfg.data.timeline = "memory".into();
    // Its own data for each demo: a server or another demo may be using the configured one.
    let data_dir = std::env::temp_dir().join(format!("callfunnel-demo-data-{}", std::process::id()));
    cfg.data.dir = data_dir.clone();
    let _data_dir = TempDir(data_dir);
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
    let mut script = match &args.script {
        Some(p) => Script::from_file(p)?,
        None => Script::from_toml(DEMO_SCRIPT).map_err(|e| anyhow::anyhow!("built-in demo script: {e}"))?,
    };
    let mut secrets: Arc<dyn SecretSource> = Arc::new(EnvSecrets);
    let mut _sims = Vec::new();
    let _tmp_agents;
    if args.providers == ProviderMode::Cloud {
        let said: Vec<String> = script.lines.iter().filter_map(|l| l.say.clone()).collect();
        let latency = Latency::realistic();
        let start = |p, script: Vec<String>| sim::start(p, ([127, 0, 0, 1], 0).into(), SimConfig { script, latency: latency.clone(), ..Default::default() });
        let dg = start(Provider::Deepgram, said).await?;
        let an = start(Provider::Anthropic, LLM_REPLIES.iter().map(|s| s.to_string()).collect()).await?;
        let ca = start(Provider::Cartesia, Vec::new()).await?;
        cfg.providers.deepgram.url = dg.url();
        cfg.providers.anthropic.url = an.url();
        cfg.providers.cartesia.url = ca.url();
        secrets = Arc::new(StaticSecrets::default().with("deepgram", "sim-key").with("anthropic", "sim-key").with("cartesia", "sim-key"));
        _sims = vec![dg, an, ca];
        let dir = std::env::temp_dir().join(format!("callfunnel-demo-agents-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let booking = booking_endpoint().await?;
        // The stand-in booking system listens on 127.0.0.1 over plain http, which the [tools]
        // default refuses (https only, no loopback): the demo opens exactly that, explicitly.
        cfg.tools.allow_http = true;
        cfg.tools.allow_networks.push("127.0.0.1/32".into());
        std::fs::write(dir.join("clinic-llm.toml"), CLINIC_LLM.replace("http://127.0.0.1:8089/bookings", &booking))?;
        cfg.agents.dir = dir.clone();
        cfg.agents.default_agent = "clinic-llm".into();
        script.call.agent_id = "clinic-llm".into();
        _tmp_agents = Some(TempDir(dir));
        eprintln!("cloud providers: Deepgram, Claude and Cartesia simulators on {}, {}, {}", _sims[0].addr, _sims[1].addr, _sims[2].addr);
    } else if !cfg.agents.dir.join(format!("{}.toml", cfg.agents.default_agent)).exists() {
        let dir = std::env::temp_dir().join(format!("callfunnel-demo-agents-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{}.toml", cfg.agents.default_agent)), CLINIC_RULEBOOK)?;
        cfg.agents.dir = dir.clone();
        _tmp_agents = Some(TempDir(dir));
    } else {
        _tmp_agents = None;
    }
    let agent = cfg.agents.default_agent.clone();

    let shutdown = CancellationToken::new();
    let server = Server::start_with(cfg, shutdown.clone(), secrets).await?;
    eprintln!("loading models ...");
    let t = std::time::Instant::now();
    server.state.hub.models().await?;
    server.state.hub.brain(&server.state.config.agents.default_tenant, &agent).await?;
    eprintln!("models loaded in {:.1} s; placing the call (real time, about a minute) ...", t.elapsed().as_secs_f64());

    let call_id = format!("demo-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());
    // the stream URL a carrier would get in the TwiML: the call token in the path
    let url = format!("ws://{}/twilio/media/{call_id}/{}", server.addr, server.state.auth.call_tokens.mint(&call_id));
    if let Some(dir) = args.record.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let result = caller::run(&script, &CallerOptions { record: Some(args.record.clone()), ..CallerOptions::new(url) }).await;
    let events = wait_for_timeline(&server, &call_id).await;
    shutdown.cancel();
    let result = result?;
    let report = crate::report::build(&call_id, &result.lines, &events, result.recording.as_ref().map(|p| p.display().to_string()), Some(result.started_unix_ms));
    if let Some(e) = events.iter().find(|e| e.kind == "call_ended").and_then(|e| e.data.get("error")).and_then(|v| v.as_str()) {
        anyhow::bail!("the demo call failed: {e}");
    }
    if report.turns.is_empty() {
        anyhow::bail!("the demo call produced no turns (see the log above)");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        crate::report::print_demo(&report);
    }
    Ok(())
}

/// The call's timeline once it has ended and its post-call analysis is in, or 15 s passed (a
/// busy disk can hold the timeline's log up for seconds).
async fn wait_for_timeline(server: &Server, call_id: &str) -> Vec<callfunnel_data::TimelineEvent> {
    let mut events = Vec::new();
    for i in 0..200 {
        events = server.state.store.timeline(&server.state.calls.tenant_of(call_id).await, call_id).await.unwrap_or_default();
        let ended = events.iter().any(|e| e.kind == "call_ended");
        let analyzed = events.iter().any(|e| callfunnel_control::analysis::DONE_KINDS.contains(&e.kind.as_str()));
        if (ended && analyzed) || i >= 150 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    events
}

/// A stand-in for the clinic's booking system: answers every request with free slots.
async fn booking_endpoint() -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}/bookings", l.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf).await;
                let body = "Let me see. We have free slots tomorrow at ten a.m. and three p.m. May I have your name, please?";
                let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    Ok(url)
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
