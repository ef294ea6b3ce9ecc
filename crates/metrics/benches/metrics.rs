//! What metrics cost: `cargo bench --workspace --bench metrics -- [N]` (default 1,000,000).
//! One turn's latency observed (7 histograms), a labelled counter increment on an existing
//! series (two threads at once too), and a whole scrape with realistic series (encode, and
//! parse as a test or load tool would).

use std::time::Instant;

use callfunnel_metrics::{CALLS, PROVIDER_ERRORS, Stage, TURN_STAGES, Text, call_ended, text};

fn per_op(name: &str, n: usize, f: impl Fn(usize)) {
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    println!("{name:<48} {:>9.1} ns/op", t.elapsed().as_nanos() as f64 / n as f64);
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    per_op("turn observed (7 stage histograms)", n, |i| {
        for s in Stage::ALL {
            TURN_STAGES.observe(s, (i % 2000) as f64 / 1000.0);
        }
    });
    for d in ["inbound", "outbound"] {
        for c in ["twilio", "exotel"] {
            for e in ["caller_hung_up", "agent_ended", "transferred", "shutdown", "failed"] {
                call_ended(d, c, e);
            }
        }
    }
    for p in ["deepgram", "sarvam", "cartesia", "anthropic", "local"] {
        PROVIDER_ERRORS.inc([p, "open"]);
        PROVIDER_ERRORS.inc([p, "in_call"]);
    }
    per_op("call ended (3-label counter, 20 series)", n, |_| CALLS.inc(["outbound", "exotel", "failed"]));
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| (0..n).for_each(|_| CALLS.inc(["outbound", "exotel", "failed"])));
        }
    });
    println!("{:<48} {:>9.1} ns/op", "the same from 2 threads at once (wall / ops)", t.elapsed().as_nanos() as f64 / (2 * n) as f64);
    let scrapes = (n / 1000).max(100);
    let t = Instant::now();
    let mut bytes = 0;
    for _ in 0..scrapes {
        let mut t = Text::new();
        callfunnel_metrics::encode(&mut t);
        bytes = t.finish().len();
    }
    println!("{:<48} {:>9.1} µs ({bytes} bytes, incl. /proc reads)", "scrape: encode every metric", t.elapsed().as_micros() as f64 / scrapes as f64);
    let mut t = Text::new();
    callfunnel_metrics::encode(&mut t);
    let body = t.finish();
    let t = Instant::now();
    for _ in 0..scrapes {
        text::parse(&body).unwrap();
    }
    println!("{:<48} {:>9.1} µs", "scrape: parse and validate", t.elapsed().as_micros() as f64 / scrapes as f64);
}
