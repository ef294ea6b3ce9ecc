//! `callfunnel loadtest`: N concurrent simulated callers against a running server, speaking the
//! Twilio protocol as Twilio does (the `/twilio/voice` webhook, then the Media Streams
//! WebSocket: 20 ms paced µ-law frames, marks echoed, `clear` obeyed), each talking and pausing
//! by its script, with a barge-in. Every finished call is replaced until the duration ends.
//! The report joins what the callers measured with what the server says about itself on
//! `/metrics`: turn stages, engine-added latency, CPU and memory.

mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use callfunnel_media::caller::{self, CallerOptions, CallerReport, Script};
use callfunnel_metrics::text::Scrape;
use parking_lot::Mutex;
use serde::Serialize;
use stats::{Percentiles, percentiles};

/// The default caller: greets back, asks, barges in on the answer, thanks and says goodbye.
pub const LOAD_SCRIPT: &str = include_str!("../../../../assets/load/caller.toml");

#[derive(clap::Args)]
pub struct Args {
    /// The server, e.g. http://127.0.0.1:8080 (its `/twilio/voice` and `/metrics`).
    #[arg(long)]
    target: String,
    /// Concurrent calls to hold.
    #[arg(long, default_value_t = 10)]
    calls: usize,
    /// Seconds over which the calls start (evenly).
    #[arg(long, default_value_t = 10)]
    ramp: u64,
    /// Seconds after the ramp during which every finished call is replaced.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Caller script (TOML with [[line]] entries; default: assets/load/caller.toml).
    #[arg(long)]
    script: Option<PathBuf>,
    /// The number called (the server routes it to its agent).
    #[arg(long, default_value = "+15550199")]
    to: String,
    /// Sign the webhook and the stream with X-Twilio-Signature using this auth token.
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    twilio_auth_token: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub target_calls: usize,
    pub ramp_s: u64,
    pub duration_s: u64,
    pub wall_s: f64,
    /// Calls that ran to the end of their script (the agent closed the stream after goodbye).
    pub completed: u64,
    /// Calls that failed to start or ended early (a connection error, a caller timeout).
    pub dropped: u64,
    pub drop_reasons: Vec<String>,
    /// Most calls live on the server at once (its own gauge, sampled every second).
    pub peak_active_calls: u64,
    /// Caller side: end of its speech → first agent audio heard (ms).
    pub reply_after_ms: Percentiles,
    /// Caller side: start of a barge-in → the `clear` that stopped the agent (ms).
    pub barge_in_clear_ms: Percentiles,
    /// Server side, per stage of a turn, from its histograms (ms).
    pub stages: Vec<(String, Percentiles)>,
    /// The turn latency the engine adds beyond its providers and models (ms).
    pub engine_added_ms: Percentiles,
    /// Server process CPU over the run (100 = one core busy).
    pub server_cpu_percent: f64,
    /// Server CPU per second of call audio (ms).
    pub cpu_ms_per_call_second: f64,
    pub server_rss_idle_mb: f64,
    pub server_rss_peak_mb: f64,
    /// (peak RSS − idle RSS) / peak live calls.
    pub kb_per_call: f64,
    /// VAD frames the energy pre-gate judged without running Silero (%).
    pub vad_gated_percent: f64,
    /// Frames per Silero model run (frames from many calls are batched).
    pub vad_batch_mean: f64,
    /// This load generator's own CPU over the run (it shares the machine when run locally).
    pub loadgen_cpu_percent: f64,
}

#[derive(Default)]
struct Tally {
    completed: AtomicU64,
    dropped: AtomicU64,
    live: AtomicUsize,
    reasons: Mutex<Vec<String>>,
    reports: Mutex<Vec<CallerReport>>,
    call_ms: AtomicU64,
}

const STAGES: [&str; 7] = ["end_of_turn", "stt", "brain_first_token", "tts_first_audio", "send", "engine_overhead", "total"];

pub async fn run(args: Args) -> anyhow::Result<()> {
    let target = args.target.trim_end_matches('/').to_string();
    if !(target.starts_with("http://") || target.starts_with("https://")) {
        anyhow::bail!("--target must be the server's http:// or https:// base URL, got `{}`", args.target);
    }
    if args.calls == 0 || args.calls > 20_000 {
        anyhow::bail!("--calls must be 1 to 20000");
    }
    let script = match &args.script {
        Some(p) => Script::from_file(p)?,
        None => Script::from_toml(LOAD_SCRIPT).map_err(|e| anyhow::anyhow!("built-in load script: {e}"))?,
    };
    let audio = Arc::new(caller::render(&script)?);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).pool_max_idle_per_host(64).build()?;
    warm(&http, &target).await?;
    let before = scrape(&http, &target).await.map_err(|e| anyhow::anyhow!("cannot read {target}/metrics (is the server up?): {e}"))?;
    let rss_idle = before.get("process_resident_memory_bytes", &[]).unwrap_or(0.0);

    let own_cpu = || callfunnel_metrics::process::read().cpu_seconds.unwrap_or(0.0);
    let cpu0 = own_cpu();
    let t0 = Instant::now();
    let end_at = t0 + Duration::from_secs(args.ramp + args.duration);
    let tally = Arc::new(Tally::default());
    let script = Arc::new(script);
    let peak_rss = Arc::new(AtomicU64::new(rss_idle as u64));
    let peak_live = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (http, target, peak_rss, peak_live) = (http.clone(), target.clone(), peak_rss.clone(), peak_live.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok(s) = scrape(&http, &target).await {
                    peak_rss.fetch_max(s.get("process_resident_memory_bytes", &[]).unwrap_or(0.0) as u64, Ordering::Relaxed);
                    peak_live.fetch_max(s.get("callfunnel_active_calls", &[]).unwrap_or(0.0) as u64, Ordering::Relaxed);
                }
            }
        })
    };
    let bar = progress(&args, &tally, t0);
    let mut slots = Vec::new();
    for i in 0..args.calls {
        let start = t0 + Duration::from_secs_f64(args.ramp as f64 * i as f64 / args.calls as f64);
        let (tally, script, audio, http, target) = (tally.clone(), script.clone(), audio.clone(), http.clone(), target.clone());
        let (to, token) = (args.to.clone(), args.twilio_auth_token.clone());
        slots.push(tokio::spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            let mut n = 0u64;
            while Instant::now() < end_at {
                let sid = format!("CAload{:08x}{i:06}{n:06}", std::process::id());
                n += 1;
                tally.live.fetch_add(1, Ordering::Relaxed);
                let r = one_call(&http, &target, &sid, &to, token.as_deref(), &script, &audio).await;
                tally.live.fetch_sub(1, Ordering::Relaxed);
                match r {
                    Ok(rep) if rep.ended_by == "agent closed the stream" || rep.ended_by == "script finished" => {
                        tally.completed.fetch_add(1, Ordering::Relaxed);
                        tally.call_ms.fetch_add(rep.duration_ms, Ordering::Relaxed);
                        tally.reports.lock().push(rep);
                    }
                    Ok(rep) => drop_call(&tally, format!("{sid}: {}", rep.ended_by)),
                    Err(e) => {
                        drop_call(&tally, format!("{sid}: {e}"));
                        tokio::time::sleep(Duration::from_millis(500)).await; // do not spin on a refusing server
                    }
                }
            }
        }));
    }
    for s in slots {
        let _ = s.await;
    }
    sampler.abort();
    bar.finish_and_clear();
    let wall = t0.elapsed().as_secs_f64();
    let after = scrape(&http, &target).await.map_err(|e| anyhow::anyhow!("cannot read {target}/metrics after the run: {e}"))?;
    let mut report = build_report(&args, &tally, &before, &after, wall, rss_idle, peak_rss.load(Ordering::Relaxed) as f64, peak_live.load(Ordering::Relaxed));
    report.loadgen_cpu_percent = (own_cpu() - cpu0) / wall * 100.0;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    if report.completed == 0 {
        anyhow::bail!("no call completed");
    }
    Ok(())
}

/// Waits until the server is ready and has loaded its models (they load in the background
/// after start): the idle memory is measured with them in.
async fn warm(http: &reqwest::Client, target: &str) -> anyhow::Result<()> {
    let t = Instant::now();
    loop {
        let ready = match http.get(format!("{target}/readyz")).send().await {
            Ok(r) => r.json::<serde_json::Value>().await.ok(),
            Err(e) if t.elapsed() > Duration::from_secs(120) => anyhow::bail!("{target}/readyz: {e}"),
            Err(_) => None,
        };
        if ready.as_ref().is_some_and(|v| v["ready"] == true && v["models_loaded"] == true) {
            return Ok(());
        }
        if t.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("{target} is not ready with its models loaded after 120 s: {}", ready.unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn drop_call(tally: &Tally, why: String) {
    tally.dropped.fetch_add(1, Ordering::Relaxed);
    let mut r = tally.reasons.lock();
    if r.len() < 20 {
        r.push(why);
    }
}

fn progress(args: &Args, tally: &Arc<Tally>, t0: Instant) -> indicatif::ProgressBar {
    let total = args.ramp + args.duration;
    let bar = if args.json { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(total) };
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} s {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
    let (b, t) = (bar.clone(), tally.clone());
    tokio::spawn(async move {
        while !b.is_finished() {
            b.set_position(t0.elapsed().as_secs().min(total));
            b.set_message(format!("live {} · completed {} · dropped {}", t.live.load(Ordering::Relaxed), t.completed.load(Ordering::Relaxed), t.dropped.load(Ordering::Relaxed)));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    bar
}

async fn scrape(http: &reqwest::Client, target: &str) -> anyhow::Result<Scrape> {
    let text = http.get(format!("{target}/metrics")).send().await?.error_for_status()?.text().await?;
    callfunnel_metrics::text::parse(&text).map_err(|e| anyhow::anyhow!("unreadable metrics: {e}"))
}

/// One inbound call: the webhook (TwiML with the stream URL), then the scripted caller.
async fn one_call(http: &reqwest::Client, target: &str, sid: &str, to: &str, token: Option<&str>, script: &Script, audio: &[Vec<i16>]) -> anyhow::Result<CallerReport> {
    let params: Vec<(String, String)> = [("CallSid", sid), ("AccountSid", "AC00000000000000000000000000000000"), ("From", "+15550100"), ("To", to), ("CallStatus", "ringing"), ("Direction", "inbound")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let url = format!("{target}/twilio/voice");
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
    let mut req = http.post(&url).header("content-type", "application/x-www-form-urlencoded").body(body);
    if let Some(t) = token {
        req = req.header("X-Twilio-Signature", callfunnel_telephony::twilio::signature::sign(t, &url, &params));
    }
    let r = req.send().await?;
    if !r.status().is_success() {
        anyhow::bail!("webhook answered {}", r.status());
    }
    let twiml = r.text().await?;
    let ws = stream_url(&twiml).ok_or_else(|| anyhow::anyhow!("no <Stream url> in the webhook's TwiML"))?;
    let mut opts = CallerOptions { call_sid: Some(sid.to_string()), ..CallerOptions::new(ws.clone()) };
    if let Some(t) = token {
        opts.headers.push(("X-Twilio-Signature".into(), callfunnel_telephony::twilio::signature::sign(t, &ws, &[])));
    }
    Ok(caller::run_rendered(script, audio, &opts).await?)
}

fn stream_url(twiml: &str) -> Option<String> {
    let at = twiml.find("<Stream")?;
    let rest = &twiml[at..];
    let start = rest.find("url=\"")? + 5;
    let end = start + rest[start..].find('"')?;
    Some(rest[start..end].replace("&amp;", "&"))
}

#[allow(clippy::too_many_arguments)]
fn build_report(args: &Args, t: &Tally, before: &Scrape, after: &Scrape, wall: f64, rss_idle: f64, rss_peak: f64, peak_live: u64) -> Report {
    let reports = t.reports.lock();
    let replies: Vec<f64> = reports.iter().flat_map(|r| r.lines.iter().filter_map(|l| l.reply_after_ms.map(|v| v as f64))).collect();
    let clears: Vec<f64> = reports.iter().flat_map(|r| r.lines.iter().filter(|l| l.barge_in).filter_map(|l| l.clear_after_ms.map(|v| v as f64))).collect();
    let family = "callfunnel_turn_stage_seconds";
    let stages: Vec<(String, Percentiles)> = STAGES.iter().map(|s| (s.to_string(), stats::stage(before, after, family, s))).collect();
    let cpu = after.get("process_cpu_seconds_total", &[]).unwrap_or(0.0) - before.get("process_cpu_seconds_total", &[]).unwrap_or(0.0);
    let call_s = t.call_ms.load(Ordering::Relaxed) as f64 / 1000.0;
    let rss_peak = rss_peak.max(after.get("process_resident_memory_bytes", &[]).unwrap_or(0.0));
    let vad = |r: &str| after.sum("callfunnel_vad_frames_total", &[("result", r)]) - before.sum("callfunnel_vad_frames_total", &[("result", r)]);
    let (silero, gated) = (vad("silero"), vad("gated"));
    let batches = after.sum("callfunnel_vad_batches_total", &[]) - before.sum("callfunnel_vad_batches_total", &[]);
    Report {
        target_calls: args.calls,
        ramp_s: args.ramp,
        duration_s: args.duration,
        wall_s: wall,
        completed: t.completed.load(Ordering::Relaxed),
        dropped: t.dropped.load(Ordering::Relaxed),
        drop_reasons: t.reasons.lock().clone(),
        peak_active_calls: peak_live,
        reply_after_ms: percentiles(&replies),
        barge_in_clear_ms: percentiles(&clears),
        engine_added_ms: stats::stage(before, after, family, "engine_overhead"),
        stages,
        server_cpu_percent: if wall > 0.0 { cpu / wall * 100.0 } else { 0.0 },
        cpu_ms_per_call_second: if call_s > 0.0 { cpu * 1000.0 / call_s } else { 0.0 },
        server_rss_idle_mb: rss_idle / 1e6,
        server_rss_peak_mb: rss_peak / 1e6,
        kb_per_call: if peak_live > 0 { (rss_peak - rss_idle).max(0.0) / 1000.0 / peak_live as f64 } else { 0.0 },
        vad_gated_percent: if silero + gated > 0.0 { gated * 100.0 / (silero + gated) } else { 0.0 },
        vad_batch_mean: if batches > 0.0 { silero / batches } else { 0.0 },
        loadgen_cpu_percent: 0.0,
    }
}

fn print(r: &Report) {
    println!("load test: {} concurrent calls, ramp {} s, then {} s ({:.0} s in all)", r.target_calls, r.ramp_s, r.duration_s, r.wall_s);
    println!("  calls completed {} · dropped {} · peak live on the server {}", r.completed, r.dropped, r.peak_active_calls);
    for why in &r.drop_reasons {
        println!("    dropped: {why}");
    }
    let p = |name: &str, p: &Percentiles| println!("  {name:<34} n={:<6} p50 {:>7.1}  p95 {:>7.1}  p99 {:>7.1}  max {:>7.1} ms", p.n, p.p50, p.p95, p.p99, p.max);
    p("caller: speech end → agent audio", &r.reply_after_ms);
    p("caller: barge-in → clear", &r.barge_in_clear_ms);
    for (s, v) in &r.stages {
        p(&format!("server stage {s}"), v);
    }
    println!("  server CPU {:.1} % · {:.2} ms CPU per call-second · RSS {:.1} MB idle, {:.1} MB peak · {:.0} KB per call · VAD frames gated {:.0} %, {:.1} per Silero run", r.server_cpu_percent, r.cpu_ms_per_call_second, r.server_rss_idle_mb, r.server_rss_peak_mb, r.kb_per_call, r.vad_gated_percent, r.vad_batch_mean);
    println!("  load generator CPU {:.1} % (on the same machine, it competes with the server)", r.loadgen_cpu_percent);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stream_url_comes_from_the_twiml() {
        let t = r#"<?xml version="1.0"?><Response><Connect action="http://h/twilio/after/x"><Stream url="ws://h/twilio/media/CA1/1.abc"><Parameter name="a" value="b"/></Stream></Connect></Response>"#;
        assert_eq!(super::stream_url(t).as_deref(), Some("ws://h/twilio/media/CA1/1.abc"));
        assert_eq!(super::stream_url("<Response><Hangup/></Response>"), None);
    }

    #[test]
    fn the_built_in_script_parses() {
        let s = callfunnel_media::caller::Script::from_toml(super::LOAD_SCRIPT).unwrap();
        assert!(s.lines.iter().any(|l| l.barge_in_after_ms.is_some()), "it barges in");
    }
}
