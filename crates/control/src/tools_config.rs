//! `[tools]`: where the HTTP tools agents call mid-call may go (the SSRF guard of
//! [`callfunnel_ai::net_guard`]). The default is strict: https only, no loopback, private,
//! link-local/metadata or other special-purpose addresses; `allow_networks` opens ranges on
//! purpose (an internal booking system, a tool server on the same box in development).

use callfunnel_ai::net_guard::ToolHttp;

/// The `[tools]` section (see `config/example.toml`).
pub type ToolsConfig = callfunnel_ai::net_guard::ToolHttpPolicy;

/// The client every agent's HTTP tools run on, from the `[tools]` section.
pub fn tool_http(cfg: &ToolsConfig) -> anyhow::Result<ToolHttp> {
    ToolHttp::new(cfg.clone()).map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn load(toml: &str) -> anyhow::Result<Config> {
        let dir = std::env::temp_dir().join(format!("cf-tools-config-{}-{}", std::process::id(), toml.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(&f, toml).unwrap();
        let c = Config::load(Some(&f));
        let _ = std::fs::remove_dir_all(&dir);
        c
    }

    #[test]
    fn tools_section_is_strict_by_default_and_read_from_the_file() {
        let d = Config::default().tools;
        assert!(!d.allow_http && d.allow_networks.is_empty());
        assert_eq!((d.timeout_ms, d.max_response_bytes, d.max_redirects), (10_000, 64 * 1024, 3));
        let c = load("[tools]\nallow_http = true\nallow_networks = [\"10.20.0.0/16\", \"127.0.0.1\"]\ntimeout_ms = 5000\n").unwrap();
        assert!(c.tools.allow_http);
        assert_eq!(c.tools.allow_networks, ["10.20.0.0/16", "127.0.0.1"]);
        assert_eq!((c.tools.timeout_ms, c.tools.max_redirects), (5000, 3));
        super::tool_http(&c.tools).unwrap();
    }

    #[test]
    fn bad_tools_sections_are_refused_with_the_reason() {
        let e = load("[tools]\nallow_networks = [\"10.0.0.1/8\"]\n").unwrap_err().to_string();
        assert!(e.contains("[tools]") && e.contains("allow_networks[0] `10.0.0.1/8`") && e.contains("did you mean 10.0.0.0/8"), "{e}");
        let e = load("[tools]\nallow_networks = [\"intranet\"]\n").unwrap_err().to_string();
        assert!(e.contains("not an IP address"), "{e}");
        let e = load("[tools]\nalow_http = true\n").unwrap_err().to_string();
        assert!(e.contains("alow_http"), "{e}");
    }

    #[test]
    fn the_example_config_keeps_the_strict_default() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.toml");
        let c = Config::load(Some(&p)).unwrap();
        assert!(!c.tools.allow_http && c.tools.allow_networks.is_empty(), "{:?}", c.tools);
    }
}
