//! A finished call as the analyzer reads it, rebuilt from its timeline: what each side heard,
//! the intents and tools, how it ended.

use callfunnel_ai::analysis::{CallRecord, Line, Speaker};
use callfunnel_data::TimelineEvent;

pub fn call_record(call_id: &str, events: &[TimelineEvent]) -> CallRecord {
    let mut r = CallRecord { call_id: call_id.to_string(), ..Default::default() };
    let start = events.iter().find(|e| e.kind == "call_started").or(events.first());
    r.date = start.and_then(|e| chrono::DateTime::from_timestamp_millis(e.unix_ms as i64)).map(|t| t.date_naive());
    for e in events {
        let d = &e.data;
        let text = || d["text"].as_str().unwrap_or_default().trim().to_string();
        match e.kind.as_str() {
            "transcript" if !text().is_empty() => r.lines.push(Line { speaker: Speaker::Caller, text: text(), interrupted: false }),
            "agent_said" if !text().is_empty() => r.lines.push(Line { speaker: Speaker::Agent, text: text(), interrupted: d["interrupted"].as_bool().unwrap_or(false) }),
            "intent" => r.intents.extend(d["name"].as_str().map(str::to_string)),
            "tool_called" => r.tools.extend(d["name"].as_str().map(|n| (n.to_string(), d["ok"].as_bool().unwrap_or(true)))),
            "call_ended" => {
                r.ended_by = d["end"].as_str().unwrap_or("ended").to_string();
                if r.ended_by == "transferred" {
                    r.tools.push(("transfer".into(), true));
                }
                r.duration_ms = e.at_ms;
            }
            _ => {}
        }
    }
    if r.ended_by.is_empty() {
        r.ended_by = "unknown".into();
    }
    r
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_timeline_becomes_the_conversation() {
        let ev = |at: u64, kind: &str, data: serde_json::Value| TimelineEvent::new(at, 1_764_720_000_000 + at, kind, data);
        let events = vec![
            ev(0, "call_started", json!({})),
            ev(100, "agent_said", json!({"turn": 1, "text": "Hello, Maple Clinic.", "interrupted": false})),
            ev(900, "transcript", json!({"text": "Book me in tomorrow"})),
            ev(950, "intent", json!({"turn": 2, "name": "book_appointment", "score": 0.8})),
            ev(990, "tool_called", json!({"turn": 2, "name": "calendar", "ok": false, "detail": "timeout"})),
            ev(1200, "agent_said", json!({"turn": 2, "text": "Sure, what", "interrupted": true})),
            ev(1300, "transcript", json!({"text": "  "})),
            ev(5000, "call_ended", json!({"end": "transferred", "to": "+15550100", "reason": "asked"})),
        ];
        let r = call_record("c9", &events);
        assert_eq!(r.lines.len(), 3);
        assert!(r.lines[2].interrupted && r.lines[1].speaker == Speaker::Caller);
        assert_eq!(r.intents, vec!["book_appointment".to_string()]);
        assert_eq!(r.tools, vec![("calendar".to_string(), false), ("transfer".to_string(), true)]);
        assert_eq!((r.ended_by.as_str(), r.duration_ms), ("transferred", 5000));
        assert_eq!(r.date.unwrap().to_string(), "2025-12-03");
    }
}
