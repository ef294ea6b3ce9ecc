//! How a campaign dials: its calling window in the callee's timezone, concurrency, and retries.

use chrono::{Datelike, NaiveTime, TimeZone, Timelike};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CallWindow {
    /// Local start time `HH:MM` (inclusive).
    pub start: String,
    /// Local end time `HH:MM` (exclusive); before `start` means the window spans midnight;
    /// equal to `start` means all day.
    pub end: String,
    /// Days calls may start: `mon` … `sun` (default every day).
    #[serde(default = "all_days")]
    pub days: Vec<String>,
    /// IANA timezone, e.g. `Asia/Kolkata`, `America/New_York`.
    pub timezone: String,
}

fn all_days() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].map(String::from).to_vec()
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CampaignSettings {
    pub window: CallWindow,
    /// Calls of this campaign in progress at once (1-50).
    #[serde(default = "one")]
    pub concurrency: u32,
    /// Attempts per contact, the first included (1-10).
    #[serde(default = "three")]
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each later one.
    #[serde(default = "fifteen_min")]
    pub retry_backoff_s: u64,
    /// Outcomes that earn a retry: `no-answer`, `busy`, `voicemail`, `failed`.
    #[serde(default = "retry_on")]
    pub retry_on: Vec<String>,
    /// `twilio` (default) or `exotel`.
    #[serde(default)]
    pub carrier: Option<String>,
    /// Caller id (default: the carrier's configured number).
    #[serde(default)]
    pub from: Option<String>,
}

fn one() -> u32 {
    1
}
fn three() -> u32 {
    3
}
fn fifteen_min() -> u64 {
    900
}
fn retry_on() -> Vec<String> {
    ["no-answer", "busy", "voicemail", "failed"].map(String::from).to_vec()
}

fn hhmm(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| format!("`{}` is not a time HH:MM", s.chars().take(16).collect::<String>()))
}

impl CampaignSettings {
    pub fn validate(&self) -> Result<(), String> {
        let w = &self.window;
        hhmm(&w.start)?;
        hhmm(&w.end)?;
        w.timezone.parse::<chrono_tz::Tz>().map_err(|_| format!("unknown timezone `{}`", w.timezone.chars().take(64).collect::<String>()))?;
        if w.days.is_empty() || w.days.iter().any(|d| !all_days().contains(d)) {
            return Err("window days must be some of mon, tue, wed, thu, fri, sat, sun".into());
        }
        if !(1..=50).contains(&self.concurrency) {
            return Err("concurrency must be 1-50".into());
        }
        if !(1..=10).contains(&self.max_attempts) {
            return Err("max_attempts must be 1-10".into());
        }
        if let Some(bad) = self.retry_on.iter().find(|o| !retry_on().contains(o)) {
            return Err(format!("retry_on: unknown outcome `{}`", bad.chars().take(32).collect::<String>()));
        }
        Ok(())
    }

    /// Whether calls may start at `now` (UTC) in the window's timezone.
    pub fn open_at(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        let (Ok(tz), Ok(start), Ok(end)) = (self.window.timezone.parse::<chrono_tz::Tz>(), hhmm(&self.window.start), hhmm(&self.window.end)) else {
            return false;
        };
        let local = tz.from_utc_datetime(&now.naive_utc());
        let t = NaiveTime::from_hms_opt(local.hour(), local.minute(), local.second()).unwrap_or_default();
        let day = |d: chrono::Weekday| ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][d.num_days_from_monday() as usize];
        let allowed = |d: chrono::Weekday| self.window.days.iter().any(|x| x == day(d));
        if start == end {
            allowed(local.weekday())
        } else if start < end {
            allowed(local.weekday()) && t >= start && t < end
        } else if t >= start {
            allowed(local.weekday())
        } else {
            // after midnight: the window opened on the previous day
            t < end && allowed(local.weekday().pred())
        }
    }

    /// Delay before the retry that follows attempt number `attempts` (1-based).
    pub fn backoff_ms(&self, attempts: i32) -> i64 {
        let f = 1i64 << (attempts - 1).clamp(0, 16);
        (self.retry_backoff_s as i64 * 1000).saturating_mul(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(start: &str, end: &str, days: &[&str], tz: &str) -> CampaignSettings {
        let w = CallWindow { start: start.into(), end: end.into(), days: days.iter().map(|d| d.to_string()).collect(), timezone: tz.into() };
        CampaignSettings { window: w, concurrency: 1, max_attempts: 3, retry_backoff_s: 60, retry_on: retry_on(), carrier: None, from: None }
    }

    fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc)
    }

    #[test]
    fn windows_follow_the_callees_timezone_and_days() {
        let kolkata = s("09:00", "18:00", &["mon", "tue", "wed", "thu", "fri"], "Asia/Kolkata");
        assert!(kolkata.validate().is_ok());
        // Wed 2026-11-25 03:30 UTC = 09:00 IST: open; 12:29 UTC = 17:59 IST open; 12:30 UTC = 18:00 closed
        assert!(kolkata.open_at(utc("2026-11-25T03:30:00Z")));
        assert!(!kolkata.open_at(utc("2026-11-25T03:29:00Z")));
        assert!(kolkata.open_at(utc("2026-11-25T12:29:00Z")));
        assert!(!kolkata.open_at(utc("2026-11-25T12:30:00Z")));
        // Sat 2026-11-28 midday IST: closed
        assert!(!kolkata.open_at(utc("2026-11-28T06:00:00Z")));
        // New York in daylight time (EDT, UTC-4) vs standard time (EST, UTC-5)
        let ny = s("09:00", "17:00", &["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "America/New_York");
        assert!(ny.open_at(utc("2026-07-01T13:00:00Z")) && !ny.open_at(utc("2026-07-01T12:59:00Z")));
        assert!(ny.open_at(utc("2026-11-25T14:00:00Z")) && !ny.open_at(utc("2026-11-25T13:59:00Z")));
        // over midnight: Fri 22:00 → Sat 02:00 counts as Friday's window
        let night = s("22:00", "02:00", &["fri"], "UTC");
        assert!(night.open_at(utc("2026-11-27T23:00:00Z")));
        assert!(night.open_at(utc("2026-11-28T01:00:00Z")));
        assert!(!night.open_at(utc("2026-11-28T23:00:00Z")));
        let always = s("00:00", "00:00", &["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "UTC");
        assert!(always.validate().is_ok() && always.open_at(utc("2026-11-28T23:59:59Z")) && always.open_at(utc("2026-11-28T00:00:00Z")));
    }

    #[test]
    fn bad_settings_say_what_is_wrong_and_backoff_doubles() {
        assert!(s("9am", "18:00", &["mon"], "UTC").validate().unwrap_err().contains("HH:MM"));
        assert!(s("09:00", "18:00", &["mon"], "Mars/Olympus").validate().unwrap_err().contains("timezone"));
        assert!(s("09:00", "18:00", &["funday"], "UTC").validate().unwrap_err().contains("days"));
        let ok = s("09:00", "18:00", &["mon"], "UTC");
        assert_eq!([1, 2, 3].map(|a| ok.backoff_ms(a)), [60_000, 120_000, 240_000]);
    }
}
