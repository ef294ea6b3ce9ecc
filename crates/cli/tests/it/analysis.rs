//! Post-call analysis end to end: a real call through the fake carrier is analyzed off the
//! call path (local analyzer, the clinic rule-book), stored on the call, served by the API and
//! delivered by a signed `call.analyzed` webhook; a Claude analysis on the simulator survives
//! an outage through the queue's retries; a call is never analyzed twice.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use callfunnel_ai::cloud::StaticSecrets;
use callfunnel_control::webhooks::sign;
use callfunnel_data::TimelineEvent;
use callfunnel_sim::{Fault, Provider, SimConfig};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::telephony::{authed_client, rig_with, Rig};


/// An agents directory: the clinic rule-book (with its `[analysis]` table), and `concierge`,
/// an LLM agent analyzed by Claude.
fn agents_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cf-an-agents-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let clinic = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../agents/clinic.toml")).unwrap();
    assert!(clinic.contains("[analysis.schema]"), "the example agent defines its analysis");
    std::fs::write(dir.join("clinic.toml"), clinic).unwrap();
    std::fs::write(
        dir.join("concierge.toml"),
        "system_prompt = \"You are a clinic receptionist.\"\n[analysis]\nsuccess = \"An appointment was cancelled.\"\n[analysis.schema]\ntype = \"object\"\nrequired = [\"outcome\"]\n[analysis.schema.properties.outcome]\nenum = [\"booked\", \"cancelled\", \"other\"]\n",
    )
    .unwrap();
    dir
}

/// A server whose agents are `agents_dir(name)` and whose Claude is the simulator at `url`;
/// returns the rig and the agents directory (for the test to remove).
async fn claude_rig(name: &str, url: String, tweak: impl FnOnce(&mut callfunnel_control::config::Config)) -> (Rig, std::path::PathBuf) {
    let agents = agents_dir(name);
    let secrets = StaticSecrets::default().with("twilio_auth_token", crate::telephony::TOKEN).with("anthropic", "sim-key");
    let dir = agents.clone();
    let rig = rig_with(
        &format!("analysis-{name}"),
        |c| {
            c.agents.dir = dir;
            c.providers.anthropic.url = url;
            tweak(c);
        },
        secrets,
        Default::default(),
    )
    .await;
    (rig, agents)
}

async fn receiver() -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: HeaderMap, body: Bytes| {
            let g = g.clone();
            async move { g.lock().push((h, body)) }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got)
}

async fn analysis_done(http: &reqwest::Client, base: &str, call_id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = http.get(format!("{base}/v1/calls/{call_id}/analysis")).send().await.unwrap().json().await.unwrap();
        if last["status"] != "pending" {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("analysis of {call_id} still pending: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_call_is_analyzed_stored_and_announced() {
    let agents = agents_dir("call");
    let secrets = StaticSecrets::default().with("twilio_auth_token", crate::telephony::TOKEN);
    let rig = rig_with(
        "analysis",
        |c| {
            c.agents.dir = agents.clone();
            c.tools.allow_http = true;
            c.tools.allow_networks = vec!["127.0.0.1/32".into()];
        },
        secrets,
        Default::default(),
    )
    .await;
    let (url, got) = receiver().await;
    let hook: Value = rig.http.post(format!("{}/v1/webhooks", rig.base)).json(&json!({"url": url, "events": ["call.analyzed"]})).send().await.unwrap().json().await.unwrap();
    let secret = hook["secret"].as_str().unwrap().to_string();

    let placed = rig.place(json!({"to": "+15550001"})).await;
    let id = placed["call_id"].as_str().unwrap().to_string();
    rig.ended(&id).await;
    let a = analysis_done(&rig.http, &rig.base, &id).await;
    assert_eq!((a["status"].as_str(), a["analyzer"].as_str()), (Some("done"), Some("local")), "{a}");
    let summary = a["summary"].as_str().unwrap();
    assert!(summary.contains("The caller said") && summary.contains("ended (agent ended)"), "{summary}");
    assert!(["positive", "neutral", "negative"].contains(&a["extraction"]["sentiment"].as_str().unwrap()), "{a}");
    assert_eq!(a["extraction"]["appointment_time"], Value::Null, "the caller named no time: {a}");
    assert!(a["success"].is_boolean() && a["success_reason"].as_str().is_some_and(|r| !r.is_empty()), "{a}");
    // the call's detail carries it too
    let detail: Value = rig.http.get(format!("{}/v1/calls/{id}", rig.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(detail["analysis"], a);

    // the signed webhook
    let mut hits = Vec::new();
    for _ in 0..100 {
        hits = got.lock().clone();
        if !hits.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hits.len(), 1, "one call.analyzed");
    let (h, body) = &hits[0];
    sign::verify(&secret, h[sign::HEADER].to_str().unwrap(), body, chrono::Utc::now().timestamp(), 300).expect("signed");
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!((payload["event"].as_str(), payload["data"]["call_id"].as_str(), payload["data"]["summary"].as_str()), (Some("call.analyzed"), Some(id.as_str()), Some(summary)));

    // queued again (a retry, a restart): not analyzed twice
    rig.server.state.calls.post_call.enqueue(&rig.server.state.config.agents.default_tenant, &id, "clinic").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let detail: Value = rig.http.get(format!("{}/v1/calls/{id}", rig.base)).send().await.unwrap().json().await.unwrap();
    let n = detail["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "call_analyzed").count();
    assert_eq!((n, got.lock().len()), (1, 1));
    // a call that ended while no queue was there (a restart) is found by the sweep
    let tenant = rig.server.state.config.agents.default_tenant.clone();
    let now = chrono::Utc::now().timestamp_millis() as u64;
    let ev = |at: u64, kind: &str, data: Value| TimelineEvent::new(at, now + at, kind, data);
    let lost = [
        ev(0, "call_started", json!({"agent_id": "clinic"})),
        ev(900, "transcript", json!({"text": "What are your opening hours?"})),
        ev(1500, "intent", json!({"name": "hours", "score": 0.9})),
        ev(3000, "call_ended", json!({"end": "caller_hung_up"})),
    ];
    rig.server.state.stores.timeline.append(&tenant, "c-lost-1", &lost).await.unwrap();
    for _ in 0..100 {
        // the write buffer ships it to the store (the call list reads the store)
        if rig.server.state.stores.timeline.calls(&tenant, 50).await.unwrap().iter().any(|c| c.call_id == "c-lost-1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rig.server.state.calls.post_call.sweep().await, 1, "only the unanalyzed call");
    let a = analysis_done(&rig.http, &rig.base, "c-lost-1").await;
    assert_eq!((a["status"].as_str(), a["success"].as_bool(), a["extraction"]["outcome"].as_str()), (Some("done"), Some(true), Some("hours")), "{a}");
    assert_eq!(rig.server.state.calls.post_call.sweep().await, 0);
    // another tenant cannot read it
    let other = rig.server.state.auth.dev.as_ref().unwrap().token("test", Some("globex"), &["tenant-admin"], &rig.server.state.config.auth.audience, 600);
    rig.server.state.stores.control.ensure_tenant("globex", "Globex").await.unwrap();
    let r = reqwest::Client::new().get(format!("{}/v1/calls/{id}/analysis", rig.base)).bearer_auth(other).send().await.unwrap();
    assert_eq!(r.status(), 404);
    rig.done();
    let _ = std::fs::remove_dir_all(agents);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_analysis_outlasts_an_outage_through_the_queue() {
    let sim = callfunnel_sim::start(Provider::Anthropic, ([127, 0, 0, 1], 0).into(), SimConfig::default()).await.unwrap();
    // the first attempt's request and both its retries are refused; the queue tries again later
    sim.faults.inject(Fault::Overloaded, 3);
    sim.faults.inject(Fault::InvalidOutput, 1);
    let (rig, agents) = claude_rig("claude", sim.url(), |_| {}).await;
    let st = &rig.server.state;
    let tenant = st.config.agents.default_tenant.clone();
    let ev = |at: u64, kind: &str, data: Value| TimelineEvent::new(at, chrono::Utc::now().timestamp_millis() as u64, kind, data);
    let events = [
        ev(0, "call_started", json!({})),
        ev(500, "agent_said", json!({"turn": 1, "text": "Hello, how can I help?", "interrupted": false})),
        ev(2000, "transcript", json!({"text": "Please cancel my appointment on Friday."})),
        ev(3000, "agent_said", json!({"turn": 2, "text": "It is cancelled.", "interrupted": false})),
        ev(4000, "call_ended", json!({"end": "caller_hung_up"})),
    ];
    st.stores.timeline.append(&tenant, "c-claude-1", &events).await.unwrap();
    st.calls.post_call.enqueue(&tenant, "c-claude-1", "concierge").await;
    let http = authed_client(&rig.server, "viewer");
    let a = analysis_done(&http, &rig.base, "c-claude-1").await;
    assert_eq!((a["status"].as_str(), a["analyzer"].as_str(), a["extraction"]["outcome"].as_str()), (Some("done"), Some("anthropic:claude-haiku-4-5"), Some("cancelled")), "{a}");
    let tl: Value = http.get(format!("{}/v1/calls/c-claude-1", rig.base)).send().await.unwrap().json().await.unwrap();
    let done = tl["events"].as_array().unwrap().iter().find(|e| e["kind"] == "call_analyzed").unwrap().clone();
    // the outage costs a hand-out (one more if the job came before the events were readable)
    assert!(done["data"]["attempts"].as_u64().is_some_and(|n| n >= 2), "a later hand-out succeeded: {done}");
    assert!(done["data"]["usage"]["input_tokens"].as_u64().unwrap() > 0);
    // 3 refused + 1 invalid + 1 repaired
    assert_eq!(sim.faults.stats().requests, 5);

    // a call that cannot be analyzed (no key for the tenant's analyzer) fails clearly, once
    st.stores.timeline.append("globex", "c-claude-2", &events).await.unwrap();
    st.calls.post_call.enqueue("globex", "c-claude-2", "nobody").await;
    st.stores.control.ensure_tenant("globex", "Globex").await.unwrap();
    let g = st.auth.dev.as_ref().unwrap().token("test", Some("globex"), &["viewer"], &st.config.auth.audience, 600);
    let mut a = Value::Null;
    for _ in 0..100 {
        a = reqwest::Client::new().get(format!("{}/v1/calls/c-claude-2/analysis", rig.base)).bearer_auth(&g).send().await.unwrap().json().await.unwrap();
        if a["status"] != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(a["status"], "failed", "{a}");
    assert!(a["error"].as_str().unwrap().contains("unknown agent `nobody`"), "{a}");
    rig.done();
    let _ = std::fs::remove_dir_all(agents);
}

/// Analyses run side by side, up to `[analysis] concurrency`: each waits on its LLM (400 ms on
/// the simulator here), and one at a time could not keep up with a node ending calls every
/// few tens of milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyses_run_side_by_side_up_to_the_configured_concurrency() {
    let latency = callfunnel_sim::Latency { llm_first_token_ms: 400, ..Default::default() };
    let sim = callfunnel_sim::start(Provider::Anthropic, ([127, 0, 0, 1], 0).into(), SimConfig { latency, ..SimConfig::default() }).await.unwrap();
    let (rig, agents) = claude_rig("side", sim.url(), |c| c.analysis.concurrency = 4).await;
    let st = &rig.server.state;
    let tenant = st.config.agents.default_tenant.clone();
    let ev = |at: u64, kind: &str, data: Value| TimelineEvent::new(at, chrono::Utc::now().timestamp_millis() as u64, kind, data);
    let ids: Vec<String> = (0..6).map(|i| format!("c-side-{i}")).collect();
    for id in &ids {
        let events = [
            ev(0, "call_started", json!({})),
            ev(800, "transcript", json!({"text": "Please cancel my appointment."})),
            ev(1500, "agent_said", json!({"turn": 1, "text": "It is cancelled.", "interrupted": false})),
            ev(2000, "call_ended", json!({"end": "caller_hung_up"})),
        ];
        st.stores.timeline.append(&tenant, id, &events).await.unwrap();
    }
    for id in &ids {
        st.calls.post_call.enqueue(&tenant, id, "concierge").await;
    }
    let http = authed_client(&rig.server, "viewer");
    for id in &ids {
        let a = analysis_done(&http, &rig.base, id).await;
        assert_eq!(a["status"], "done", "{a}");
    }
    // each analysis's span, from its `call_analyzed` event: when it was stored, less how long
    // the analyzer took
    let mut spans = Vec::new();
    for id in &ids {
        let tl: Value = http.get(format!("{}/v1/calls/{id}", rig.base)).send().await.unwrap().json().await.unwrap();
        let done = tl["events"].as_array().unwrap().iter().find(|e| e["kind"] == "call_analyzed").unwrap().clone();
        let end = done["unix_ms"].as_u64().unwrap();
        let took = done["data"]["analysis_ms"].as_u64().unwrap();
        assert!(took >= 400, "the simulator's latency: {done}");
        spans.push((end - took, end));
    }
    let most_at_once = spans.iter().map(|(start, _)| spans.iter().filter(|(s, e)| s <= start && start < e).count()).max().unwrap();
    assert!((2..=4).contains(&most_at_once), "analyses at once: {most_at_once} ({spans:?})");
    assert_eq!(sim.faults.stats().requests, 6);
    rig.done();
    let _ = std::fs::remove_dir_all(agents);
}
