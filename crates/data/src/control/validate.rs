//! Input checks shared by both backends: a refused input is `DataError::Invalid`/`InvalidId`
//! and nothing is written.

use crate::{DataError, Result, check_id};

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub fn id(s: &str) -> Result<()> {
    check_id(s)
}

/// A display name or label: 1..=200 characters, no control characters.
pub fn text(what: &'static str, s: &str) -> Result<()> {
    if s.trim().is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err(DataError::invalid(what, "must be 1 to 200 characters without control characters"));
    }
    Ok(())
}

/// E.164: `+`, a non-zero digit, then 6 to 14 more digits.
pub fn e164(number: &str) -> Result<()> {
    let b = number.as_bytes();
    let ok = b.len() >= 8 && b.len() <= 16 && b[0] == b'+' && (b'1'..=b'9').contains(&b[1]) && b[2..].iter().all(u8::is_ascii_digit);
    if ok { Ok(()) } else { Err(DataError::invalid("phone number", "expected E.164 like +14155550123")) }
}

/// A provider name (`deepgram`, `openai`…); `*` only where `allow_any`.
pub fn provider(s: &str, allow_any: bool) -> Result<()> {
    if allow_any && s == "*" {
        return Ok(());
    }
    let ok = !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
    if ok { Ok(()) } else { Err(DataError::invalid("provider", "1 to 64 of letters, digits, '-', '_', '.', ':', '/'")) }
}

/// A plan's provider list as stored (JSON text), `None` for any provider.
pub fn allowed_providers(plan: &crate::control::Plan) -> Result<Option<String>> {
    let Some(list) = &plan.allowed_providers else { return Ok(None) };
    if list.len() > 64 {
        return Err(DataError::invalid("allowed providers", "at most 64"));
    }
    for p in list {
        provider(p, false)?;
    }
    json_text(list).map(Some)
}

/// A label such as an event name or a call outcome: 1..=64 printable ASCII, no spaces.
pub fn token(what: &'static str, s: &str) -> Result<()> {
    let ok = !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic());
    if ok { Ok(()) } else { Err(DataError::invalid(what, "1 to 64 printable ASCII characters without spaces")) }
}

/// A webhook endpoint: `http://` or `https://` with a host, at most 2048 characters, no
/// spaces or control characters.
pub fn webhook_url(url: &str) -> Result<()> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(DataError::invalid("webhook url", "must start with http:// or https://"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if url.len() > 2048 || host.is_empty() || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DataError::invalid("webhook url", "an http(s) URL with a host, at most 2048 characters, no spaces"));
    }
    Ok(())
}

/// An `Idempotency-Key`: 1..=255 printable ASCII characters.
pub fn idempotency_key(key: &str) -> Result<()> {
    let ok = !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| (0x20..0x7f).contains(&b));
    if ok { Ok(()) } else { Err(DataError::invalid("idempotency key", "1 to 255 printable ASCII characters")) }
}

/// A SHA-256 in hex (64 digits), returned lowercased.
pub fn sha256_hex(what: &'static str, s: &str) -> Result<String> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(DataError::invalid(what, "expected 64 hex digits"))
    }
}

pub fn non_negative(what: &'static str, v: i64) -> Result<()> {
    if v < 0 { Err(DataError::invalid(what, "must not be negative")) } else { Ok(()) }
}

/// Scopes and roles: 1..=64 chars of letters, digits, ':', '.', '-', '_' each.
pub fn labels(what: &'static str, v: &[String]) -> Result<()> {
    let ok = v.len() <= 64
        && v.iter().all(|s| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b":.-_".contains(&b)));
    if ok { Ok(()) } else { Err(DataError::invalid(what, "each 1 to 64 of letters, digits, ':', '.', '-', '_'")) }
}

/// Maps a driver error from a write: unique violation → `Conflict`, missing parent → `NotFound`.
pub fn write_err(store: &'static str, e: sqlx::Error, conflict: impl FnOnce() -> String, parent: (&'static str, &str)) -> DataError {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return DataError::Conflict(conflict());
        }
        if d.is_foreign_key_violation() {
            return DataError::not_found(parent.0, parent.1);
        }
    }
    DataError::backend(store, e)
}

pub fn json_text(v: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| DataError::invalid("json", e.to_string()))
}

pub fn from_json<T: serde::de::DeserializeOwned>(store: &'static str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| DataError::backend(store, format!("stored JSON unreadable: {e}")))
}

pub fn u32_of(store: &'static str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| DataError::backend(store, "stored value out of range"))
}
