//! `X-Twilio-Signature`, computed exactly as Twilio's own `RequestValidator` does: the full URL,
//! then every POST parameter sorted by name (a repeated name's values sorted too) appended as
//! `name` + `value`, HMAC-SHA1 with the auth token, base64. Twilio is inconsistent about default
//! ports, so a URL is accepted with its default port added or with any port removed. JSON
//! webhooks carry `bodySHA256` in the URL instead of parameters.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The HMAC a webhook is signed with: SHA-1 with the auth token (the classic scheme), or
/// SHA-256 with a webhook SharedKey (named by `X-Twilio-Webhooks-Signature-Settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha1,
    HmacSha256,
}

impl Algorithm {
    /// From the `X-Twilio-Webhooks-Signature-Settings` header (`key=…,algorithm=HMAC_SHA256`);
    /// no header or no `algorithm` means HMAC-SHA1. None for an algorithm we do not know.
    pub fn from_settings(header: Option<&str>) -> Option<Algorithm> {
        let alg = header.unwrap_or_default().split(',').find_map(|part| {
            let (k, v) = part.split_once('=')?;
            (k.trim() == "algorithm" && !v.trim().is_empty()).then(|| v.trim().to_ascii_uppercase())
        });
        match alg.as_deref() {
            None | Some("HMAC_SHA1") => Some(Algorithm::HmacSha1),
            Some("HMAC_SHA256") => Some(Algorithm::HmacSha256),
            Some(_) => None,
        }
    }
}

/// The string Twilio signs: the URL, then each distinct `name` + `value`, sorted.
fn signed_string(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut s = url.to_string();
    for (k, v) in sorted {
        s.push_str(k);
        s.push_str(v);
    }
    s
}

/// The signature of a request to `url` with form `params`, signed with `auth_token`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    sign_with(Algorithm::HmacSha1, auth_token, url, params)
}

pub fn sign_with(alg: Algorithm, key: &str, url: &str, params: &[(String, String)]) -> String {
    let s = signed_string(url, params);
    let digest = match alg {
        Algorithm::HmacSha1 => {
            let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
            mac.update(s.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Algorithm::HmacSha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
            mac.update(s.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The URL as Twilio may have signed it: as given, with the default port, without any port.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Ok(u) = url::Url::parse(url) else { return out };
    let default = match u.scheme() {
        "https" | "wss" => 443,
        "http" | "ws" => 80,
        _ => return out,
    };
    let host = match u.host_str() {
        Some(h) => h.to_string(),
        None => return out,
    };
    // Rebuild by hand: `url` drops a default port when asked to set it.
    let userinfo = if u.username().is_empty() { String::new() } else { format!("{}{}@", u.username(), u.password().map(|p| format!(":{p}")).unwrap_or_default()) };
    let rest = &url[url.find(&host).map_or(url.len(), |i| i + host.len())..];
    let rest = match rest.strip_prefix(':') {
        Some(r) => &r[r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len())..],
        None => rest,
    };
    let base = format!("{}://{userinfo}{host}", u.scheme());
    for v in [format!("{base}:{default}{rest}"), format!("{base}{rest}")] {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks signatures with the primary auth token and, during a rotation, the secondary one.
pub struct Validator {
    tokens: Vec<String>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Validator({} token(s))", self.tokens.len())
    }
}

impl Validator {
    pub fn new(primary: String, secondary: Option<String>) -> Self {
        Validator { tokens: std::iter::once(primary).chain(secondary).filter(|t| !t.is_empty()).collect() }
    }

    /// True if `signature` signs a form request to `url` with `params` under any token.
    pub fn validate(&self, url: &str, params: &[(String, String)], signature: &str) -> bool {
        self.validate_with(Algorithm::HmacSha1, url, params, signature)
    }

    pub fn validate_with(&self, alg: Algorithm, url: &str, params: &[(String, String)], signature: &str) -> bool {
        let variants = url_variants(url);
        self.tokens.iter().any(|t| variants.iter().any(|u| constant_time_eq(sign_with(alg, t, u, params).as_bytes(), signature.as_bytes())))
    }

    /// A JSON-bodied webhook: `bodySHA256` in the URL must be the body's SHA-256 (hex), and the
    /// URL is signed with no parameters.
    pub fn validate_json_body(&self, url: &str, body: &[u8], signature: &str) -> bool {
        self.validate_json_body_with(Algorithm::HmacSha1, url, body, signature)
    }

    pub fn validate_json_body_with(&self, alg: Algorithm, url: &str, body: &[u8], signature: &str) -> bool {
        let Ok(u) = url::Url::parse(url) else { return false };
        let Some(claimed) = u.query_pairs().find(|(k, _)| k == "bodySHA256").map(|(_, v)| v.into_owned()) else { return false };
        let actual: String = Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
        constant_time_eq(actual.as_bytes(), claimed.to_ascii_lowercase().as_bytes()) && self.validate_with(alg, url, &[], signature)
    }
}

/// The URL Twilio called, behind any proxy: `configured_base` (e.g. `https://voice.example.com`)
/// if set, else scheme from `X-Forwarded-Proto` (default http: we do not terminate TLS
/// ourselves, so a request without the header came straight over plain HTTP) and host from
/// `X-Forwarded-Host` or `Host`. A WebSocket upgrade is signed over `wss://` (`ws://` for http).
pub fn public_url(configured_base: Option<&str>, headers: &HeaderMap, path_and_query: &str, websocket: bool) -> String {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(|v| v.split(',').next().unwrap_or("").trim().to_string()).filter(|v| !v.is_empty());
    let (scheme, host) = match configured_base.and_then(|b| b.split_once("://")) {
        Some((s, h)) => (s.to_string(), h.trim_end_matches('/').to_string()),
        None => (header("x-forwarded-proto").unwrap_or_else(|| "http".into()), header("x-forwarded-host").or_else(|| header("host")).unwrap_or_default()),
    };
    let scheme = match (websocket, scheme.as_str()) {
        (true, "https" | "wss") => "wss",
        (true, _) => "ws",
        (false, "wss") => "https",
        (false, "ws") => "http",
        (false, s) => s,
    };
    format!("{scheme}://{host}{path_and_query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The example in Twilio's security documentation (the SDK computes the same).
    #[test]
    fn matches_twilios_documented_example() {
        let params = p(&[("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"), ("From", "+12349013030"), ("To", "+18005551212")]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(sign("12345", url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        let v = Validator::new("12345".into(), None);
        assert!(v.validate(url, &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(v.validate("https://mycompany.com:443/myapp.php?foo=1&bar=2", &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="), "default port added");
        assert!(!v.validate(url, &p(&[("CallSid", "CA1234567890ABCDE")]), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!v.validate("https://mycompany.com/myapp.php?foo=1&bar=3", &params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    }

    #[test]
    fn ports_rotation_and_repeated_params() {
        let params = p(&[("b", "2"), ("a", "z"), ("a", "y")]);
        let with_port = sign("new", "wss://h.example:443/twilio/media/c1", &params);
        let v = Validator::new("new".into(), Some("old".into()));
        assert!(v.validate("wss://h.example/twilio/media/c1", &params, &with_port));
        let old = sign("old", "wss://h.example/twilio/media/c1", &params);
        assert!(v.validate("wss://h.example:443/twilio/media/c1", &params, &old), "the secondary token during rotation");
        assert!(!Validator::new("new".into(), None).validate("wss://h.example/twilio/media/c1", &params, &old));
        // Repeated names sort by value too: order of arrival does not matter.
        assert_eq!(sign("k", "https://x/", &p(&[("a", "y"), ("a", "z")])), sign("k", "https://x/", &p(&[("a", "z"), ("a", "y")])));
        assert!(!v.validate("wss://h.example/twilio/media/c1", &params, ""));
    }

    #[test]
    fn shared_key_signatures_use_hmac_sha256() {
        assert_eq!(Algorithm::from_settings(None), Some(Algorithm::HmacSha1));
        assert_eq!(Algorithm::from_settings(Some("key=wk_1,algorithm=HMAC_SHA256")), Some(Algorithm::HmacSha256));
        assert_eq!(Algorithm::from_settings(Some("key=wk_1")), Some(Algorithm::HmacSha1));
        assert_eq!(Algorithm::from_settings(Some("algorithm=ED25519")), None);
        let params = p(&[("CallSid", "CA1")]);
        let sig = sign_with(Algorithm::HmacSha256, "shared", "https://h/twilio/voice", &params);
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(&sig).unwrap().len(), 32);
        let v = Validator::new("shared".into(), None);
        assert!(v.validate_with(Algorithm::HmacSha256, "https://h/twilio/voice", &params, &sig));
        assert!(!v.validate(&"https://h/twilio/voice".to_string(), &params, &sig), "not a SHA-1 signature");
    }

    #[test]
    fn json_bodies_check_the_hash() {
        let body = br#"{"event":"x"}"#;
        let hash: String = Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
        let url = format!("https://h.example/hook?bodySHA256={hash}");
        let sig = sign("t", &url, &[]);
        let v = Validator::new("t".into(), None);
        assert!(v.validate_json_body(&url, body, &sig));
        assert!(!v.validate_json_body(&url, br#"{"event":"y"}"#, &sig), "tampered body");
        assert!(!v.validate_json_body("https://h.example/hook", body, &sig), "no hash");
    }

    #[test]
    fn public_url_follows_the_proxy_or_the_configuration() {
        let mut h = HeaderMap::new();
        h.insert("host", "10.0.0.5:8080".parse().unwrap());
        assert_eq!(public_url(None, &h, "/twilio/voice", false), "http://10.0.0.5:8080/twilio/voice");
        assert_eq!(public_url(None, &h, "/twilio/media/c1", true), "ws://10.0.0.5:8080/twilio/media/c1");
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        h.insert("x-forwarded-host", "voice.example.com".parse().unwrap());
        assert_eq!(public_url(None, &h, "/twilio/media/c1", true), "wss://voice.example.com/twilio/media/c1");
        assert_eq!(public_url(Some("https://v.example.org/"), &h, "/twilio/voice?x=1", false), "https://v.example.org/twilio/voice?x=1");
        assert_eq!(public_url(Some("http://127.0.0.1:9"), &h, "/twilio/media/c1", true), "ws://127.0.0.1:9/twilio/media/c1");
    }
}
