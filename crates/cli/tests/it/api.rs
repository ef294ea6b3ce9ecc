//! The server's HTTP side: TwiML, health, the call API and its coded errors.

use callfunnel_control::{Config, Server};
use tokio_util::sync::CancellationToken;

async fn start() -> (Server, CancellationToken) {
    let mut cfg = Config::default();
    cfg.server.listen = ([127, 0, 0, 1], 0).into();
    cfg.server.public_host = "voice.example.com".into();
    cfg.server.preload_models = false;
    cfg.data.timeline = "memory".into();
    let stop = CancellationToken::new();
    (Server::start(cfg, stop.clone()).await.unwrap(), stop)
}

#[tokio::test]
async fn twiml_health_and_call_api() {
    let (s, stop) = start().await;
    let base = format!("http://{}", s.addr);
    let http = reqwest::Client::new();
    let authed = crate::telephony::authed_client(&s, "viewer");

    let r = http
        .post(format!("{base}/twilio/voice"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("CallSid=CA0123456789abcdef0123456789abcdef&From=%2B15550100&To=%2B15550199&Direction=inbound")
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/xml"));
    let xml = r.text().await.unwrap();
    // the call token rides in the stream path (Twilio forbids a query string)
    let url = xml.split(r#"<Stream url=""#).nth(1).and_then(|r| r.split('"').next()).unwrap_or_default().to_string();
    let token = url.strip_prefix("wss://voice.example.com/twilio/media/CA0123456789abcdef0123456789abcdef/").unwrap_or_else(|| panic!("{xml}"));
    s.state.auth.call_tokens.check("CA0123456789abcdef0123456789abcdef", token).unwrap();
    assert!(s.state.auth.call_tokens.check("CAother", token).is_err());
    assert!(xml.contains(r#"<Parameter name="from" value="+15550100"/>"#), "{xml}");
    let after = http.post(format!("{base}/twilio/after/CA0123456789abcdef0123456789abcdef")).send().await.unwrap().text().await.unwrap();
    assert!(after.contains("<Hangup/>"));

    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "models are fetched by `make test`");

    let e: serde_json::Value = authed.get(format!("{base}/v1/calls/nobody")).send().await.unwrap().json().await.unwrap();
    assert_eq!(e["code"], "call_not_found");
    let r = authed.get(format!("{base}/v1/calls/bad..id")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "invalid_call_id");
    let r = authed.get(format!("{base}/v1/calls?limit=0")).send().await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "invalid_limit");
    let r = http.get(format!("{base}/v1/calls")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap()["code"].as_str().map(str::to_string)), (401, Some("missing_credentials".into())));
    // media streams need the call token the server made
    let r = http.get(format!("{base}/twilio/media/c1")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap()["code"].as_str().map(str::to_string)), (401, Some("call_token_required".into())));
    let r = http.get(format!("{base}/twilio/media/c1/{token}")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap()["code"].as_str().map(str::to_string)), (401, Some("invalid_call_token".into())), "another call's token");
    let good = s.state.auth.call_tokens.mint("c1");
    let r = http.get(format!("{base}/twilio/media/c1/{good}")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "websocket_required");
    let calls: serde_json::Value = authed.get(format!("{base}/v1/calls/live")).send().await.unwrap().json().await.unwrap();
    assert_eq!(calls["data"].as_array().unwrap().len(), 0);
    let r = authed.get(format!("{base}/v1/nothing-here")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap()["code"].as_str().map(str::to_string)), (404, Some("route_not_found".into())));

    stop.cancel();
    s.task.await.unwrap().unwrap();
}

/// Numbers come from `[[numbers]]` and from the control store (embedded SQLite here); a number
/// neither knows is refused.
#[tokio::test]
async fn numbers_in_the_control_store_route_calls() {
    let dir = std::env::temp_dir().join(format!("cf-api-numbers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = Config::default();
    cfg.server.listen = ([127, 0, 0, 1], 0).into();
    cfg.server.preload_models = false;
    cfg.data.dir = dir.clone();
    cfg.numbers = vec![callfunnel_control::config::NumberRoute { number: "+15550100".into(), tenant_id: "acme".into(), agent_id: "clinic".into() }];
    let stop = CancellationToken::new();
    let s = Server::start(cfg, stop.clone()).await.unwrap();
    assert_eq!(s.state.stores.backends.iter().find(|b| b.0 == "control").unwrap().1, "sqlite");
    let control = s.state.stores.control.clone();
    control.ensure_tenant("globex", "Globex").await.unwrap();
    control.assign_number("globex", "+15550177", "clinic-llm").await.unwrap();
    let http = reqwest::Client::new();
    let call = |to: &str| {
        let (http, base, to) = (http.clone(), format!("http://{}", s.addr), to.replace('+', "%2B"));
        async move {
            http.post(format!("{base}/twilio/voice"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("CallSid=CA0123456789abcdef0123456789{}&From=%2B15550111&To={to}&Direction=inbound", &to[to.len() - 4..]))
                .send().await.unwrap().text().await.unwrap()
        }
    };
    let xml = call("+15550177").await;
    assert!(xml.contains(r#"<Parameter name="tenant_id" value="globex"/>"#) && xml.contains(r#"value="clinic-llm""#), "{xml}");
    let xml = call("+15550100").await;
    assert!(xml.contains(r#"<Parameter name="tenant_id" value="acme"/>"#), "{xml}");
    let xml = call("+15550999").await;
    assert!(xml.contains("<Say") && xml.contains("<Hangup/>") && !xml.contains("<Stream"), "{xml}");

    // Retention: a tenant keeping 2 days loses a 3-day-old recording, keeps a fresh one.
    let plan = callfunnel_data::control::Plan { max_concurrent_calls: None, monthly_minutes: None, retention_days: 2, allowed_providers: None };
    control.set_plan("globex", plan).await.unwrap();
    let rec = s.state.stores.recordings.clone();
    rec.put("globex", "old-call", vec![1u8; 100].into()).await.unwrap();
    rec.put("globex", "new-call", vec![2u8; 100].into()).await.unwrap();
    let old = s.state.stores.local_recordings.as_ref().unwrap().path_of("globex", "old-call").unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&old).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 86_400)).unwrap();
    assert_eq!(s.state.stores.sweep_retention().await.unwrap(), 1);
    let left: Vec<String> = rec.list("globex").await.unwrap().into_iter().map(|r| r.call_id).collect();
    assert_eq!(left, ["new-call"]);
    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}
