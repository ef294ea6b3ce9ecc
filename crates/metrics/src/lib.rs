//! Process-wide Prometheus metrics. Everything the call path touches is an atomic: a turn's
//! latency is a few `fetch_add`s on fixed histograms (no lock, no allocation); labelled
//! counters (calls, failovers, webhook outcomes: a handful of events per call) take a read
//! lock and compare their label values, allocating only the first time a series appears.
//! `encode` writes them all, plus this process's CPU, memory and file descriptors, for
//! `GET /metrics`.

pub mod process;
pub mod text;

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub use text::{Kind, Text};

/// Series a family keeps before folding new label values into `other` (labels here are
/// providers, reasons and outcomes: a few dozen at most).
const MAX_SERIES: usize = 256;

/// A counter family with `N` labels.
pub struct Family<const N: usize> {
    pub name: &'static str,
    help: &'static str,
    labels: [&'static str; N],
    series: RwLock<Vec<([Box<str>; N], AtomicU64)>>,
}

impl<const N: usize> Family<N> {
    pub const fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        Family { name, help, labels, series: RwLock::new(Vec::new()) }
    }

    pub fn inc(&self, values: [&str; N]) {
        self.add(values, 1);
    }

    pub fn add(&self, values: [&str; N], n: u64) {
        let same = |k: &[Box<str>; N], v: &[&str; N]| k.iter().zip(v).all(|(a, b)| &**a == *b);
        if let Some((_, c)) = self.series.read().unwrap_or_else(|e| e.into_inner()).iter().find(|(k, _)| same(k, &values)) {
            c.fetch_add(n, Relaxed);
            return;
        }
        let mut g = self.series.write().unwrap_or_else(|e| e.into_inner());
        let values = if g.len() >= MAX_SERIES { ["other"; N] } else { values };
        match g.iter().find(|(k, _)| same(k, &values)) {
            Some((_, c)) => {
                c.fetch_add(n, Relaxed);
            }
            None => g.push((values.map(Box::from), AtomicU64::new(n))),
        }
    }

    /// The count of one series (0 if it never moved).
    pub fn get(&self, values: [&str; N]) -> u64 {
        self.snapshot().into_iter().find(|(k, _)| k.iter().zip(&values).all(|(a, b)| a == b)).map_or(0, |s| s.1)
    }

    /// Every series with its count, sorted by label values.
    pub fn snapshot(&self) -> Vec<([String; N], u64)> {
        let mut v: Vec<_> = self.series.read().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, c)| (k.clone().map(String::from), c.load(Relaxed))).collect();
        v.sort();
        v
    }

    pub fn encode(&self, t: &mut Text) {
        t.family(self.name, self.help, Kind::Counter);
        for (values, n) in self.snapshot() {
            let labels: [(&str, &str); N] = std::array::from_fn(|i| (self.labels[i], values[i].as_str()));
            t.sample(self.name, &labels, n);
        }
    }
}

/// Bucket bounds for voice latency, in seconds: 0.5 ms … 5 s (the sub-5 ms ones resolve the
/// engine's own overhead, whose budget is 5 ms at p99).
pub const VOICE_BUCKETS: [f64; 19] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0];
const BUCKETS: usize = VOICE_BUCKETS.len();

/// A histogram over [`VOICE_BUCKETS`]: per-bucket counts (made cumulative when written) and
/// the sum as `f64` bits, all atomics.
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS + 1],
    sum: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub const fn new() -> Self {
        Histogram { buckets: [const { AtomicU64::new(0) }; BUCKETS + 1], sum: AtomicU64::new(0) }
    }

    /// Counts `v` (seconds); NaN is ignored.
    pub fn observe(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        let i = VOICE_BUCKETS.iter().position(|b| v <= *b).unwrap_or(BUCKETS);
        self.buckets[i].fetch_add(1, Relaxed);
        let _ = self.sum.fetch_update(Relaxed, Relaxed, |s| Some((f64::from_bits(s) + v).to_bits()));
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Relaxed))
    }

    /// `NAME_bucket{..,le=..}` (cumulative, ending in `+Inf`), `NAME_sum`, `NAME_count`.
    pub fn encode(&self, t: &mut Text, name: &str, label: (&str, &str)) {
        let (bucket, mut cumulative) = (format!("{name}_bucket"), 0);
        let mut le = String::new();
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Relaxed);
            le.clear();
            text::write_float(&mut le, VOICE_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY));
            t.sample(&bucket, &[label, ("le", &le)], cumulative);
        }
        t.sample(&format!("{name}_sum"), &[label], self.sum());
        t.sample(&format!("{name}_count"), &[label], cumulative);
    }
}

/// The stages of an agent's turn, as the engine's `turn_latency` event names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    EndOfTurn,
    Stt,
    BrainFirstToken,
    TtsFirstAudio,
    /// First TTS audio → first byte to the carrier.
    Send,
    /// Time not spent waiting on a model or provider.
    EngineOverhead,
    /// Caller's speech end → first byte to the carrier.
    Total,
}

impl Stage {
    pub const ALL: [Stage; 7] = [Stage::EndOfTurn, Stage::Stt, Stage::BrainFirstToken, Stage::TtsFirstAudio, Stage::Send, Stage::EngineOverhead, Stage::Total];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::EndOfTurn => "end_of_turn",
            Stage::Stt => "stt",
            Stage::BrainFirstToken => "brain_first_token",
            Stage::TtsFirstAudio => "tts_first_audio",
            Stage::Send => "send",
            Stage::EngineOverhead => "engine_overhead",
            Stage::Total => "total",
        }
    }
}

/// Per-stage turn latency.
pub struct TurnStages([Histogram; 7]);

impl TurnStages {
    pub const NAME: &'static str = "callfunnel_turn_stage_seconds";

    pub fn observe(&self, stage: Stage, seconds: f64) {
        self.0[stage as usize].observe(seconds);
    }

    pub fn get(&self, stage: Stage) -> &Histogram {
        &self.0[stage as usize]
    }

    pub fn encode(&self, t: &mut Text) {
        t.family(Self::NAME, "Latency of each stage of an agent turn, from the caller's speech end to the first byte of the answer sent to the carrier.", Kind::Histogram);
        for s in Stage::ALL {
            self.get(s).encode(t, Self::NAME, ("stage", s.as_str()));
        }
    }
}

pub static TURN_STAGES: TurnStages = TurnStages([const { Histogram::new() }; 7]);
pub static CALLS: Family<3> = Family::new("callfunnel_calls_total", "Calls that ran on this process, by direction, carrier and how they ended.", ["direction", "carrier", "end"]);
pub static CALLS_REFUSED: Family<1> = Family::new("callfunnel_calls_refused_total", "Calls refused before they ran (unknown number, plan limits).", ["reason"]);
pub static PROVIDER_FAILOVERS: Family<3> = Family::new("callfunnel_provider_failovers_total", "Moves from one provider of a chain to the next.", ["capability", "from", "to"]);
pub static PROVIDER_ERRORS: Family<2> = Family::new("callfunnel_provider_errors_total", "Provider failures: `open` (a stream or session could not start), `in_call` (failed while in use).", ["provider", "kind"]);
pub static WEBHOOK_DELIVERIES: Family<1> = Family::new("callfunnel_webhook_deliveries_total", "Webhook delivery attempts by outcome (`retry` will be attempted again).", ["outcome"]);
pub static ANALYSIS: Family<1> = Family::new("callfunnel_analysis_total", "Post-call analysis runs by outcome (`retry` goes back to the queue).", ["outcome"]);
pub static VAD_FRAMES: Family<1> = Family::new("callfunnel_vad_frames_total", "VAD frames by what judged them: `silero`, or `gated` (under the energy gate, outside a turn: silence without running the model).", ["result"]);
pub static VAD_BATCHES: Family<1> = Family::new("callfunnel_vad_batches_total", "Silero VAD model runs, by sample rate. Frames from many calls share a run: `callfunnel_vad_frames_total{result=\"silero\"}` over this is the mean batch size.", ["rate"]);
pub static SCRAPE_ERRORS: Family<1> = Family::new("callfunnel_scrape_errors_total", "Values a scrape could not read in time (the last value read is reported).", ["source"]);

/// Refusal reasons written as 0 until they happen, so that rates and alerts see them.
const REFUSALS: [&str; 7] = ["unknown_number", "draining", "concurrent_call_limit", "monthly_minutes_exhausted", "provider_not_allowed", "tenant_not_found", "admission_unavailable"];

/// A call that ran has ended (`end`: the engine's end kind, e.g. `caller_hung_up`).
pub fn call_ended(direction: &str, carrier: &str, end: &str) {
    CALLS.inc([direction, carrier, end]);
}

/// A call was refused (`reason`: the refusal's code, e.g. `concurrent_call_limit`).
pub fn call_refused(reason: &str) {
    CALLS_REFUSED.inc([reason]);
}

/// Every process-wide metric, then the process's own.
pub fn encode(t: &mut Text) {
    for r in REFUSALS {
        CALLS_REFUSED.add([r], 0);
    }
    for r in ["silero", "gated"] {
        VAD_FRAMES.add([r], 0);
    }
    for f in [&CALLS_REFUSED, &WEBHOOK_DELIVERIES, &ANALYSIS, &SCRAPE_ERRORS, &VAD_FRAMES, &VAD_BATCHES] {
        f.encode(t);
    }
    CALLS.encode(t);
    PROVIDER_FAILOVERS.encode(t);
    PROVIDER_ERRORS.encode(t);
    TURN_STAGES.encode(t);
    process::encode(t);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let h = Histogram::new();
        for v in [0.004, 0.005, 0.3, 0.31, 7.0, f64::NAN] {
            h.observe(v);
        }
        let mut t = Text::new();
        t.family("h_seconds", "h", Kind::Histogram);
        h.encode(&mut t, "h_seconds", ("stage", "stt"));
        let text = t.finish();
        let s = text::parse(&text).unwrap();
        let b = |le: &str| s.get("h_seconds_bucket", &[("stage", "stt"), ("le", le)]);
        assert_eq!((b("0.005"), b("0.01"), b("0.3"), b("0.4"), b("5"), b("+Inf")), (Some(2.0), Some(2.0), Some(3.0), Some(4.0), Some(4.0), Some(5.0)), "{text}");
        assert_eq!(s.get("h_seconds_count", &[("stage", "stt")]), Some(5.0));
        assert!((s.get("h_seconds_sum", &[("stage", "stt")]).unwrap() - 7.619).abs() < 1e-9);
        assert_eq!(s.samples.iter().filter(|x| x.name == "h_seconds_bucket").count(), VOICE_BUCKETS.len() + 1);
    }

    #[test]
    fn families_count_per_label_set_and_cap_their_series() {
        static F: Family<2> = Family::new("t_total", "t", ["a", "b"]);
        F.inc(["x", "y"]);
        F.add(["x", "y"], 2);
        F.inc(["x", "z\"q"]);
        assert_eq!((F.get(["x", "y"]), F.get(["x", "z\"q"]), F.get(["y", "x"])), (3, 1, 0));
        let mut t = Text::new();
        F.encode(&mut t);
        assert_eq!(t.finish(), "# HELP t_total t\n# TYPE t_total counter\nt_total{a=\"x\",b=\"y\"} 3\nt_total{a=\"x\",b=\"z\\\"q\"} 1\n");
        for i in 0..2 * MAX_SERIES {
            F.inc([&i.to_string(), "n"]);
        }
        assert_eq!(F.snapshot().len(), MAX_SERIES + 1, "capped, the rest under `other`");
        assert!(F.get(["other", "other"]) > MAX_SERIES as u64 - 3);
    }

    #[test]
    fn a_full_scrape_is_valid_and_lists_every_family() {
        TURN_STAGES.observe(Stage::Stt, 0.12);
        call_ended("inbound", "twilio", "caller_hung_up");
        let mut t = Text::new();
        encode(&mut t);
        let text = t.finish();
        let s = text::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        for f in ["callfunnel_calls_total", "callfunnel_calls_refused_total", "callfunnel_turn_stage_seconds", "callfunnel_provider_failovers_total", "callfunnel_provider_errors_total", "callfunnel_webhook_deliveries_total", "callfunnel_analysis_total", "callfunnel_scrape_errors_total"] {
            assert!(s.types.contains_key(f), "{f} missing:\n{text}");
        }
        assert_eq!(s.get("callfunnel_calls_refused_total", &[("reason", "concurrent_call_limit")]), Some(0.0), "known reasons start at 0");
        assert!(s.get("callfunnel_turn_stage_seconds_count", &[("stage", "stt")]).unwrap() >= 1.0);
        assert!(s.get("callfunnel_calls_total", &[("direction", "inbound"), ("carrier", "twilio"), ("end", "caller_hung_up")]).unwrap() >= 1.0);
        if cfg!(target_os = "linux") {
            assert!(s.get("process_resident_memory_bytes", &[]).unwrap() > 1e6);
            assert!(s.get("process_open_fds", &[]).unwrap() >= 3.0);
        }
    }
}
