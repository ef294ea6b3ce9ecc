use std::path::{Path, PathBuf};

use callfunnel_ai::local::{ort_env, silero};
use callfunnel_ai::models::ModelPaths;
use callfunnel_ai::VadFactory;
use callfunnel_control::Config;

#[derive(clap::Args)]
pub struct Args {
    /// A WAV file (any rate and channel count).
    file: PathBuf,
    /// Rate the VAD runs at: 8000 (telephone) or 16000.
    #[arg(long, default_value_t = 8000, value_parser = parse_rate)]
    rate: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let paths = ModelPaths::new(&cfg.models.dir);
    ort_env::init(&paths)?;
    let factory = silero::SileroVadFactory::load(&paths)?;
    let audio = callfunnel_media::dsp::wav::read_mono(&args.file, args.rate)?;
    let mut vad = factory.create(args.rate)?;
    let frame_ms = vad.frame_len() as f64 * 1000.0 / args.rate as f64;
    let probs = silero::probabilities(vad.as_mut(), &audio)?;
    if args.json {
        let frames: Vec<_> = probs.iter().enumerate().map(|(i, p)| serde_json::json!({"t_ms": (i as f64 * frame_ms).round(), "p": (p * 1000.0).round() / 1000.0})).collect();
        println!("{}", serde_json::to_string(&serde_json::json!({"file": args.file, "rate": args.rate, "frame_ms": frame_ms, "frames": frames}))?);
    } else {
        println!("{:>9}  {:>5}  ", "t (ms)", "p");
        for (i, p) in probs.iter().enumerate() {
            println!("{:>9.0}  {:>5.3}  {}", i as f64 * frame_ms, p, "#".repeat((p * 40.0).round() as usize));
        }
    }
    Ok(())
}

fn parse_rate(s: &str) -> Result<u32, String> {
    match s {
        "8000" => Ok(8000),
        "16000" => Ok(16000),
        _ => Err(format!("`{s}`: Silero runs at 8000 or 16000")),
    }
}
