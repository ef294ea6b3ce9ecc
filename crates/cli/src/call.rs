use std::path::PathBuf;

use callfunnel_media::caller::{self, CallerOptions, Script};

#[derive(clap::Args)]
pub struct Args {
    /// Media Streams WebSocket URL, e.g. ws://127.0.0.1:8080/twilio/media/CALL_ID
    #[arg(long)]
    url: String,
    /// Caller script (TOML with [[line]] entries).
    #[arg(long)]
    script: PathBuf,
    /// Write a stereo WAV (left: caller, right: agent as heard).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if !(args.url.starts_with("ws://") || args.url.starts_with("wss://")) {
        anyhow::bail!("--url must be a ws:// or wss:// URL, got `{}`", args.url);
    }
    let script = Script::from_file(&args.script)?;
    let report = caller::run(&script, &CallerOptions { url: args.url.clone(), record: args.record }).await?;
    // The agent's side, if the server is callfunnel (its call API is on the same host).
    let timeline = crate::report::fetch_timeline(&args.url).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"caller": report, "timeline": timeline}))?);
    } else {
        crate::report::print_call(&report, timeline.as_deref());
    }
    Ok(())
}
