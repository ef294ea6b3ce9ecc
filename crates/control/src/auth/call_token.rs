//! Call tokens: media WebSockets accept only calls this server (or a peer sharing the secret)
//! created. The token travels in the stream URL's path — `/twilio/media/CALL_ID/TOKEN` — because
//! it must be checked on upgrade, before any message. Form: `EXPIRY.MAC`, where MAC is
//! HMAC-SHA256 over `callfunnel-call:CALL_ID:EXPIRY` (base64url) and EXPIRY unix seconds.
//! The secret comes from `CALLFUNNEL_CALL_TOKEN_SECRET` (every node of a fleet must share it),
//! else a key file in the data directory.

use std::path::Path;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use super::secret_file::read_or_create;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallTokenError {
    #[error("the media stream URL carries no call token")]
    Missing,
    #[error("the call token is malformed")]
    Malformed,
    #[error("the call token has expired")]
    Expired,
    #[error("the call token is not valid for this call")]
    Invalid,
}

pub struct CallTokens {
    key: hmac::Key,
    ttl_secs: i64,
}

impl CallTokens {
    pub fn new(secret: &[u8], ttl_secs: u64) -> CallTokens {
        CallTokens { key: hmac::Key::new(hmac::HMAC_SHA256, secret), ttl_secs: ttl_secs as i64 }
    }

    /// The secret from `env_secret` (at least 32 bytes), else `dir/call-token.key` (made once).
    pub fn open(env_secret: Option<String>, dir: &Path, ttl_secs: u64) -> anyhow::Result<CallTokens> {
        let secret = match env_secret {
            Some(s) if s.len() >= 32 => s.into_bytes(),
            Some(_) => anyhow::bail!("CALLFUNNEL_CALL_TOKEN_SECRET must be at least 32 characters"),
            None => read_or_create(&dir.join("call-token.key"), || {
                let mut k = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut k).map_err(|_| anyhow::anyhow!("no randomness"))?;
                Ok(k)
            })?,
        };
        Ok(CallTokens::new(&secret, ttl_secs))
    }

    fn mac(&self, call_id: &str, exp: i64) -> hmac::Tag {
        hmac::sign(&self.key, format!("callfunnel-call:{call_id}:{exp}").as_bytes())
    }

    pub fn mint_at(&self, call_id: &str, now_unix: i64) -> String {
        let exp = now_unix + self.ttl_secs;
        format!("{exp}.{}", B64.encode(self.mac(call_id, exp)))
    }

    pub fn mint(&self, call_id: &str) -> String {
        self.mint_at(call_id, chrono::Utc::now().timestamp())
    }

    pub fn check_at(&self, call_id: &str, token: &str, now_unix: i64) -> Result<(), CallTokenError> {
        if token.is_empty() {
            return Err(CallTokenError::Missing);
        }
        let (exp, mac) = token.split_once('.').ok_or(CallTokenError::Malformed)?;
        let exp: i64 = exp.parse().map_err(|_| CallTokenError::Malformed)?;
        let mac = B64.decode(mac).map_err(|_| CallTokenError::Malformed)?;
        // constant-time comparison
        hmac::verify(&self.key, format!("callfunnel-call:{call_id}:{exp}").as_bytes(), &mac).map_err(|_| CallTokenError::Invalid)?;
        if now_unix > exp {
            return Err(CallTokenError::Expired);
        }
        Ok(())
    }

    pub fn check(&self, call_id: &str, token: &str) -> Result<(), CallTokenError> {
        self.check_at(call_id, token, chrono::Utc::now().timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_the_call_and_expire() {
        let t = CallTokens::new(b"0123456789abcdef0123456789abcdef", 60);
        let tok = t.mint_at("call-1", 1000);
        assert_eq!(t.check_at("call-1", &tok, 1000), Ok(()));
        assert_eq!(t.check_at("call-1", &tok, 1060), Ok(()));
        assert_eq!(t.check_at("call-1", &tok, 1061), Err(CallTokenError::Expired));
        assert_eq!(t.check_at("call-2", &tok, 1000), Err(CallTokenError::Invalid), "another call's token");
        let (exp, mac) = tok.split_once('.').unwrap();
        assert_eq!(t.check_at("call-1", &format!("{}.{mac}", exp.parse::<i64>().unwrap() + 1000), 1000), Err(CallTokenError::Invalid), "a stretched expiry");
        let other = CallTokens::new(b"another-secret-another-secret-xx", 60);
        assert_eq!(other.check_at("call-1", &tok, 1000), Err(CallTokenError::Invalid), "another server's secret");
        assert_eq!(t.check_at("call-1", "", 1000), Err(CallTokenError::Missing));
        assert_eq!(t.check_at("call-1", "abc", 1000), Err(CallTokenError::Malformed));
        assert_eq!(t.check_at("call-1", "1060.!!", 1000), Err(CallTokenError::Malformed));
    }
}
