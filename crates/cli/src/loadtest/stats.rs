//! What a load test measured: percentiles of the callers' own timings, and the server's side
//! read from two scrapes of its `/metrics` (turn-stage histograms, CPU seconds, resident memory).

use callfunnel_metrics::text::Scrape;
use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub n: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// Nearest-rank percentiles of `values` (milliseconds).
pub fn percentiles(values: &[f64]) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Percentiles { n: v.len() as u64, p50: rank(0.50), p95: rank(0.95), p99: rank(0.99), max: v[v.len() - 1] }
}

/// The turns of one stage observed between two scrapes of a histogram family: percentiles in
/// milliseconds, interpolated inside the bucket that holds each rank (as Prometheus'
/// `histogram_quantile`). A rank past the last finite bucket reports that bucket's bound.
pub fn stage(before: &Scrape, after: &Scrape, family: &str, stage: &str) -> Percentiles {
    let buckets = |s: &Scrape| -> Vec<(f64, f64)> {
        let mut b: Vec<(f64, f64)> = s
            .samples
            .iter()
            .filter(|x| x.name == format!("{family}_bucket") && x.labels.get("stage").is_some_and(|v| v == stage))
            .filter_map(|x| Some((x.labels.get("le")?.parse::<f64>().ok()?, x.value))) // "+Inf" parses as infinity
            .collect();
        b.sort_by(|a, c| a.0.total_cmp(&c.0));
        b
    };
    let (b0, b1) = (buckets(before), buckets(after));
    let delta: Vec<(f64, f64)> = b1.iter().map(|(le, n)| (*le, n - b0.iter().find(|(l, _)| l == le).map_or(0.0, |x| x.1))).collect();
    let total = delta.last().map_or(0.0, |x| x.1);
    if total <= 0.0 {
        return Percentiles::default();
    }
    let q = |q: f64| {
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, n) in &delta {
            if n >= rank {
                if le.is_infinite() {
                    return lower.0 * 1000.0;
                }
                let within = if n > lower.1 { (rank - lower.1) / (n - lower.1) } else { 1.0 };
                return (lower.0 + (le - lower.0) * within) * 1000.0;
            }
            lower = (le, n);
        }
        lower.0 * 1000.0
    };
    Percentiles { n: total as u64, p50: q(0.50), p95: q(0.95), p99: q(0.99), max: q(1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = percentiles(&v);
        assert_eq!((p.n, p.p50, p.p95, p.p99, p.max), (100, 50.0, 95.0, 99.0, 100.0));
        assert_eq!(percentiles(&[7.0]).p99, 7.0);
        assert_eq!(percentiles(&[]), Percentiles::default());
    }

    #[test]
    fn histogram_quantiles_from_two_scrapes() {
        let text = |a: u64, b: u64, c: u64| {
            format!(
                "# TYPE t histogram\nt_bucket{{stage=\"stt\",le=\"0.005\"}} {a}\nt_bucket{{stage=\"stt\",le=\"0.01\"}} {b}\nt_bucket{{stage=\"stt\",le=\"+Inf\"}} {c}\nt_sum{{stage=\"stt\"}} 0\nt_count{{stage=\"stt\"}} {c}\n"
            )
        };
        let before = callfunnel_metrics::text::parse(&text(10, 10, 10)).unwrap();
        // 100 new turns: 50 under 5 ms, 40 in 5-10 ms, 10 slower
        let after = callfunnel_metrics::text::parse(&text(60, 100, 110)).unwrap();
        let p = stage(&before, &after, "t", "stt");
        assert_eq!(p.n, 100);
        assert!((p.p50 - 5.0).abs() < 1e-9, "{p:?}");
        assert!((p.p95 - 10.0).abs() < 1e-9, "past the last finite bucket: its bound: {p:?}");
        let p = stage(&before, &callfunnel_metrics::text::parse(&text(60, 110, 110)).unwrap(), "t", "stt");
        assert!((p.p95 - (5.0 + 5.0 * 45.0 / 50.0)).abs() < 1e-9, "interpolated in its bucket: {p:?}");
        assert_eq!(stage(&before, &before, "t", "stt"), Percentiles::default());
    }
}
