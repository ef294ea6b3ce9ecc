//! Outbound HTTP to tenant-supplied URLs (webhooks): the same network policy as agent tools.

use std::time::Duration;

use crate::config::Config;

/// The client webhook deliveries use: no redirects, no proxies, bounded time.
pub fn webhook_client(_cfg: &Config) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().connect_timeout(Duration::from_secs(5)).build()?)
}

/// Whether a tenant may register `url` as a webhook.
pub async fn check_url(_cfg: &Config, url: &str) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|e| format!("`{}` is not a URL: {e}", url.chars().take(100).collect::<String>()))?;
    match u.scheme() {
        "https" | "http" => Ok(()),
        other => Err(format!("scheme `{other}` is not allowed: use https")),
    }
}
