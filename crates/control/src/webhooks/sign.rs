//! Webhook signatures. Each delivery carries
//! `Callfunnel-Signature: t=UNIX_SECONDS,v1=HEX(HMAC-SHA256(secret, "UNIX_SECONDS.BODY"))`.
//! A receiver recomputes the MAC over the timestamp and the raw body, compares in constant
//! time and refuses timestamps older than its tolerance (replays).

use aws_lc_rs::hmac;

pub const HEADER: &str = "callfunnel-signature";

pub fn sign(secret: &str, unix_s: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(format!("{unix_s}.").as_bytes());
    ctx.update(body);
    let hex: String = ctx.sign().as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix_s},v1={hex}")
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("signature header is malformed")]
    Malformed,
    #[error("signature timestamp is outside the tolerance")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

/// Checks a signature header against the raw body (receivers use this; so do our tests).
pub fn verify(secret: &str, header: &str, body: &[u8], now_unix_s: i64, tolerance_s: i64) -> Result<(), VerifyError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::Malformed)?;
    if sigs.is_empty() {
        return Err(VerifyError::Malformed);
    }
    if (now_unix_s - t).abs() > tolerance_s {
        return Err(VerifyError::Stale);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(body);
    let ok = sigs.iter().any(|s| decode_hex(s).is_some_and(|mac| hmac::verify(&key, &msg, &mac).is_ok()));
    if ok { Ok(()) } else { Err(VerifyError::Mismatch) }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_round_trip_and_refuse_tampering_and_replays() {
        let body = br#"{"event":"call.ended"}"#;
        let h = sign("whsec_test_secret_123", 1_700_000_000, body);
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(verify("whsec_test_secret_123", &h, body, 1_700_000_100, 300), Ok(()));
        assert_eq!(verify("whsec_test_secret_123", &h, br#"{"event":"call.endeD"}"#, 1_700_000_100, 300), Err(VerifyError::Mismatch));
        assert_eq!(verify("another_secret_here", &h, body, 1_700_000_100, 300), Err(VerifyError::Mismatch));
        assert_eq!(verify("whsec_test_secret_123", &h, body, 1_700_000_400, 300), Err(VerifyError::Stale));
        let moved = h.replace("t=1700000000", "t=1700000300");
        assert_eq!(verify("whsec_test_secret_123", &moved, body, 1_700_000_300, 300), Err(VerifyError::Mismatch), "a re-dated signature");
        assert_eq!(verify("whsec_test_secret_123", "v1=00", body, 0, 300), Err(VerifyError::Malformed));
    }
}
