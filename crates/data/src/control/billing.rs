//! Invoice arithmetic, pure: period bounds in UTC, price lookup order, half-up rounding in
//! integer math.

use std::collections::HashMap;

use super::types::{InvoiceLine, Metric, UsageTotal};
use crate::{DataError, Result};

/// Prices as stored: key (tenant_id, metric, provider), tenant_id `""` = default list, provider
/// `"*"` = any provider.
pub type PriceTable = HashMap<(String, Metric, String), i64>;

/// `YYYY-MM` → `[from_ms, to_ms)` in UTC.
pub fn period_bounds(period: &str) -> Result<(i64, i64)> {
    let bad = || DataError::invalid("period", "expected YYYY-MM (e.g. 2025-03)");
    let b = period.as_bytes();
    if b.len() != 7 || b[4] != b'-' || !b.iter().enumerate().all(|(i, c)| i == 4 || c.is_ascii_digit()) {
        return Err(bad());
    }
    let year: i64 = period[..4].parse().map_err(|_| bad())?;
    let month: i64 = period[5..].parse().map_err(|_| bad())?;
    if !(1970..=9998).contains(&year) || !(1..=12).contains(&month) {
        return Err(bad());
    }
    let (ny, nm) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    Ok((days_from_civil(year, month, 1) * 86_400_000, days_from_civil(ny, nm, 1) * 86_400_000))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Price for one line: tenant+provider, tenant+"*", default+provider, default+"*", else 0.
pub fn lookup_price(prices: &PriceTable, tenant_id: &str, metric: Metric, provider: &str) -> i64 {
    [(tenant_id, provider), (tenant_id, "*"), ("", provider), ("", "*")]
        .iter()
        .find_map(|(t, p)| prices.get(&(t.to_string(), metric, p.to_string())).copied())
        .unwrap_or(0)
}

/// `quantity * micros_per_1000 / 1000`, rounded half up (both are non-negative).
pub fn amount_micros(quantity: i64, micros_per_1000_units: i64) -> Result<i64> {
    let exact = quantity as i128 * micros_per_1000_units as i128;
    i64::try_from((exact + 500) / 1000).map_err(|_| DataError::invalid("invoice", "amount overflows i64 micros"))
}

/// Lines (sorted by metric, provider) and total for a tenant's usage totals.
pub fn build_lines(tenant_id: &str, usage: &[UsageTotal], prices: &PriceTable) -> Result<(Vec<InvoiceLine>, i64)> {
    let mut lines = Vec::with_capacity(usage.len());
    let mut total: i64 = 0;
    for u in usage {
        let price = lookup_price(prices, tenant_id, u.metric, &u.provider);
        let amount = amount_micros(u.quantity, price)?;
        total = total.checked_add(amount).ok_or_else(|| DataError::invalid("invoice", "total overflows i64 micros"))?;
        lines.push(InvoiceLine {
            metric: u.metric,
            provider: u.provider.clone(),
            quantity: u.quantity,
            micros_per_1000_units: price,
            amount_micros: amount,
        });
    }
    lines.sort_by(|a, b| (a.metric, &a.provider).cmp(&(b.metric, &b.provider)));
    Ok((lines, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_utc_months() {
        assert_eq!(period_bounds("1970-01").unwrap(), (0, 31 * 86_400_000));
        // 2024 is a leap year: February has 29 days; 2024-03-01T00:00Z = 1709251200 s.
        let (from, to) = period_bounds("2024-02").unwrap();
        assert_eq!(to, 1_709_251_200_000);
        assert_eq!(to - from, 29 * 86_400_000);
        assert_eq!(period_bounds("2024-12").unwrap().1, 1_735_689_600_000); // 2025-01-01
        for bad in ["2024-13", "2024-00", "24-01", "2024/01", "2024-1", "abcd-01", "1969-12"] {
            assert!(period_bounds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rounding_is_half_up() {
        assert_eq!(amount_micros(1, 500).unwrap(), 1); // 0.5 → 1
        assert_eq!(amount_micros(1, 499).unwrap(), 0);
        assert_eq!(amount_micros(3, 1500).unwrap(), 5); // 4.5 → 5
        assert_eq!(amount_micros(0, 1_000_000).unwrap(), 0);
    }

    #[test]
    fn price_lookup_order() {
        let mut p = PriceTable::new();
        let m = Metric::SttMs;
        assert_eq!(lookup_price(&p, "t", m, "deepgram"), 0);
        p.insert(("".into(), m, "*".into()), 1);
        assert_eq!(lookup_price(&p, "t", m, "deepgram"), 1);
        p.insert(("".into(), m, "deepgram".into()), 2);
        assert_eq!(lookup_price(&p, "t", m, "deepgram"), 2);
        p.insert(("t".into(), m, "*".into()), 3);
        assert_eq!(lookup_price(&p, "t", m, "deepgram"), 3);
        p.insert(("t".into(), m, "deepgram".into()), 4);
        assert_eq!(lookup_price(&p, "t", m, "deepgram"), 4);
        assert_eq!(lookup_price(&p, "other", m, "deepgram"), 2);
        assert_eq!(lookup_price(&p, "t", Metric::CallMs, "deepgram"), 0);
    }
}
