use serde_json::json;

use super::*;

fn line(speaker: Speaker, text: &str) -> Line {
    Line { speaker, text: text.into(), interrupted: false }
}

fn booking_call() -> CallRecord {
    CallRecord {
        call_id: "c1".into(),
        lines: vec![
            line(Speaker::Agent, "Thanks for calling Maple Clinic. How can I help?"),
            line(Speaker::Caller, "I'd like to book an appointment for tomorrow at 3 pm."),
            line(Speaker::Agent, "Can I have your name?"),
            line(Speaker::Caller, "My name is Alex Morgan."),
            line(Speaker::Agent, "You're booked for tomorrow at 3 PM."),
            line(Speaker::Caller, "Perfect, thank you."),
        ],
        intents: vec!["book_appointment".into()],
        tools: vec![("book_slot".into(), true)],
        ended_by: "caller_hung_up".into(),
        duration_ms: 42_000,
        date: chrono::NaiveDate::from_ymd_opt(2026, 12, 3),
    }
}

fn clinic_spec() -> AnalysisSpec {
    AnalysisSpec {
        schema: Some(json!({"type": "object", "required": ["outcome", "appointment_date", "appointment_time", "patient_name", "sentiment"], "properties": {
            "outcome": {"enum": ["booked", "cancelled", "transferred", "information", "other"]},
            "appointment_date": {"type": ["string", "null"], "format": "date"},
            "appointment_time": {"type": ["string", "null"]},
            "patient_name": {"type": ["string", "null"]},
            "sentiment": {"enum": ["positive", "neutral", "negative"]},
            "transferred": {"type": "boolean"}}})),
        success_intents: vec!["book_appointment".into(), "cancel_appointment".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn the_local_analyzer_reads_the_call() {
    let (a, usage) = LocalAnalyzer.analyze(&booking_call(), &clinic_spec()).await.unwrap();
    assert!(usage.is_none());
    assert_eq!(a.extraction, json!({"outcome": "booked", "appointment_date": "2026-12-04", "appointment_time": "15:00", "patient_name": "Alex Morgan", "sentiment": "positive", "transferred": false}));
    assert!(a.summary.contains("book an appointment for tomorrow at 3 pm") && a.summary.contains("book appointment"), "{}", a.summary);
    assert!(a.success, "{}", a.success_reason);
    assert_eq!(a.analyzer, "local");
}

#[tokio::test]
async fn what_the_call_does_not_say_is_null_and_failure_is_explained() {
    let call = CallRecord { lines: vec![line(Speaker::Caller, "Hmm, this is useless, I am frustrated.")], intents: vec!["fallback".into()], ended_by: "caller_hung_up".into(), ..Default::default() };
    let (a, _) = LocalAnalyzer.analyze(&call, &clinic_spec()).await.unwrap();
    assert_eq!(a.extraction["appointment_time"], Value::Null);
    assert_eq!(a.extraction["outcome"], "other");
    assert_eq!(a.extraction["sentiment"], "negative");
    assert!(!a.success);
    assert!(a.success_reason.contains("book_appointment"), "{}", a.success_reason);
}

#[tokio::test]
async fn a_schema_the_call_cannot_fill_is_a_clear_error() {
    let spec = AnalysisSpec { schema: Some(json!({"type": "object", "required": ["order_id"], "properties": {"order_id": {"type": "string"}}})), ..Default::default() };
    let e = LocalAnalyzer.analyze(&booking_call(), &spec).await.unwrap_err().to_string();
    assert!(e.contains("order_id") && e.contains("allow null"), "{e}");
}

#[test]
fn specs_are_checked() {
    assert!(clinic_spec().validate().is_ok());
    let not_object = AnalysisSpec { schema: Some(json!({"type": "string"})), ..Default::default() };
    assert!(not_object.validate().unwrap_err().contains("object"));
    let broken = AnalysisSpec { schema: Some(json!({"type": "object", "properties": {"x": {"type": "strng"}}})), ..Default::default() };
    assert!(broken.validate().is_err());
    let provider = AnalysisSpec { provider: Some("gpt".into()), ..Default::default() };
    assert!(provider.validate().unwrap_err().contains("gpt"));
}

#[test]
fn the_transcript_marks_interruptions() {
    let mut call = booking_call();
    call.lines[2].interrupted = true;
    let t = call.transcript();
    assert!(t.contains("Agent: Can I have your name? [interrupted by the caller]\nCaller: My name is Alex Morgan."), "{t}");
}
