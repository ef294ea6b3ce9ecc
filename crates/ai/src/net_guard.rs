//! SSRF guard for the HTTP tools an agent calls mid-call (the LLM brain's `http` tools and the
//! rule-book's `http` actions). Tenants choose those URLs, so they must not reach our own
//! network: loopback, private ranges, link-local (cloud metadata at 169.254.169.254), and so on.
//!
//! The check runs where it cannot be raced:
//! - host names go through [`GuardedResolver`], the client's DNS resolver: it resolves the name
//!   and drops every blocked address, and the connection is made to exactly the addresses it
//!   returned (no second lookup that a rebinding DNS server could answer differently);
//! - literal IP hosts (which never reach a resolver, in any spelling `url` accepts:
//!   `http://2130706433/`, `http://0x7f.1/`, `http://[::ffff:127.0.0.1]/`) are checked on the
//!   parsed URL before the request and on every redirect hop;
//! - redirects are re-checked hop by hop (scheme, literal hosts; names go through the resolver
//!   again) and capped; proxies are never used.
//!
//! [`ToolHttpPolicy::allow_networks`] lets an operator open a block on purpose (a tool server on
//! the same box in development, tests on 127.0.0.2); [`ToolHttpPolicy::default`] is strict:
//! https only, no private or special-purpose networks.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where agents' HTTP tools may go, and how long and how much they may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolHttpPolicy {
    /// Allow plain `http://` tool URLs (default: https only; turn on for local development).
    pub allow_http: bool,
    /// CIDR ranges reachable even though the block list covers them, e.g. `"10.20.0.0/16"` for
    /// an internal booking system, `"127.0.0.1/32"` for a tool server on the same box.
    pub allow_networks: Vec<String>,
    /// Longest a tool request may take (connect, response and body), whatever the tool asks for.
    pub timeout_ms: u64,
    /// Largest response body read; the rest is cut off.
    pub max_response_bytes: usize,
    /// Redirects followed per request (each hop is checked again).
    pub max_redirects: usize,
}

impl Default for ToolHttpPolicy {
    fn default() -> Self {
        ToolHttpPolicy { allow_http: false, allow_networks: Vec::new(), timeout_ms: 10_000, max_response_bytes: 64 * 1024, max_redirects: 3 }
    }
}

impl ToolHttpPolicy {
    /// A policy for tests and local demos: plain http to the given networks (and nothing else
    /// of the block list).
    pub fn local(networks: &[&str]) -> Self {
        ToolHttpPolicy { allow_http: true, allow_networks: networks.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    /// Checks the CIDRs and limits; the error names the bad entry.
    pub fn validate(&self) -> Result<(), String> {
        self.networks().map(|_| ())?;
        if self.timeout_ms == 0 {
            return Err("timeout_ms must be above 0".into());
        }
        if self.max_response_bytes == 0 {
            return Err("max_response_bytes must be above 0".into());
        }
        Ok(())
    }

    fn networks(&self) -> Result<Vec<Cidr>, String> {
        self.allow_networks.iter().enumerate().map(|(i, s)| s.parse::<Cidr>().map_err(|e| format!("allow_networks[{i}] `{s}`: {e}"))).collect()
    }
}

/// An IP network, `ADDR/PREFIX` (a bare address is a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Cidr {
        Cidr { addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)), prefix }
    }

    const fn v6(s: [u16; 8], prefix: u8) -> Cidr {
        Cidr { addr: IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])), prefix }
    }

    /// Whether `ip` is in this network (an IPv4 network never contains an IPv6 address: map
    /// first).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| format!("`{a}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && !p.starts_with('+') => n,
                Ok(n) if n > max => return Err(format!("prefix /{n} is longer than {max} bits")),
                _ => return Err(format!("prefix `{p}` is not a number of bits (0-{max})")),
            },
        };
        let c = Cidr { addr, prefix };
        let net = c.network();
        if net != addr {
            return Err(format!("host bits are set: did you mean {net}/{prefix}?"));
        }
        Ok(c)
    }
}

impl Cidr {
    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Networks no tool may reach unless `allow_networks` opens them, with what they are.
const BLOCKED: &[(Cidr, &str)] = &[
    (Cidr::v4(0, 0, 0, 0, 8), "a \"this network\" address (0.0.0.0/8)"),
    (Cidr::v4(10, 0, 0, 0, 8), "a private address (10.0.0.0/8)"),
    (Cidr::v4(100, 64, 0, 0, 10), "a shared/CGNAT address (100.64.0.0/10)"),
    (Cidr::v4(127, 0, 0, 0, 8), "a loopback address (127.0.0.0/8)"),
    (Cidr::v4(169, 254, 0, 0, 16), "a link-local/metadata address (169.254.0.0/16)"),
    (Cidr::v4(172, 16, 0, 0, 12), "a private address (172.16.0.0/12)"),
    (Cidr::v4(192, 0, 0, 0, 24), "an IETF protocol address (192.0.0.0/24)"),
    (Cidr::v4(192, 0, 2, 0, 24), "a documentation address (192.0.2.0/24)"),
    (Cidr::v4(192, 168, 0, 0, 16), "a private address (192.168.0.0/16)"),
    (Cidr::v4(198, 18, 0, 0, 15), "a benchmarking address (198.18.0.0/15)"),
    (Cidr::v4(198, 51, 100, 0, 24), "a documentation address (198.51.100.0/24)"),
    (Cidr::v4(203, 0, 113, 0, 24), "a documentation address (203.0.113.0/24)"),
    (Cidr::v4(224, 0, 0, 0, 4), "a multicast address (224.0.0.0/4)"),
    (Cidr::v4(240, 0, 0, 0, 4), "a reserved/broadcast address (240.0.0.0/4)"),
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "the unspecified address (::)"),
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "a loopback address (::1)"),
    (Cidr::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), "a NAT64 address (64:ff9b::/96)"),
    (Cidr::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), "a NAT64 address (64:ff9b:1::/48)"),
    (Cidr::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "a documentation address (2001:db8::/32)"),
    (Cidr::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "a unique-local (private) address (fc00::/7)"),
    (Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "a link-local address (fe80::/10)"),
    (Cidr::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), "a site-local address (fec0::/10)"),
    (Cidr::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "a multicast address (ff00::/8)"),
];

/// Host names refused before any lookup (cloud metadata services).
const BLOCKED_NAMES: &[&str] = &["metadata.google.internal", "metadata"];

/// The IPv4 address an IPv6 address carries: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d`, 6to4 `2002:AABB:CCDD::/48`.
fn embedded_v4(ip: Ipv6Addr) -> Option<(Ipv4Addr, &'static str)> {
    let s = ip.segments();
    let low = Ipv4Addr::from(u128::from(ip) as u32);
    if s[..5] == [0; 5] && s[5] == 0xffff {
        Some((low, "IPv4-mapped"))
    } else if s[..6] == [0; 6] {
        Some((low, "IPv4-compatible"))
    } else if s[0] == 0x2002 {
        Some((Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8), "6to4"))
    } else {
        None
    }
}

/// Why a tool request was refused before it was sent (the error's source chain carries it out
/// of reqwest).
#[derive(Debug, Clone)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The compiled policy.
#[derive(Debug)]
struct Guard {
    policy: ToolHttpPolicy,
    allow: Vec<Cidr>,
}

impl Guard {
    fn new(policy: ToolHttpPolicy) -> Result<Guard, ToolHttpError> {
        policy.validate().map_err(ToolHttpError::Policy)?;
        let allow = policy.networks().map_err(ToolHttpError::Policy)?;
        Ok(Guard { policy, allow })
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|n| n.contains(ip))
    }

    /// `Err(what ip is)` when `ip` may not be reached.
    fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if self.allowed(ip) {
            return Ok(());
        }
        let table = |ip: IpAddr| BLOCKED.iter().find(|(n, _)| n.contains(ip)).map(|(_, why)| *why);
        if let Some(why) = table(ip) {
            return Err(format!("{ip} is {why}"));
        }
        if let IpAddr::V6(v6) = ip
            && let Some((v4, form)) = embedded_v4(v6)
            && !self.allowed(IpAddr::V4(v4))
            && let Some(why) = table(IpAddr::V4(v4))
        {
            return Err(format!("{ip} ({form} {v4}) is {why}"));
        }
        Ok(())
    }

    fn check_name(&self, host: &str) -> Result<(), String> {
        let h = host.trim_end_matches('.').to_ascii_lowercase();
        if BLOCKED_NAMES.contains(&h.as_str()) {
            return Err(format!("{h} is a cloud metadata host"));
        }
        Ok(())
    }

    /// Scheme and host of a URL about to be requested (first hop or redirect).
    fn check_url(&self, url: &reqwest::Url) -> Result<(), String> {
        match url.scheme() {
            "https" => {}
            "http" if self.policy.allow_http => {}
            "http" => return Err("plain http is not allowed (use https, or set [tools] allow_http for development)".into()),
            other => return Err(format!("scheme `{other}` is not allowed")),
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or("the URL has no host")?;
        match literal_ip(host) {
            Some(ip) => self.check_ip(ip),
            None => self.check_name(host),
        }
    }
}

/// The IP of a literal host as `url` normalizes it (`url` already turned every IPv4 spelling
/// into dotted decimal and brackets IPv6).
fn literal_ip(host: &str) -> Option<IpAddr> {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A name lookup injected for tests: host → addresses.
pub type LookupFn = Arc<dyn Fn(&str) -> Vec<IpAddr> + Send + Sync>;

/// The DNS resolver of the tool client: resolves, then keeps only the addresses the policy
/// allows; the client connects to exactly those.
pub struct GuardedResolver {
    guard: Arc<Guard>,
    lookup: Option<LookupFn>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let guard = self.guard.clone();
        let lookup = self.lookup.clone();
        Box::pin(async move {
            guard.check_name(&host).map_err(|r| Box::new(Refused(r)) as BoxError)?;
            let ips: Vec<IpAddr> = match lookup {
                Some(f) => f(&host),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.map(|a| a.ip()).collect(),
            };
            let mut ok = Vec::new();
            let mut refused = None;
            for ip in ips {
                match guard.check_ip(ip) {
                    Ok(()) => ok.push(SocketAddr::new(ip, 0)),
                    Err(why) => {
                        refused.get_or_insert(why);
                    }
                }
            }
            if ok.is_empty() {
                let e: BoxError = match refused {
                    Some(why) => Box::new(Refused(format!("{host} resolves only to blocked addresses ({why})"))),
                    None => format!("{host} has no addresses").into(),
                };
                return Err(e);
            }
            Ok::<reqwest::dns::Addrs, BoxError>(Box::new(ok.into_iter()))
        })
    }
}

/// Why a tool request failed. The text never holds the URL's query or credentials.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolHttpError {
    #[error("invalid [tools] policy: {0}")]
    Policy(String),
    #[error("bad method `{0}`")]
    BadMethod(String),
    #[error("bad tool URL: {0}")]
    BadUrl(String),
    /// The SSRF guard refused the URL, a redirect or every address of the host.
    #[error("tool URL refused: {0}")]
    Refused(String),
    #[error("tool request timed out after {0} ms")]
    Timeout(u64),
    #[error("request failed: {0}")]
    Request(String),
}

/// The HTTP client agents' tools use: every request goes through the policy. Cheap to clone.
#[derive(Clone)]
pub struct ToolHttp {
    guard: Arc<Guard>,
    client: reqwest::Client,
}

impl fmt::Debug for ToolHttp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolHttp").field("policy", &self.guard.policy).finish()
    }
}

impl Default for ToolHttp {
    /// The strict policy: https only, no private or special-purpose networks.
    fn default() -> Self {
        ToolHttp::new(ToolHttpPolicy::default()).expect("the default tool policy is valid")
    }
}

impl ToolHttp {
    pub fn new(policy: ToolHttpPolicy) -> Result<ToolHttp, ToolHttpError> {
        Self::build(policy, None)
    }

    /// With names resolved by `lookup` instead of the system resolver (tests).
    pub fn with_resolver(policy: ToolHttpPolicy, lookup: LookupFn) -> Result<ToolHttp, ToolHttpError> {
        Self::build(policy, Some(lookup))
    }

    fn build(policy: ToolHttpPolicy, lookup: Option<LookupFn>) -> Result<ToolHttp, ToolHttpError> {
        let guard = Arc::new(Guard::new(policy)?);
        let g = guard.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let max = g.policy.max_redirects;
            if attempt.previous().len() > max {
                let e = if max == 0 { "the tool answered with a redirect and redirects are not allowed".to_string() } else { format!("more than {max} redirects") };
                return attempt.error(Refused(e));
            }
            match g.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(why) => attempt.error(Refused(format!("redirect: {why}"))),
            }
        });
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver { guard: guard.clone(), lookup })
            .no_proxy()
            .redirect(redirects)
            .referer(false)
            .connect_timeout(Duration::from_millis(guard.policy.timeout_ms))
            .build()
            .map_err(|e| ToolHttpError::Request(format!("building the tool HTTP client: {e}")))?;
        Ok(ToolHttp { guard, client })
    }

    pub fn policy(&self) -> &ToolHttpPolicy {
        &self.guard.policy
    }

    /// The guarded client (names resolve through the guard; redirects are re-checked) for
    /// requests `send` does not shape, e.g. signed webhooks. Check literal-IP URLs with
    /// [`ToolHttp::check_url`] first: they bypass the resolver.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Whether `url` passes the checks that need no lookup (scheme, literal IP, blocked
    /// names): for refusing a bad URL when it is configured rather than when it is called.
    pub fn check_url(&self, url: &str) -> Result<(), ToolHttpError> {
        let u = reqwest::Url::parse(url).map_err(|e| ToolHttpError::BadUrl(e.to_string()))?;
        self.guard.check_url(&u).map_err(ToolHttpError::Refused)
    }

    /// Sends a tool request: for GET the fields of the `input` object become the query, for
    /// other methods `input` is the JSON body. The time is capped by the policy (`timeout_ms`
    /// is the tool's own limit) and the body by `max_response_bytes`. Any status is `Ok`.
    pub async fn send(&self, method: &str, url: &str, input: Option<&Value>, timeout_ms: u64) -> Result<(u16, String), ToolHttpError> {
        let m = reqwest::Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes()).map_err(|_| ToolHttpError::BadMethod(method.chars().take(20).collect()))?;
        let mut url = reqwest::Url::parse(url).map_err(|e| ToolHttpError::BadUrl(e.to_string()))?;
        self.guard.check_url(&url).map_err(ToolHttpError::Refused)?;
        if m == reqwest::Method::GET
            && let Some(o) = input.and_then(Value::as_object)
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in o {
                q.append_pair(k, &v.as_str().map_or_else(|| v.to_string(), str::to_string));
            }
        }
        let cap = self.guard.policy.timeout_ms;
        let ms = if timeout_ms == 0 { cap } else { timeout_ms.min(cap) };
        let limit = self.guard.policy.max_response_bytes;
        let mut req = self.client.request(m.clone(), url).timeout(Duration::from_millis(ms));
        if m != reqwest::Method::GET
            && let Some(b) = input
        {
            req = req.json(b);
        }
        let work = async move {
            let mut resp = req.send().await.map_err(|e| classify(e, ms))?;
            let status = resp.status().as_u16();
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| classify(e, ms))? {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= limit {
                    break;
                }
            }
            Ok((status, String::from_utf8_lossy(&body).into_owned()))
        };
        tokio::time::timeout(Duration::from_millis(ms), work).await.map_err(|_| ToolHttpError::Timeout(ms))?
    }
}

/// A reqwest error as a [`ToolHttpError`]: a refusal of the guard found in its sources, a
/// timeout, or the error and its root cause (never the URL).
fn classify(e: reqwest::Error, ms: u64) -> ToolHttpError {
    let mut root = None;
    {
        let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
        while let Some(s) = src {
            if let Some(r) = s.downcast_ref::<Refused>() {
                return ToolHttpError::Refused(r.0.clone());
            }
            root = Some(s.to_string());
            src = s.source();
        }
    }
    if e.is_timeout() {
        return ToolHttpError::Timeout(ms);
    }
    let e = e.without_url().to_string();
    match root.filter(|r| !e.contains(r.as_str())) {
        Some(r) => ToolHttpError::Request(format!("{e}: {r}")),
        None => ToolHttpError::Request(e),
    }
}

/// `scheme://host[:port]/path` of a URL, for logs and tool events: no credentials or query
/// (templated URLs may carry keys there).
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}{}", u.scheme(), u.host_str().unwrap_or(""), u.port().map(|p| format!(":{p}")).unwrap_or_default()) + u.path(),
        Err(_) => "(invalid URL)".into(),
    }
}

#[cfg(test)]
mod tests;
