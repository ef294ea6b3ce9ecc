//! Browser sign-in at the built-in issuer: the OAuth 2.0 authorization-code flow with PKCE
//! (RFC 7636, `S256` only) that the web console runs against Keycloak in production.
//!
//! The sign-in form checks the dev password (`auth/dev-password` in the data directory, made
//! on first use with mode 0600, as the issuer's key is); a code is good once, for 60 s, and only
//! with the verifier whose challenge it was issued for.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use parking_lot::Mutex;

use super::Role;
use super::secret_file::read_or_create;

/// The console's OAuth client id (at Keycloak: a public client with PKCE required).
pub const CONSOLE_CLIENT_ID: &str = "callfunnel-console";
const CODE_TTL: Duration = Duration::from_secs(60);
const MAX_PENDING: usize = 1000;

/// Who signed in, kept under a code until the console redeems it.
#[derive(Debug, Clone)]
pub struct Grant {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub subject: String,
    pub tenant: Option<String>,
    pub role: Role,
    pub nonce: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RedeemError {
    /// Unknown, used or expired code, or redeemed by another client or for another redirect.
    InvalidGrant(&'static str),
}

pub struct SignIn {
    password: String,
    codes: Mutex<HashMap<String, (Grant, Instant)>>,
}

impl SignIn {
    /// Loads (or makes) the dev password under `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<SignIn> {
        let bytes = read_or_create(&dir.join("dev-password"), || {
            let mut raw = [0u8; 18];
            aws_lc_rs::rand::fill(&mut raw).map_err(|_| anyhow::anyhow!("no randomness"))?;
            Ok(B64.encode(raw).into_bytes())
        })?;
        let password = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{}/dev-password is not text", dir.display()))?.trim().to_string();
        anyhow::ensure!(password.len() >= 8, "{}/dev-password is shorter than 8 characters", dir.display());
        Ok(SignIn { password, codes: Mutex::new(HashMap::new()) })
    }

    /// Compares in constant time.
    pub fn password_ok(&self, given: &str) -> bool {
        let (a, b) = (self.password.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Stores `grant` and returns its one-time code.
    pub fn issue(&self, grant: Grant) -> String {
        let mut raw = [0u8; 24];
        aws_lc_rs::rand::fill(&mut raw).expect("system randomness");
        let code = B64.encode(raw);
        let mut g = self.codes.lock();
        g.retain(|_, (_, at)| at.elapsed() < CODE_TTL);
        if g.len() >= MAX_PENDING {
            // a flood of unredeemed codes: drop the oldest
            if let Some(oldest) = g.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone()) {
                g.remove(&oldest);
            }
        }
        g.insert(code.clone(), (grant, Instant::now()));
        code
    }

    /// Takes the grant of `code` (once), checking the client, the redirect and the verifier.
    pub fn redeem(&self, code: &str, client_id: &str, redirect_uri: &str, verifier: &str) -> Result<Grant, RedeemError> {
        let (grant, at) = self.codes.lock().remove(code).ok_or(RedeemError::InvalidGrant("the code is unknown or was used already"))?;
        if at.elapsed() >= CODE_TTL {
            return Err(RedeemError::InvalidGrant("the code expired"));
        }
        if grant.client_id != client_id || grant.redirect_uri != redirect_uri {
            return Err(RedeemError::InvalidGrant("the code was issued to another client or redirect"));
        }
        if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
            return Err(RedeemError::InvalidGrant("code_verifier must be 43 to 128 unreserved characters"));
        }
        if s256(verifier) != grant.challenge {
            return Err(RedeemError::InvalidGrant("code_verifier does not match the code_challenge"));
        }
        Ok(grant)
    }
}

/// `BASE64URL(SHA256(verifier))`, the `S256` challenge.
pub fn s256(verifier: &str) -> String {
    B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(challenge: &str) -> Grant {
        Grant { client_id: CONSOLE_CLIENT_ID.into(), redirect_uri: "http://h/console/".into(), challenge: challenge.into(), subject: "ana".into(), tenant: Some("acme".into()), role: Role::Editor, nonce: None }
    }

    fn temp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("cf-sign-in-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn the_rfc_7636_example_challenge() {
        assert_eq!(s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn a_code_is_redeemed_once_and_only_with_its_verifier() {
        let s = SignIn::open(&temp("codes")).unwrap();
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let code = s.issue(grant(&s256(v)));
        let wrong = "x".repeat(43);
        assert!(matches!(s.redeem(&code, CONSOLE_CLIENT_ID, "http://h/console/", &wrong), Err(RedeemError::InvalidGrant(m)) if m.contains("does not match")));
        // a failed attempt burns the code: no guessing verifiers
        assert!(s.redeem(&code, CONSOLE_CLIENT_ID, "http://h/console/", v).is_err());
        let code = s.issue(grant(&s256(v)));
        assert!(s.redeem(&code, CONSOLE_CLIENT_ID, "http://evil/console/", v).is_err());
        let code = s.issue(grant(&s256(v)));
        let g = s.redeem(&code, CONSOLE_CLIENT_ID, "http://h/console/", v).unwrap();
        assert_eq!((g.subject.as_str(), g.tenant.as_deref(), g.role), ("ana", Some("acme"), Role::Editor));
        assert!(matches!(s.redeem(&code, CONSOLE_CLIENT_ID, "http://h/console/", v), Err(RedeemError::InvalidGrant("the code is unknown or was used already"))));
    }

    #[test]
    fn the_dev_password_is_made_once_private_and_checked() {
        let dir = temp("password");
        let a = SignIn::open(&dir).unwrap();
        let b = SignIn::open(&dir).unwrap();
        let pw = std::fs::read_to_string(dir.join("dev-password")).unwrap();
        assert!(a.password_ok(&pw) && b.password_ok(&pw) && !a.password_ok("nope") && !a.password_ok(""));
        #[cfg(unix)]
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join("dev-password")).unwrap().permissions()) & 0o777, 0o600);
    }
}
