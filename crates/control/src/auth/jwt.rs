//! RS256 JSON Web Tokens: parse, verify the signature with a key chosen by `kid`, check the
//! registered claims. Only RS256 is accepted: `none`, HMAC (e.g. HS256 "signed" with our public
//! key) and every other algorithm are refused before any key is looked at.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value};

/// Longest token we look at (Keycloak access tokens are ~1-2 KiB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused. The message is safe to return to the caller (it never echoes the
/// token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("token algorithm `{0}` is not accepted (RS256 only)")]
    Algorithm(String),
    #[error("token signing key `{0}` is unknown to the issuer")]
    UnknownKey(String),
    #[error("token signature is invalid")]
    Signature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was issued by `{0}`, not the configured issuer")]
    Issuer(String),
    #[error("token audience does not include this API")]
    Audience,
    #[error("the issuer's keys cannot be fetched: {0}")]
    KeysUnavailable(String),
}

/// An RSA public key from a JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaKey {
    pub kid: String,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

/// A token split into its parts; nothing in it is trusted yet.
pub struct Unverified<'a> {
    pub kid: String,
    signing_input: &'a str,
    signature: Vec<u8>,
    payload: Vec<u8>,
}

fn part(s: &str) -> Result<Vec<u8>, TokenError> {
    B64.decode(s).map_err(|_| TokenError::Malformed("a part is not base64url"))
}

/// Splits and checks the header: `alg` must be RS256, a `kid` must be present, no `crit`.
pub fn parse(token: &str) -> Result<Unverified<'_>, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed("too long"));
    }
    let mut it = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(TokenError::Malformed("not three dot-separated parts"));
    };
    let header: Map<String, Value> = serde_json::from_slice(&part(h)?).map_err(|_| TokenError::Malformed("header is not a JSON object"))?;
    match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => {}
        Some(other) => return Err(TokenError::Algorithm(other.chars().take(16).collect())),
        None => return Err(TokenError::Malformed("no alg")),
    }
    if header.contains_key("crit") {
        return Err(TokenError::Malformed("critical header extensions are not supported"));
    }
    let kid = header.get("kid").and_then(Value::as_str).ok_or(TokenError::Malformed("no kid"))?;
    if kid.is_empty() || kid.len() > 128 {
        return Err(TokenError::Malformed("bad kid"));
    }
    let signature = part(s)?;
    if signature.is_empty() {
        return Err(TokenError::Signature);
    }
    Ok(Unverified { kid: kid.to_string(), signing_input: &token[..h.len() + 1 + p.len()], signature, payload: part(p)? })
}

impl Unverified<'_> {
    /// Verifies the signature with `key`, then returns the claims (not yet checked).
    pub fn verify(self, key: &RsaKey) -> Result<Map<String, Value>, TokenError> {
        let pk = RsaPublicKeyComponents { n: key.n.as_slice(), e: key.e.as_slice() };
        pk.verify(&signature::RSA_PKCS1_2048_8192_SHA256, self.signing_input.as_bytes(), &self.signature).map_err(|_| TokenError::Signature)?;
        serde_json::from_slice(&self.payload).map_err(|_| TokenError::Malformed("payload is not a JSON object"))
    }
}

/// What the registered claims must say.
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub accepted_azp: &'a [String],
    pub leeway_secs: i64,
    pub now_unix: i64,
}

/// Checks `iss`, `exp` (required), `nbf`, `iat` and `aud` (or an accepted `azp`).
pub fn check_claims(c: &Map<String, Value>, x: &Expect) -> Result<(), TokenError> {
    let iss = c.get("iss").and_then(Value::as_str).unwrap_or_default();
    if iss != x.issuer {
        return Err(TokenError::Issuer(iss.chars().take(200).collect()));
    }
    let num = |k: &str| c.get(k).and_then(Value::as_f64).map(|v| v as i64);
    let exp = num("exp").ok_or(TokenError::Malformed("no exp"))?;
    if x.now_unix > exp + x.leeway_secs {
        return Err(TokenError::Expired);
    }
    if num("nbf").is_some_and(|nbf| nbf > x.now_unix + x.leeway_secs) || num("iat").is_some_and(|iat| iat > x.now_unix + x.leeway_secs) {
        return Err(TokenError::NotYetValid);
    }
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => a == x.audience,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(x.audience)),
        _ => false,
    };
    let azp_ok = c.get("azp").and_then(Value::as_str).is_some_and(|azp| x.accepted_azp.iter().any(|a| a == azp));
    if !aud_ok && !azp_ok {
        return Err(TokenError::Audience);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(c: Value) -> Result<(), TokenError> {
        let x = Expect { issuer: "https://id/realms/voice", audience: "voice-api", accepted_azp: &["svc-trusted".to_string()], leeway_secs: 30, now_unix: 1000 };
        check_claims(c.as_object().unwrap(), &x)
    }

    #[test]
    fn registered_claims_are_checked_with_leeway() {
        let ok = json!({"iss": "https://id/realms/voice", "aud": "voice-api", "exp": 1100});
        assert_eq!(check(ok.clone()), Ok(()));
        assert_eq!(check(json!({"iss": "https://id/realms/voice", "aud": ["account", "voice-api"], "exp": 1100})), Ok(()), "aud as an array");
        assert_eq!(check(json!({"iss": "https://id/realms/voice", "aud": "account", "azp": "svc-trusted", "exp": 1100})), Ok(()), "an accepted azp");
        assert_eq!(check(json!({"iss": "https://id/realms/voice", "aud": "account", "azp": "svc-other", "exp": 1100})), Err(TokenError::Audience));
        assert_eq!(check(json!({"iss": "https://id/realms/voice", "exp": 1100})), Err(TokenError::Audience), "no aud");
        assert_eq!(check(json!({"iss": "https://evil/realms/voice", "aud": "voice-api", "exp": 1100})), Err(TokenError::Issuer("https://evil/realms/voice".into())));
        assert_eq!(check(json!({"aud": "voice-api", "exp": 1100})), Err(TokenError::Issuer(String::new())));
        assert_eq!(check(json!({"iss": "https://id/realms/voice", "aud": "voice-api"})), Err(TokenError::Malformed("no exp")));
        assert_eq!(check(json!({"iss": "https://id/realms/voice", "aud": "voice-api", "exp": 970})), Ok(()), "expired within the leeway");
        assert_eq!(check(json!({"iss": "https://id/realms/voice", "aud": "voice-api", "exp": 969})), Err(TokenError::Expired));
        assert_eq!(check(json!({"iss": "https://id/realms/voice", "aud": "voice-api", "exp": 2000, "nbf": 1031})), Err(TokenError::NotYetValid));
        assert_eq!(check(json!({"iss": "https://id/realms/voice", "aud": "voice-api", "exp": 2000, "nbf": 1030, "iat": 1030})), Ok(()));
        assert_eq!(check(json!({"iss": "https://id/realms/voice", "aud": "voice-api", "exp": 2000, "iat": 1100})), Err(TokenError::NotYetValid), "issued in the future");
    }

    #[test]
    fn only_rs256_with_a_kid_gets_past_the_header() {
        let enc = |h: Value| format!("{}.e30.c2ln", B64.encode(h.to_string()));
        assert!(parse(&enc(json!({"alg": "RS256", "kid": "k1"}))).is_ok());
        for (h, want) in [
            (json!({"alg": "none", "kid": "k1"}), TokenError::Algorithm("none".into())),
            (json!({"alg": "HS256", "kid": "k1"}), TokenError::Algorithm("HS256".into())),
            (json!({"alg": "RS512", "kid": "k1"}), TokenError::Algorithm("RS512".into())),
            (json!({"alg": "ES256", "kid": "k1"}), TokenError::Algorithm("ES256".into())),
            (json!({"kid": "k1"}), TokenError::Malformed("no alg")),
            (json!({"alg": "RS256"}), TokenError::Malformed("no kid")),
            (json!({"alg": "RS256", "kid": "k1", "crit": ["exp"]}), TokenError::Malformed("critical header extensions are not supported")),
        ] {
            assert_eq!(parse(&enc(h.clone())).err(), Some(want), "{h}");
        }
        assert_eq!(parse(&format!("{}.e30.", B64.encode(r#"{"alg":"RS256","kid":"k"}"#))).err(), Some(TokenError::Signature), "an empty signature");
    }
}
