//! Turns a call's timeline and the caller's own measurements into the demo report.

use callfunnel_data::TimelineEvent;
use callfunnel_media::caller::{CallerReport, LineReport};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Serialize)]
pub struct Turn {
    pub caller_said: String,
    /// What STT heard of the caller.
    pub agent_heard: String,
    /// The agent's reply as the caller heard it.
    pub agent_said: String,
    pub interrupted: bool,
    pub latency_ms: Option<Value>,
    /// Measured by the caller: end of its speech → first agent audio it heard.
    pub caller_heard_reply_after_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct BargeIn {
    /// Caller speech start → the `clear` that stopped the agent, as the caller saw it.
    pub clear_sent_ms: Option<u64>,
    pub history_truncated: bool,
    pub heard: String,
    pub full_text: String,
}

#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub call_id: String,
    pub greeting: String,
    pub turns: Vec<Turn>,
    pub barge_in: Option<BargeIn>,
    pub recording: Option<String>,
    pub ended: Value,
    /// The post-call analysis (summary, extraction, success), when it finished in time.
    pub analysis: Option<Value>,
    /// The server's whole timeline of the call.
    pub timeline: Vec<TimelineEvent>,
}

fn turn_of(e: &TimelineEvent) -> Option<u64> {
    e.data["turn"].as_u64()
}

fn text(e: &TimelineEvent) -> String {
    e.data["text"].as_str().unwrap_or_default().to_string()
}

/// Lines are matched to the server's events by time: everything the server logged between
/// the start of line i and the start of line i+1 belongs to turn i.
/// Matches the caller's lines with the server's timeline. The two clocks start at different
/// moments (the server's when the call is set up, a little after the caller connects): with
/// the caller's start time, lines are moved onto the server's clock.
pub fn build(call_id: &str, lines: &[LineReport], events: &[TimelineEvent], recording: Option<String>, caller_started_unix_ms: Option<u64>) -> DemoReport {
    let said = |turn: u64| events.iter().find(|e| e.kind == "agent_said" && turn_of(e) == Some(turn));
    let greeting = said(1).map(text).unwrap_or_default();
    let server_origin = events.iter().find(|e| e.kind == "call_started").map(|e| e.unix_ms.saturating_sub(e.at_ms));
    let shift = match (caller_started_unix_ms, server_origin) {
        (Some(c), Some(s)) => c as i64 - s as i64,
        _ => 0,
    };
    let on_server = |ms: u64| (ms as i64 + shift).max(0) as u64;
    let mut turns = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let end = lines.get(i + 1).map_or(u64::MAX, |n| on_server(n.started_ms));
        let start = on_server(l.started_ms);
        let window: Vec<&TimelineEvent> = events.iter().filter(|e| e.at_ms >= start && e.at_ms < end).collect();
        let heard: Vec<String> = window.iter().filter(|e| e.kind == "transcript").map(|e| text(e)).collect();
        let first_transcript = window.iter().position(|e| e.kind == "transcript" || e.kind == "dtmf");
        let reply_turn = first_transcript.and_then(|p| window[p..].iter().find(|e| e.kind == "agent_turn_started").and_then(|e| turn_of(e)));
        let reply = reply_turn.and_then(said);
        let latency = reply_turn.and_then(|t| events.iter().find(|e| e.kind == "turn_latency" && turn_of(e) == Some(t))).map(|e| e.data["latency_ms"].clone());
        turns.push(Turn {
            caller_said: l.said.clone(),
            agent_heard: heard.join(" "),
            agent_said: reply.map(text).unwrap_or_default(),
            interrupted: reply.is_some_and(|e| e.data["interrupted"].as_bool() == Some(true)),
            latency_ms: latency,
            caller_heard_reply_after_ms: l.reply_after_ms,
        });
    }
    let barge_in = events.iter().find(|e| e.kind == "barge_in").map(|e| BargeIn {
        clear_sent_ms: lines.iter().find(|l| l.barge_in).and_then(|l| l.clear_after_ms),
        history_truncated: e.data["history_truncated"].as_bool().unwrap_or(false),
        heard: e.data["heard"].as_str().unwrap_or_default().to_string(),
        full_text: e.data["full_text"].as_str().unwrap_or_default().to_string(),
    });
    let ended = events.iter().rev().find(|e| e.kind == "call_ended").map(|e| e.data.clone()).unwrap_or(Value::Null);
    let analysis = events.iter().rev().find(|e| e.kind == "call_analyzed" || e.kind == "call_analysis_failed").map(|e| e.data.clone());
    DemoReport { call_id: call_id.to_string(), greeting, turns, barge_in, recording, ended, analysis, timeline: events.to_vec() }
}

fn f(v: &Value, k: &str) -> String {
    v[k].as_f64().map_or("-".into(), |x| format!("{x:.0}"))
}

pub fn print_demo(r: &DemoReport) {
    println!("\ncall {}", r.call_id);
    println!("  agent : {}", r.greeting);
    for (i, t) in r.turns.iter().enumerate() {
        println!("\nturn {}", i + 1);
        println!("  caller: {}", t.caller_said);
        println!("  heard : {}", t.agent_heard);
        println!("  agent : {}{}", t.agent_said, if t.interrupted { "  [cut off by the caller]" } else { "" });
    }
    if let Some(b) = &r.barge_in {
        println!("\nbarge-in: clear sent {} ms after the caller started; history kept \"{}\" of \"{}\" (truncated: {})",
            b.clear_sent_ms.map_or("-".into(), |x| x.to_string()), b.heard, b.full_text, b.history_truncated);
    }
    println!("\nlatency (ms)  end-of-turn     stt   brain     tts    total   caller-heard");
    for (i, t) in r.turns.iter().enumerate() {
        let l = t.latency_ms.clone().unwrap_or(Value::Null);
        println!("turn {:<7} {:>11} {:>7} {:>7} {:>7} {:>8} {:>14}", i + 1, f(&l, "end_of_turn"), f(&l, "stt"), f(&l, "brain_first_token"), f(&l, "tts_first_audio"), f(&l, "total"),
            t.caller_heard_reply_after_ms.map_or("-".into(), |x| x.to_string()));
    }
    if let Some(p) = &r.recording {
        println!("\nrecording (left: caller, right: agent): {p}");
    }
    println!("call ended: {}", r.ended);
    if let Some(a) = &r.analysis {
        println!("\npost-call analysis ({})", a["analyzer"].as_str().unwrap_or("failed"));
        match a["error"].as_str() {
            Some(e) => println!("  failed : {e}"),
            None => {
                println!("  summary: {}", a["summary"].as_str().unwrap_or_default());
                println!("  success: {} ({})", a["success"], a["success_reason"].as_str().unwrap_or_default());
                println!("  extract: {}", a["extraction"]);
            }
        }
    }
}

pub fn print_call(r: &CallerReport, timeline: Option<&[TimelineEvent]>) {
    match timeline {
        Some(ev) => print_demo(&build(&r.call_sid, &r.lines, ev, r.recording.as_ref().map(|p| p.display().to_string()), Some(r.started_unix_ms))),
        None => {
            for l in &r.lines {
                println!("caller: {}  (agent replied after {} ms)", l.said, l.reply_after_ms.map_or("-".into(), |x| x.to_string()));
            }
        }
    }
    println!("ended: {} after {} ms; agent audio {} ms; marks echoed {}; clears {}", r.ended_by, r.duration_ms, r.agent_audio_ms, r.marks_echoed, r.clears);
}

/// A media stream URL taken apart: `ws://H/CARRIER/media/CALL_ID[/TOKEN][?query]`.
pub struct MediaTarget {
    pub base: String,
    pub http_base: String,
    pub call_id: String,
    pub token: Option<String>,
    pub query: String,
}

pub fn media_target(ws_url: &str) -> Option<MediaTarget> {
    let (scheme, rest) = ws_url.split_once("://")?;
    let (host, path) = rest.split_once('/')?;
    let (path, query) = path.split_once('?').map_or((path, String::new()), |(p, q)| (p, format!("?{q}")));
    let (carrier, tail) = path.strip_prefix("twilio/media/").map(|t| ("twilio", t)).or_else(|| path.strip_prefix("exotel/media/").map(|t| ("exotel", t)))?;
    let mut parts = tail.splitn(2, '/');
    let call_id = parts.next().filter(|c| !c.is_empty())?.to_string();
    let token = parts.next().filter(|t| !t.is_empty()).map(str::to_string);
    let http = if scheme == "wss" { "https" } else { "http" };
    Some(MediaTarget { base: format!("{scheme}://{host}/{carrier}/media"), http_base: format!("{http}://{host}"), call_id, token, query })
}

impl MediaTarget {
    pub fn with_token(&self, token: &str) -> String {
        format!("{}/{}/{token}{}", self.base, self.call_id, self.query)
    }

    /// The callfunnel API's view of this call.
    pub fn call_url(&self) -> String {
        format!("{}/v1/calls/{}", self.http_base, self.call_id)
    }
}

pub async fn fetch_timeline(ws_url: &str, bearer: &str) -> Option<Vec<TimelineEvent>> {
    let url = media_target(ws_url)?.call_url();
    let http = reqwest::Client::new();
    // The server writes the timeline as the call ends; give it a moment.
    for _ in 0..10 {
        if let Ok(r) = http.get(&url).bearer_auth(bearer).send().await {
            if let Ok(v) = r.json::<Value>().await {
                if let Ok(ev) = serde_json::from_value::<Vec<TimelineEvent>>(v["events"].clone()) {
                    if ev.iter().any(|e| e.kind == "call_ended") {
                        return Some(ev);
                    }
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(at: u64, kind: &str, data: Value) -> TimelineEvent {
        TimelineEvent::new(at, at, kind, data)
    }

    fn line(said: &str, start: u64, barge: bool) -> LineReport {
        LineReport { said: said.into(), started_ms: start, ended_ms: start + 1000, barge_in: barge, reply_after_ms: Some(700), clear_after_ms: barge.then_some(400) }
    }

    #[test]
    fn events_are_matched_to_lines_by_time() {
        let events = vec![
            ev(0, "agent_turn_started", json!({"turn": 1})),
            ev(3000, "agent_said", json!({"turn": 1, "text": "Hello, Riverside clinic.", "interrupted": false})),
            ev(5000, "transcript", json!({"text": "what are your hours"})),
            ev(5001, "agent_turn_started", json!({"turn": 2})),
            ev(5600, "turn_latency", json!({"turn": 2, "latency_ms": {"total": 640.0}})),
            ev(7400, "barge_in", json!({"turn": 2, "heard": "We are open", "full_text": "We are open weekdays.", "history_truncated": true})),
            ev(7400, "agent_said", json!({"turn": 2, "text": "We are open", "interrupted": true})),
            ev(8500, "transcript", json!({"text": "book an appointment"})),
            ev(8501, "agent_turn_started", json!({"turn": 3})),
            ev(9900, "agent_said", json!({"turn": 3, "text": "Sure, your name?", "interrupted": false})),
            ev(12000, "call_ended", json!({"end": "caller_hung_up"})),
        ];
        let lines = vec![line("What are your hours?", 4000, false), line("Book an appointment", 7000, true)];
        let r = build("c1", &lines, &events, None, None);
        assert_eq!(r.greeting, "Hello, Riverside clinic.");
        assert_eq!(r.turns[0].agent_heard, "what are your hours");
        assert_eq!(r.turns[0].agent_said, "We are open");
        assert!(r.turns[0].interrupted);
        assert_eq!(r.turns[0].latency_ms.as_ref().unwrap()["total"], 640.0);
        assert_eq!(r.turns[1].agent_said, "Sure, your name?");
        let b = r.barge_in.unwrap();
        assert!(b.history_truncated);
        assert_eq!(b.clear_sent_ms, Some(400));
        assert_eq!(r.ended["end"], "caller_hung_up");

        // The server set the call up 1.5 s after the caller connected: its clock starts later.
        // Lines move onto it by the caller's start time, or the turns would be mismatched.
        let late: Vec<TimelineEvent> = std::iter::once(TimelineEvent::new(0, 0, "call_started", json!({}))).chain(events.iter().cloned()).map(|mut e| {
            e.unix_ms = 1_000_000 + 1500 + e.at_ms;
            e
        }).collect();
        let shifted: Vec<LineReport> = lines.iter().map(|l| LineReport { started_ms: l.started_ms + 1500, ..l.clone() }).collect();
        assert_ne!(build("c1", &shifted, &late, None, None).turns[0].agent_said, "We are open", "without the clocks lined up");
        let r = build("c1", &shifted, &late, None, Some(1_000_000));
        assert_eq!((r.turns[0].agent_heard.as_str(), r.turns[0].agent_said.as_str(), r.turns[1].agent_said.as_str()), ("what are your hours", "We are open", "Sure, your name?"));
    }

    #[test]
    fn timeline_url_follows_the_media_url() {
        let t = media_target("ws://127.0.0.1:8080/twilio/media/abc").unwrap();
        assert_eq!((t.call_url().as_str(), t.token.as_deref()), ("http://127.0.0.1:8080/v1/calls/abc", None));
        assert_eq!(t.with_token("123.mac"), "ws://127.0.0.1:8080/twilio/media/abc/123.mac");
        let t = media_target("wss://h.example/twilio/media/x/99.sig").unwrap();
        assert_eq!((t.call_url().as_str(), t.token.as_deref()), ("https://h.example/v1/calls/x", Some("99.sig")));
        assert!(media_target("ws://h/other").is_none());
        let t = media_target("ws://h/exotel/media/ex-1?sample-rate=8000").unwrap();
        assert_eq!((t.call_url().as_str(), t.with_token("1.s").as_str()), ("http://h/v1/calls/ex-1", "ws://h/exotel/media/ex-1/1.s?sample-rate=8000"));
    }
}
