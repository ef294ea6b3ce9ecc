//! The control plane on the embedded stores: tenant webhooks (signed, retried, logged), plan
//! limits at admission, idempotency keys, coded errors and the OpenAPI document.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use callfunnel_control::webhooks::sign;
use callfunnel_control::{Config, Server};
use callfunnel_data::control::{Metric, Plan, UsageRecord};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

async fn start(name: &str, tweak: impl FnOnce(&mut Config)) -> (Server, CancellationToken, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("cf-cp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = Config::default();
    cfg.server.listen = ([127, 0, 0, 1], 0).into();
    cfg.server.preload_models = false;
    cfg.data.dir = dir.clone();
    cfg.data.timeline = "memory".into();
    tweak(&mut cfg);
    let stop = CancellationToken::new();
    (Server::start(cfg, stop.clone()).await.unwrap(), stop, dir)
}

fn token(s: &Server, tenant: &str, role: &str) -> String {
    s.state.auth.dev.as_ref().unwrap().token("test", Some(tenant), &[role], &s.state.config.auth.audience, 600)
}

#[derive(Default)]
struct Received {
    hits: Vec<(HeaderMap, Bytes)>,
}

/// A webhook receiver on loopback: answers 500 to the first delivery, then 200.
async fn receiver() -> (String, Arc<Mutex<Received>>) {
    let got = Arc::new(Mutex::new(Received::default()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: HeaderMap, body: Bytes| {
            let g = g.clone();
            async move {
                let mut r = g.lock();
                r.hits.push((h, body));
                if r.hits.len() == 1 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_and_logged() {
    let (s, stop, dir) = start("hooks", |c| {
        c.tools.allow_http = true;
        c.tools.allow_networks = vec!["127.0.0.1/32".into()];
    })
    .await;
    let base = format!("http://{}", s.addr);
    let http = reqwest::Client::new();
    s.state.stores.control.ensure_tenant("hooks", "Hooks").await.unwrap();
    s.state.stores.control.ensure_tenant("other", "Other").await.unwrap();
    let admin = token(&s, "hooks", "tenant-admin");
    let (url, got) = receiver().await;
    let r: Value = http.post(format!("{base}/v1/webhooks")).bearer_auth(&admin).json(&json!({"url": url, "events": ["call.ended"]})).send().await.unwrap().json().await.unwrap();
    let (id, secret) = (r["id"].as_str().unwrap().to_string(), r["secret"].as_str().unwrap().to_string());
    // bad input: unknown event, private address without the allowance is covered by the guard tests
    let bad = http.post(format!("{base}/v1/webhooks")).bearer_auth(&admin).json(&json!({"url": url, "events": ["call.exploded"]})).send().await.unwrap();
    assert_eq!((bad.status().as_u16(), bad.json::<Value>().await.unwrap()["code"].as_str().map(str::to_string)), (400, Some("invalid_event".into())));

    s.state.webhooks.emit("hooks", "call.started", json!({"call_id": "c-1"})).await; // not subscribed
    s.state.webhooks.emit("hooks", "call.ended", json!({"call_id": "c-1", "duration_ms": 1234})).await;
    let mut log = Value::Null;
    for _ in 0..100 {
        log = http.get(format!("{base}/v1/webhooks/deliveries?webhook_id={id}")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
        if log["data"][0]["status"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let d = &log["data"][0];
    assert_eq!((d["status"].as_str(), d["attempts"].as_i64(), d["response_status"].as_i64(), d["event"].as_str()), (Some("delivered"), Some(2), Some(200), Some("call.ended")), "{log}");
    assert_eq!(log["data"].as_array().unwrap().len(), 1, "only the subscribed event: {log}");
    let hits = std::mem::take(&mut got.lock().hits);
    assert_eq!(hits.len(), 2, "a 500 is retried");
    let now = chrono::Utc::now().timestamp();
    for (h, body) in &hits {
        let sig = h[sign::HEADER].to_str().unwrap();
        sign::verify(&secret, sig, body, now, 300).expect("the receiver verifies the signature");
        assert!(sign::verify("whsec_not_the_secret_0000", sig, body, now, 300).is_err());
        assert_eq!(h["callfunnel-event"], "call.ended");
        assert_eq!(h["callfunnel-delivery"].to_str().unwrap(), d["id"].as_str().unwrap(), "receivers dedupe on the delivery id");
        let payload: Value = serde_json::from_slice(body).unwrap();
        assert_eq!((payload["event"].as_str(), payload["tenant_id"].as_str(), payload["data"]["duration_ms"].as_i64()), (Some("call.ended"), Some("hooks"), Some(1234)));
    }
    // another tenant sees none of it
    let other = token(&s, "other", "tenant-admin");
    let log: Value = http.get(format!("{base}/v1/webhooks/deliveries")).bearer_auth(&other).send().await.unwrap().json().await.unwrap();
    assert_eq!(log["data"].as_array().unwrap().len(), 0);
    stop.cancel();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_limits_refuse_new_calls_and_idempotency_keys_replay() {
    let (s, stop, dir) = start("plans", |c| {
        c.numbers = vec![];
    })
    .await;
    let base = format!("http://{}", s.addr);
    let http = reqwest::Client::new();
    let control = s.state.stores.control.clone();
    let plan = |max: Option<u32>, minutes: Option<u32>, providers: Option<Vec<&str>>| Plan { max_concurrent_calls: max, monthly_minutes: minutes, retention_days: 30, allowed_providers: providers.map(|p| p.into_iter().map(String::from).collect()) };
    control.ensure_tenant("lim", "Limited").await.unwrap();
    control.create_agent("lim", "clinic", "Clinic").await.unwrap();
    let ed = token(&s, "lim", "editor");
    let place = |key: Option<&'static str>, to: &'static str| {
        let (http, base, ed) = (http.clone(), base.clone(), ed.clone());
        async move {
            let mut r = http.post(format!("{base}/v1/calls")).bearer_auth(ed).json(&json!({"to": to, "agent_id": "clinic"}));
            if let Some(k) = key {
                r = r.header("idempotency-key", k);
            }
            let r = r.send().await.unwrap();
            let replayed = r.headers().get("idempotent-replayed").is_some();
            (r.status().as_u16(), replayed, r.json::<Value>().await.unwrap())
        }
    };
    // concurrency 0: refused at admission, before any carrier is asked
    control.set_plan("lim", plan(Some(0), None, None)).await.unwrap();
    let (st, _, v) = place(None, "+15550100001").await;
    assert_eq!((st, v["code"].as_str()), (429, Some("concurrent_call_limit")), "{v}");
    // minutes used up this month
    control.set_plan("lim", plan(None, Some(1), None)).await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    control.record_usage(UsageRecord { tenant_id: "lim".into(), call_id: "old".into(), idempotency_key: "old:call_ms".into(), metric: Metric::CallMs, provider: "twilio".into(), quantity: 61_000, at_unix_ms: now - 1000 }).await.unwrap();
    let (st, _, v) = place(None, "+15550100001").await;
    assert_eq!((st, v["code"].as_str()), (402, Some("monthly_minutes_exhausted")), "{v}");
    // a provider outside the plan (the clinic rule-book uses the on-box models: `local`)
    control.set_plan("lim", plan(None, None, Some(vec!["deepgram", "anthropic", "cartesia"]))).await.unwrap();
    let (st, _, v) = place(None, "+15550100001").await;
    assert_eq!((st, v["code"].as_str()), (402, Some("provider_not_allowed")), "{v}");
    // inbound: the caller hears the refusal, then the line is hung up
    control.assign_number("lim", "+15550177001", "clinic").await.unwrap();
    let xml = http.post(format!("{base}/twilio/voice")).header("content-type", "application/x-www-form-urlencoded").body("CallSid=CAlim1&From=%2B15550111&To=%2B15550177001").send().await.unwrap().text().await.unwrap();
    assert!(xml.contains("<Say>Sorry, we cannot take your call right now") && xml.contains("<Hangup/>") && !xml.contains("<Stream"), "{xml}");
    let tl: Value = http.get(format!("{base}/v1/calls/CAlim1")).bearer_auth(&ed).send().await.unwrap().json().await.unwrap();
    assert_eq!(tl["events"][0]["data"]["code"], "provider_not_allowed", "{tl}");

    // Idempotency: within the plan, the carrier is not configured here (409); the same key and
    // body replay that answer; the same key with another body is refused.
    control.set_plan("lim", plan(None, None, None)).await.unwrap();
    let (st, replayed, first) = place(Some("k-1"), "+15550100001").await;
    assert_eq!((st, replayed, first["code"].as_str()), (409, false, Some("carrier_not_configured")), "{first}");
    let (st, replayed, again) = place(Some("k-1"), "+15550100001").await;
    assert_eq!((st, replayed, &again), (409, true, &first));
    let (st, _, v) = place(Some("k-1"), "+15550100002").await;
    assert_eq!((st, v["code"].as_str()), (422, Some("idempotency_key_reused")), "{v}");
    // the admission lease of a call that never got placed is given back
    assert_eq!(s.state.stores.hot.active_calls_tenant("lim").await.unwrap(), 0);
    stop.cancel();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_openapi_document_covers_every_route_with_coded_errors() {
    let (s, stop, dir) = start("openapi", |_| {}).await;
    let base = format!("http://{}", s.addr);
    let doc: Value = reqwest::get(format!("{base}/v1/openapi.json")).await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    for p in ["/v1/calls", "/v1/calls/{call_id}", "/v1/calls/{call_id}/recording", "/v1/calls/{call_id}/hangup", "/v1/calls/live", "/v1/agents/{agent_id}/versions", "/v1/numbers/{number}", "/v1/knowledge-bases/{kb_id}/documents", "/v1/campaigns/{campaign_id}/pause", "/v1/usage", "/v1/invoices/{period}", "/v1/webhooks/deliveries", "/v1/api-keys", "/v1/tenants/{tenant_id}/plan"] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["components"]["schemas"]["ErrorBody"]["properties"]["code"].is_object());
    // every operation the router serves is in the document (and the reverse): probe each one
    let http = reqwest::Client::new();
    for (path, ops) in paths {
        for m in ops.as_object().unwrap().keys() {
            let url = format!("{base}{}", path.replace('{', "x").replace('}', ""));
            let r = http.request(m.to_uppercase().parse().unwrap(), &url).send().await.unwrap();
            assert_eq!(r.status(), 401, "{m} {path}: documented routes exist and need a token");
            assert_eq!(r.json::<Value>().await.unwrap()["code"], "missing_credentials");
        }
    }
    // malformed JSON is a coded 400, not a plain-text rejection
    let t = token(&s, "nobody", "tenant-admin");
    let r = http.get(format!("{base}/v1/agents")).bearer_auth(&t).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.json::<Value>().await.unwrap()["code"].as_str().map(str::to_string)), (404, Some("tenant_not_found".into())));
    s.state.stores.control.ensure_tenant("t1", "T1").await.unwrap();
    let t = token(&s, "t1", "tenant-admin");
    let r = http.post(format!("{base}/v1/agents")).bearer_auth(&t).header("content-type", "application/json").body("{nope").send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.json::<Value>().await.unwrap()["code"].as_str().map(str::to_string)), (400, Some("invalid_body".into())));
    let r = http.post(format!("{base}/v1/agents")).bearer_auth(&t).json(&json!({"id": "a", "name": "A", "extra": 1})).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_body", "unknown fields are refused");
    stop.cancel();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_usage_invoices_pages_and_webhook_urls() {
    let (s, stop, dir) = start("camp", |_| {}).await;
    let base = format!("http://{}", s.addr);
    let http = reqwest::Client::new();
    let control = s.state.stores.control.clone();
    control.ensure_tenant("cp", "Campaigner").await.unwrap();
    control.create_agent("cp", "clinic", "Clinic").await.unwrap();
    let t = token(&s, "cp", "tenant-admin");
    let call = |m: reqwest::Method, path: String, body: Option<Value>| {
        let (http, base, t) = (http.clone(), base.clone(), t.clone());
        async move {
            let mut r = http.request(m, format!("{base}{path}")).bearer_auth(t);
            if let Some(b) = body {
                r = r.json(&b);
            }
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // a window that is closed now (two hours ahead, in UTC): nothing is dialled meanwhile
    let h = (chrono::Utc::now() + chrono::Duration::hours(2)).format("%H:00").to_string();
    let h2 = (chrono::Utc::now() + chrono::Duration::hours(3)).format("%H:00").to_string();
    let settings = json!({"window": {"start": h, "end": h2, "timezone": "UTC"}, "concurrency": 3, "max_attempts": 2});
    let (st, v) = call(reqwest::Method::POST, "/v1/campaigns".into(), Some(json!({"id": "c1", "name": "C", "agent_id": "clinic", "settings": settings, "contacts": [{"number": "+15550100101", "variables": {"name": "Ana"}}]}))).await;
    assert_eq!((st, v["status"].as_str(), v["progress"]["pending"].as_i64()), (201, Some("draft"), Some(1)), "{v}");
    for (bad, code) in [
        (json!({"id": "c2", "name": "C", "agent_id": "nobody", "settings": settings}), "agent_not_found"),
        (json!({"id": "c2", "name": "C", "agent_id": "clinic", "settings": {"window": {"start": "9", "end": "17:00", "timezone": "UTC"}}}), "invalid_settings"),
        (json!({"id": "c2", "name": "C", "agent_id": "clinic", "settings": {"window": {"start": "09:00", "end": "17:00", "timezone": "Nowhere/City"}}}), "invalid_settings"),
        (json!({"id": "c2", "name": "C", "agent_id": "clinic", "settings": settings, "contacts": [{"number": "call me maybe"}]}), "invalid_number"),
    ] {
        let (st, v) = call(reqwest::Method::POST, "/v1/campaigns".into(), Some(bad)).await;
        assert_eq!(v["code"].as_str(), Some(code), "{st} {v}");
    }
    let step = |action: &'static str| call(reqwest::Method::POST, format!("/v1/campaigns/c1/{action}"), None);
    let (st, v) = step("pause").await;
    assert_eq!((st, v["code"].as_str()), (409, Some("invalid_campaign_state")), "a draft cannot pause");
    assert_eq!(step("start").await.1["status"], "running");
    assert_eq!(step("pause").await.1["status"], "paused");
    assert_eq!(step("resume").await.1["status"], "running");
    let (st, v) = call(reqwest::Method::POST, "/v1/campaigns/c1/contacts".into(), Some(json!([{"number": "+15550100102"}, {"number": "+15550100103", "variables": {"name": "Bo"}}]))).await;
    assert_eq!((st, v["added"].as_u64()), (200, Some(2)));
    let (_, page) = call(reqwest::Method::GET, "/v1/campaigns/c1/contacts?limit=2".into(), None).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let after = page["next_cursor"].as_str().unwrap().to_string();
    let (_, rest) = call(reqwest::Method::GET, format!("/v1/campaigns/c1/contacts?limit=2&after={after}"), None).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1, "{rest}");
    tokio::time::sleep(Duration::from_millis(2500)).await; // a dialer tick: the window is closed
    let (_, c) = call(reqwest::Method::GET, "/v1/campaigns/c1".into(), None).await;
    assert_eq!((c["progress"]["pending"].as_i64(), c["progress"]["attempts"].as_i64()), (Some(3), Some(0)), "{c}");
    assert_eq!(step("cancel").await.1["status"], "cancelled");
    assert_eq!(step("resume").await.0, 409);

    // usage and invoices
    let now = chrono::Utc::now();
    control.record_usage(UsageRecord { tenant_id: "cp".into(), call_id: "x".into(), idempotency_key: "x:call_ms".into(), metric: Metric::CallMs, provider: "twilio".into(), quantity: 90_000, at_unix_ms: now.timestamp_millis() - 10 }).await.unwrap();
    let (_, u) = call(reqwest::Method::GET, "/v1/usage".into(), None).await;
    assert_eq!(u["lines"][0]["metric"], "call_ms", "{u}");
    assert_eq!(u["lines"][0]["quantity"], 90_000, "{u}");
    let day_ms = 86_400_000;
    let today = now.timestamp_millis() / day_ms * day_ms;
    let (st, d) = call(reqwest::Method::GET, format!("/v1/usage?group_by=day&from_ms={}", today - 3 * day_ms), None).await;
    assert_eq!((st, d["lines"].as_array().map(Vec::len)), (200, Some(1)), "{d}");
    assert_eq!((d["lines"][0]["day_start_ms"].as_i64(), d["lines"][0]["quantity"].as_i64()), (Some(today), Some(90_000)), "{d}");
    assert!(u["lines"][0].get("day_start_ms").is_none(), "totals carry no day");
    let (st, e) = call(reqwest::Method::GET, "/v1/usage?group_by=week".into(), None).await;
    assert_eq!((st, e["code"].as_str()), (400, Some("invalid_group_by")));
    let (st, e) = call(reqwest::Method::GET, format!("/v1/usage?group_by=day&from_ms=0&to_ms={}", 400 * day_ms), None).await;
    assert_eq!((st, e["code"].as_str()), (400, Some("invalid_range")));
    let (st, v) = call(reqwest::Method::GET, format!("/v1/invoices/{}", now.format("%Y-%m")), None).await;
    assert_eq!((st, v["code"].as_str()), (409, Some("period_open")));
    let (st, inv) = call(reqwest::Method::GET, "/v1/invoices/2020-01".into(), None).await;
    assert_eq!((st, inv["period"].as_str(), inv["total_micros"].as_i64()), (200, Some("2020-01"), Some(0)), "{inv}");
    assert_eq!(call(reqwest::Method::GET, "/v1/invoices/2020-01".into(), None).await.1["id"], inv["id"], "issued once");
    assert_eq!(call(reqwest::Method::GET, "/v1/invoices/20-1".into(), None).await.1["code"], "invalid_period");

    // pages: three agents two at a time
    for id in ["a1", "a2"] {
        call(reqwest::Method::POST, "/v1/agents".into(), Some(json!({"id": id, "name": id}))).await;
    }
    let (_, p1) = call(reqwest::Method::GET, "/v1/agents?limit=2".into(), None).await;
    let ids: Vec<&str> = p1["data"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a1", "a2"]);
    let (_, p2) = call(reqwest::Method::GET, format!("/v1/agents?limit=2&cursor={}", p1["next_cursor"].as_str().unwrap()), None).await;
    assert_eq!((p2["data"][0]["id"].as_str(), p2["next_cursor"].is_null()), (Some("clinic"), true), "{p2}");

    // webhook URLs the network policy forbids are refused when registered
    for url in ["http://127.0.0.1:9/hook", "https://169.254.169.254/latest", "https://10.0.0.7/x", "ftp://example.com/x"] {
        let (st, v) = call(reqwest::Method::POST, "/v1/webhooks".into(), Some(json!({"url": url, "events": ["*"]}))).await;
        assert_eq!((st, v["code"].as_str()), (400, Some("url_not_allowed")), "{url}: {v}");
    }
    stop.cancel();
    let _ = std::fs::remove_dir_all(dir);
}

