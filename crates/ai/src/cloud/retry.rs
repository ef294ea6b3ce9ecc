//! Retry decisions for HTTP providers, as the vendors' SDKs make them: retry 408, 409, 429 and
//! 5xx (and connection errors), honour `x-should-retry`, then `retry-after-ms`, then
//! `retry-after` (seconds or an HTTP date), else exponential backoff with jitter. On a live call
//! a long wait is worse than another provider, so waits above `max_wait` are not retried.

use std::time::Duration;

use reqwest::header::HeaderMap;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: u32,
    /// Base of the exponential backoff (0.5 s in the SDKs).
    pub base: Duration,
    /// Cap of the exponential backoff (8 s in the SDKs).
    pub cap: Duration,
    /// A server-requested wait above this is not honoured: the caller fails over instead.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 2, base: Duration::from_millis(500), cap: Duration::from_secs(8), max_wait: Duration::from_secs(60) }
    }
}

impl RetryPolicy {
    /// A policy for the live call path: quick retries, short waits, then failover.
    pub fn realtime() -> Self {
        RetryPolicy { max_retries: 1, base: Duration::from_millis(100), cap: Duration::from_millis(400), max_wait: Duration::from_millis(500) }
    }

    /// How long to wait before retry number `attempt` (0-based) after `status` with `headers`;
    /// `None` means do not retry.
    pub fn after_status(&self, attempt: u32, status: u16, headers: &HeaderMap) -> Option<Duration> {
        if attempt >= self.max_retries {
            return None;
        }
        match headers.get("x-should-retry").and_then(|v| v.to_str().ok()) {
            Some("true") => {}
            Some("false") => return None,
            _ if !is_retryable_status(status) => return None,
            _ => {}
        }
        let wait = server_wait(headers).unwrap_or_else(|| self.backoff(attempt));
        (wait <= self.max_wait).then_some(wait)
    }

    /// Wait before retry `attempt` after a connection error or timeout.
    pub fn after_error(&self, attempt: u32) -> Option<Duration> {
        (attempt < self.max_retries).then(|| self.backoff(attempt))
    }

    /// Exponential backoff with up to 25 % jitter subtracted.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16));
        let d = exp.min(self.cap);
        let jitter = 1.0 - 0.25 * rand::random::<f64>();
        d.mul_f64(jitter)
    }
}

pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// The wait the server asked for: `retry-after-ms`, else `retry-after` in seconds or as an
/// HTTP date. Values outside (0, 60 s] are ignored, as the SDKs do.
pub fn server_wait(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let d = if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    } else if let Some(v) = get("retry-after") {
        if let Ok(s) = v.parse::<f64>() {
            Some(Duration::from_secs_f64(s.max(0.0)))
        } else {
            chrono::DateTime::parse_from_rfc2822(v).ok().map(|t| {
                let ms = (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds();
                Duration::from_millis(ms.max(0) as u64)
            })
        }
    } else {
        None
    };
    d.filter(|d| !d.is_zero() && *d <= Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn honours_the_server() {
        assert_eq!(server_wait(&h(&[("retry-after-ms", "250"), ("retry-after", "9")])), Some(Duration::from_millis(250)));
        assert_eq!(server_wait(&h(&[("retry-after", "2")])), Some(Duration::from_secs(2)));
        assert_eq!(server_wait(&h(&[("retry-after", "600")])), None);
        let date = (chrono::Utc::now() + chrono::Duration::seconds(5)).to_rfc2822();
        let w = server_wait(&h(&[("retry-after", &date)])).unwrap();
        assert!(w > Duration::from_secs(3) && w <= Duration::from_secs(5), "{w:?}");
    }

    #[test]
    fn decides_like_the_sdks() {
        let p = RetryPolicy::default();
        assert!(p.after_status(0, 529, &HeaderMap::new()).is_some());
        assert!(p.after_status(0, 429, &HeaderMap::new()).is_some());
        assert!(p.after_status(0, 400, &HeaderMap::new()).is_none());
        assert!(p.after_status(0, 400, &h(&[("x-should-retry", "true")])).is_some());
        assert!(p.after_status(0, 500, &h(&[("x-should-retry", "false")])).is_none());
        assert!(p.after_status(2, 500, &HeaderMap::new()).is_none(), "retries are bounded");
        let rt = RetryPolicy::realtime();
        assert!(rt.after_status(0, 429, &h(&[("retry-after", "5")])).is_none(), "too long for a live call");
        assert_eq!(rt.after_status(0, 429, &h(&[("retry-after-ms", "200")])), Some(Duration::from_millis(200)));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        let b0 = p.backoff(0);
        assert!(b0 <= Duration::from_millis(500) && b0 >= Duration::from_millis(375));
        assert!(p.backoff(10) <= Duration::from_secs(8));
        assert!(p.backoff(3) >= Duration::from_secs(3));
    }
}
