//! Outbound HTTP to tenant-supplied URLs other than agent tools — webhooks — under the same
//! `[tools]` network policy (the SSRF guard): no loopback, private, link-local or metadata
//! addresses unless allowed, checked after DNS resolution and on every redirect.

use std::time::Duration;

use callfunnel_ai::net_guard::ToolHttp;

use crate::config::Config;

/// Delivers webhooks through the guarded client: no redirects followed beyond the policy's,
/// bounded time.
pub struct GuardedSender(pub ToolHttp);

pub fn webhook_sender(cfg: &Config) -> anyhow::Result<GuardedSender> {
    Ok(GuardedSender(crate::tools_config::tool_http(&cfg.tools)?))
}

#[async_trait::async_trait]
impl crate::webhooks::Sender for GuardedSender {
    async fn post(&self, url: &str, headers: Vec<(&'static str, String)>, body: String) -> Result<u16, String> {
        self.0.check_url(url).map_err(|e| e.to_string())?;
        let mut r = self.0.client().post(url).timeout(Duration::from_millis(self.0.policy().timeout_ms)).body(body);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r.send().await.map(|r| r.status().as_u16()).map_err(|e| {
            // the guard's refusal is in the error chain; never the URL (it may carry secrets)
            let e = e.without_url();
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            msg
        })
    }
}

/// Whether a tenant may register `url` as a webhook (scheme, literal addresses, names the
/// policy blocks; names are checked again after DNS at each delivery).
pub async fn check_url(cfg: &Config, url: &str) -> Result<(), String> {
    let guard = crate::tools_config::tool_http(&cfg.tools).map_err(|e| e.to_string())?;
    guard.check_url(url).map_err(|e| e.to_string())
}
