use std::path::PathBuf;

use base64::Engine as _;
use callfunnel_media::caller::{self, CallerCarrier, CallerOptions, Script};

#[derive(clap::Args)]
pub struct Args {
    /// Media WebSocket URL, e.g. ws://127.0.0.1:8080/twilio/media/CALL_ID/CALL_TOKEN (from the
    /// TwiML). Without a call token, one is made with this machine's server key (the server
    /// must use the same data directory).
    #[arg(long)]
    url: String,
    /// Bearer token to read the call's timeline from the server's API afterwards (default:
    /// a viewer token from the built-in dev issuer, when `[auth] mode = "dev"`).
    #[arg(long, env = "CALLFUNNEL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Carrier protocol to speak (default: from the URL path, else twilio).
    #[arg(long, value_parser = ["twilio", "exotel"])]
    carrier: Option<String>,
    /// Exotel only: send and expect µ-law instead of 16-bit PCM.
    #[arg(long)]
    exotel_mulaw: bool,
    /// Twilio only: sign the upgrade with X-Twilio-Signature using this auth token.
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    twilio_auth_token: Option<String>,
    /// Exotel only: `user:password` sent as Basic auth on the upgrade.
    #[arg(long, env = "EXOTEL_STREAM_AUTH", hide_env_values = true)]
    exotel_auth: Option<String>,
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

pub async fn run(mut args: Args, config: Option<&std::path::Path>) -> anyhow::Result<()> {
    if !(args.url.starts_with("ws://") || args.url.starts_with("wss://")) {
        anyhow::bail!("--url must be a ws:// or wss:// URL, got `{}`", args.url);
    }
    let script = Script::from_file(&args.script)?;
    let cfg = callfunnel_control::Config::load(config)?;
    let target = crate::report::media_target(&args.url).ok_or_else(|| anyhow::anyhow!("--url must end in /twilio/media/CALL_ID[/TOKEN] or /exotel/media/CALL_ID[/TOKEN]"))?;
    if target.token.is_none() {
        let tokens = callfunnel_control::auth::CallTokens::open(std::env::var(callfunnel_control::auth::CALL_TOKEN_SECRET_ENV).ok(), &cfg.data.dir.join("auth"), cfg.auth.call_token_ttl_secs)?;
        args.url = target.with_token(&tokens.mint(&target.call_id));
    }
    let api_token = args.token.clone().or_else(|| {
        let dev = (cfg.auth.mode == callfunnel_control::auth::AuthMode::Dev).then(|| callfunnel_control::auth::open_dev_issuer(&cfg).ok()).flatten()?;
        Some(dev.token("callfunnel-call", Some(&cfg.agents.default_tenant), &["viewer"], &cfg.auth.audience, 600))
    });
    let exotel = match args.carrier.as_deref() {
        Some(c) => c == "exotel",
        None => args.url.contains("/exotel/"),
    };
    let mut opts = CallerOptions { record: args.record.clone(), ..CallerOptions::new(args.url.clone()) };
    if exotel {
        opts.carrier = CallerCarrier::Exotel { mulaw: args.exotel_mulaw };
        if let Some(auth) = &args.exotel_auth {
            opts.headers.push(("Authorization".into(), format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(auth))));
        }
    } else if let Some(token) = &args.twilio_auth_token {
        opts.headers.push(("X-Twilio-Signature".into(), callfunnel_telephony::twilio::signature::sign(token, &args.url, &[])));
    }
    let report = caller::run(&script, &opts).await?;
    // The agent's side, if the server is callfunnel (its call API is on the same host).
    let timeline = match api_token {
        Some(t) => crate::report::fetch_timeline(&args.url, &t).await,
        None => None,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"caller": report, "timeline": timeline}))?);
    } else {
        crate::report::print_call(&report, timeline.as_deref());
    }
    Ok(())
}
