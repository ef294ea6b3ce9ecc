//! `callfunnel token`: mints an access token with the built-in dev issuer (`[auth] mode = "dev"`),
//! for `Authorization: Bearer TOKEN` on the `/v1` API of a server using the same data directory.

use callfunnel_control::Config;
use callfunnel_control::auth::{AuthMode, Role, open_dev_issuer};

#[derive(clap::Args)]
pub struct Args {
    /// The tenant the token acts for (omit only with --role platform-admin).
    #[arg(long)]
    tenant: Option<String>,
    /// platform-admin, tenant-admin, editor or viewer.
    #[arg(long, default_value = "tenant-admin")]
    role: String,
    /// The subject (user or service) named in the token.
    #[arg(long, default_value = "cli")]
    subject: String,
    /// Lifetime in seconds (at most a day).
    #[arg(long, default_value_t = 3600)]
    ttl: i64,
}

pub fn run(args: Args, config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    if cfg.auth.mode != AuthMode::Dev {
        anyhow::bail!("[auth] mode is `oidc`: get tokens from your identity provider ({})", cfg.auth.issuer.as_deref().unwrap_or("issuer not set"));
    }
    let role = Role::parse(&args.role).ok_or_else(|| anyhow::anyhow!("--role must be platform-admin, tenant-admin, editor or viewer"))?;
    if args.tenant.is_none() && role != Role::PlatformAdmin {
        anyhow::bail!("--tenant is required (only a platform-admin token may omit it)");
    }
    if let Some(t) = &args.tenant {
        callfunnel_data::check_id(t)?;
    }
    if !(1..=86_400).contains(&args.ttl) {
        anyhow::bail!("--ttl must be 1-86400 seconds");
    }
    let issuer = open_dev_issuer(&cfg)?;
    println!("{}", issuer.token(&args.subject, args.tenant.as_deref(), &[role.as_str()], &cfg.auth.audience, args.ttl));
    Ok(())
}
