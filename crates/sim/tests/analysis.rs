//! Post-call analysis and structured output on the Anthropic simulator: a valid answer, an
//! answer that breaks the schema and is repaired, one that stays broken (a clear error), and
//! provider outages (transient, for the queue to retry).

use callfunnel_ai::analysis::{AnalysisError, AnalysisSpec, CallAnalyzer, CallRecord, ClaudeAnalyzer, Line, Speaker};
use callfunnel_ai::cloud::anthropic::AnthropicClient;
use callfunnel_ai::cloud::retry::RetryPolicy;
use callfunnel_ai::cloud::{Endpoint, Secret};
use callfunnel_sim::{Fault, Provider, SimConfig, SimServer, start};
use serde_json::json;

async fn sim() -> SimServer {
    start(Provider::Anthropic, ([127, 0, 0, 1], 0).into(), SimConfig::default()).await.unwrap()
}

fn analyzer(s: &SimServer) -> ClaudeAnalyzer {
    let client = AnthropicClient::offline(Endpoint::new(s.url(), Secret::new("sim-key")));
    // quick retries for the test; the production policy waits longer
    let client = client.with_policy(RetryPolicy { max_retries: 2, base: std::time::Duration::from_millis(10), ..Default::default() });
    ClaudeAnalyzer::new(client, "claude-haiku-4-5")
}

fn call() -> CallRecord {
    let l = |speaker, text: &str| Line { speaker, text: text.into(), interrupted: false };
    CallRecord {
        call_id: "c1".into(),
        lines: vec![l(Speaker::Agent, "Maple Clinic, how can I help?"), l(Speaker::Caller, "I want to cancel my appointment at 3 pm"), l(Speaker::Agent, "Done, it is cancelled.")],
        intents: vec!["cancel_appointment".into()],
        ended_by: "caller_hung_up".into(),
        duration_ms: 20_000,
        ..Default::default()
    }
}

fn spec() -> AnalysisSpec {
    AnalysisSpec {
        schema: Some(json!({"type": "object", "required": ["outcome", "appointment_time"], "properties": {
            "outcome": {"enum": ["booked", "cancelled", "other"]}, "appointment_time": {"type": ["string", "null"]}}, "additionalProperties": false})),
        success: Some("The caller's appointment was booked or cancelled.".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn claude_fills_the_tenant_schema() {
    let s = sim().await;
    let (a, usage) = analyzer(&s).analyze(&call(), &spec()).await.unwrap();
    assert_eq!(a.extraction["outcome"], "cancelled");
    assert_eq!(a.extraction["appointment_time"], "3 pm");
    assert!(!a.summary.is_empty() && !a.success_reason.is_empty());
    assert_eq!(a.analyzer, "anthropic:claude-haiku-4-5");
    assert!(usage.unwrap().input_tokens > 0);
    assert_eq!(s.faults.stats().requests, 1);
}

#[tokio::test]
async fn output_that_breaks_the_schema_is_sent_back_and_repaired() {
    let s = sim().await;
    s.faults.inject(Fault::InvalidOutput, 1);
    let (a, _) = analyzer(&s).analyze(&call(), &spec()).await.unwrap();
    assert_eq!(a.extraction["outcome"], "cancelled");
    assert_eq!(s.faults.stats().requests, 2, "one repair round");
}

#[tokio::test]
async fn output_that_stays_broken_is_a_clear_error() {
    let s = sim().await;
    s.faults.inject(Fault::InvalidOutput, 10);
    let e = analyzer(&s).analyze(&call(), &spec()).await.unwrap_err();
    let AnalysisError::Failed(msg) = &e else { panic!("not a permanent failure: {e}") };
    assert!(msg.contains("after 3 attempts") && msg.contains("summary"), "{msg}");
    assert_eq!(s.faults.stats().requests, 3);
}

#[tokio::test]
async fn outages_are_transient_and_a_cut_stream_is_retried() {
    let s = sim().await;
    s.faults.inject(Fault::Overloaded, 10);
    let e = analyzer(&s).analyze(&call(), &spec()).await.unwrap_err();
    assert!(matches!(e, AnalysisError::Transient(_)), "{e}");
    s.faults.clear();
    s.faults.inject(Fault::DropMidStream, 1);
    let before = s.faults.stats().requests;
    assert!(analyzer(&s).analyze(&call(), &spec()).await.is_ok(), "a cut stream is asked again");
    assert_eq!(s.faults.stats().requests - before, 2);
}

#[tokio::test]
async fn a_wrong_key_is_a_permanent_failure() {
    let s = sim().await;
    let client = AnthropicClient::offline(Endpoint::new(s.url(), Secret::new("wrong")));
    let e = ClaudeAnalyzer::new(client, "claude-haiku-4-5").analyze(&call(), &spec()).await.unwrap_err();
    assert!(matches!(&e, AnalysisError::Failed(m) if m.contains("401")), "{e}");
}
