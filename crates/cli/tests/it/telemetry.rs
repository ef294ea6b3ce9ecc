//! OTLP traces of a real call, received by a collector stand-in that decodes the export with the
//! OpenTelemetry protocol's own messages (opentelemetry-proto): one trace per call, a `call`
//! span, a `turn` span per answered turn under it, and the five stage spans under each turn, in
//! order and inside their turn.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use callfunnel_control::telemetry::{Telemetry, TelemetryConfig};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use parking_lot::Mutex;
use prost::Message;
use serde_json::json;

use crate::telephony::rig;

#[derive(Default)]
struct Collector {
    spans: Mutex<Vec<(Span, HashMap<String, String>)>>,
    content_types: Mutex<Vec<String>>,
}

fn attrs(kv: &[KeyValue]) -> HashMap<String, String> {
    kv.iter()
        .map(|a| {
            let v = match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::IntValue(i)) => i.to_string(),
                Some(any_value::Value::DoubleValue(d)) => d.to_string(),
                Some(any_value::Value::BoolValue(b)) => b.to_string(),
                other => format!("{other:?}"),
            };
            (a.key.clone(), v)
        })
        .collect()
}

async fn receive(State(c): State<Arc<Collector>>, headers: HeaderMap, body: Bytes) -> (HeaderMap, Vec<u8>) {
    c.content_types.lock().push(headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string());
    let req = ExportTraceServiceRequest::decode(body).expect("an OTLP ExportTraceServiceRequest");
    for rs in req.resource_spans {
        let resource = attrs(&rs.resource.map(|r| r.attributes).unwrap_or_default());
        for ss in rs.scope_spans {
            for s in ss.spans {
                c.spans.lock().push((s, resource.clone()));
            }
        }
    }
    let mut h = HeaderMap::new();
    h.insert("content-type", "application/x-protobuf".parse().unwrap());
    (h, ExportTraceServiceResponse::default().encode_to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_one_trace_with_a_span_per_turn_and_per_stage() {
    let collector = Arc::new(Collector::default());
    let app = axum::Router::new().route("/v1/traces", axum::routing::post(receive)).with_state(collector.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let cfg = TelemetryConfig { otlp_endpoint: Some(endpoint), export_interval_ms: 200, ..Default::default() };
    let telemetry = Arc::new(Telemetry::install(&cfg, "trace-node").unwrap().expect("tracing is on"));

    let rig = rig("otlp", |_| {}).await;
    let placed = rig.place(json!({"to": "+15550001"})).await;
    let id = placed["call_id"].as_str().unwrap().to_string();
    let ev = rig.ended(&id).await;
    let latencies: Vec<&serde_json::Value> = ev.iter().filter(|e| e["kind"] == "turn_latency").collect();
    assert!(!latencies.is_empty(), "the call had answered turns");
    let t = telemetry.clone();
    tokio::task::spawn_blocking(move || t.flush()).await.unwrap();

    // the timeline names the call's trace
    let started = ev.iter().find(|e| e["kind"] == "call_started").unwrap();
    let trace_hex = started["data"]["trace_id"].as_str().expect("a traced call names its trace").to_string();
    let want: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&trace_hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = collector.spans.lock().iter().filter(|(s, _)| s.trace_id == want).cloned().collect::<Vec<_>>();
        if spans.iter().any(|(s, _)| s.name == "call") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(collector.content_types.lock().iter().all(|c| c == "application/x-protobuf"), "OTLP/HTTP protobuf");
    let calls: Vec<_> = spans.iter().filter(|(s, _)| s.name == "call").collect();
    assert_eq!(calls.len(), 1, "one call span: {:?}", spans.iter().map(|(s, _)| &s.name).collect::<Vec<_>>());
    let (call, resource) = calls[0];
    assert_eq!((resource["service.name"].as_str(), resource["service.instance.id"].as_str()), ("callfunnel", "trace-node"));
    let ca = attrs(&call.attributes);
    // how the call ended, as the timeline says (the agent says goodbye and hangs up; on a loaded
    // box the scripted caller can hang up first, which this test is not about)
    let ended = ev.iter().find(|e| e["kind"] == "call_ended").expect("the call ended");
    let end = ended["data"]["end"].as_str().unwrap();
    assert!(["agent_ended", "caller_hung_up"].contains(&end), "{ended}");
    assert_eq!((ca["call.id"].as_str(), ca["call.end"].as_str()), (id.as_str(), end));
    assert!(call.parent_span_id.is_empty(), "the call span is the root");

    let turns: Vec<&Span> = spans.iter().map(|(s, _)| s).filter(|s| s.name == "turn").collect();
    assert_eq!(turns.len(), latencies.len(), "a span per answered turn");
    assert_eq!(ca["call.turns"], turns.len().to_string());
    let stages = ["end_of_turn", "stt", "brain_first_token", "tts_first_audio", "send"];
    for turn in &turns {
        assert_eq!(turn.parent_span_id, call.span_id, "a turn hangs under its call");
        assert!(call.start_time_unix_nano <= turn.start_time_unix_nano && turn.end_time_unix_nano <= call.end_time_unix_nano, "the turn lies inside the call");
        let n = attrs(&turn.attributes)["turn"].clone();
        let logged = latencies.iter().find(|l| l["data"]["turn"].to_string() == n).expect("the turn is in the timeline");
        let mut children: Vec<&Span> = spans.iter().map(|(s, _)| s).filter(|s| s.parent_span_id == turn.span_id).collect();
        children.sort_by_key(|s| s.start_time_unix_nano);
        assert_eq!(children.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), stages, "turn {n}");
        assert_eq!(children[0].start_time_unix_nano, turn.start_time_unix_nano);
        assert_eq!(children[4].end_time_unix_nano, turn.end_time_unix_nano);
        for w in children.windows(2) {
            assert_eq!(w[0].end_time_unix_nano, w[1].start_time_unix_nano, "stages follow each other");
        }
        // the spans say what the timeline says (to a millisecond), except where the caller began
        // speaking before the engine started (its frames waited for it): spans nest in their
        // call, so such a turn starts with the call
        let total_ms = (turn.end_time_unix_nano - turn.start_time_unix_nano) as f64 / 1e6;
        if turn.start_time_unix_nano > call.start_time_unix_nano {
            assert!((total_ms - logged["data"]["latency_ms"]["total"].as_f64().unwrap()).abs() < 1.0, "{total_ms} vs {logged}");
        } else {
            assert!(total_ms <= logged["data"]["latency_ms"]["total"].as_f64().unwrap() + 1.0, "clamped to the call's start: {total_ms} vs {logged}");
        }
        let stt_ms = (children[1].end_time_unix_nano - children[1].start_time_unix_nano) as f64 / 1e6;
        assert!((stt_ms - logged["data"]["latency_ms"]["stt"].as_f64().unwrap()).abs() < 1.0);
    }
    rig.done();
}
