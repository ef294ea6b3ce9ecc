//! What the web console stands on, over HTTP: its files and headers, the built-in issuer's
//! authorization-code + PKCE sign-in, live call events (SSE), agent lint, and browser calls
//! over the `web` transport.

use std::time::Duration;

use base64::Engine;
use callfunnel_control::{Config, Server};
use callfunnel_data::TimelineEvent;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn start(name: &str) -> (Server, CancellationToken, String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("cf-console-api-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = crate::telephony::free_port();
    let mut cfg = Config::default();
    cfg.server.listen = ([127, 0, 0, 1], port).into();
    cfg.server.public_host = format!("127.0.0.1:{port}");
    cfg.server.public_ws_scheme = "ws".into();
    cfg.server.preload_models = false;
    cfg.data.dir = dir.clone();
    cfg.data.timeline = "memory".into();
    cfg.agents.dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../agents");
    let stop = CancellationToken::new();
    let s = Server::start(cfg, stop.clone()).await.unwrap();
    (s, stop, format!("http://127.0.0.1:{port}"), dir)
}

/// POSTs `pairs` as `application/x-www-form-urlencoded`.
async fn post_form<K: AsRef<str>, V: AsRef<str>>(http: &reqwest::Client, url: String, pairs: &[(K, V)]) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))).finish();
    http.post(url).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Signs in through the form and trades the code; returns the token response.
async fn sign_in(base: &str, password: &str, tenant: &str, role: &str) -> Value {
    let http = no_redirects();
    let redirect = format!("{base}/console/");
    let oauth = [
        ("response_type", "code"),
        ("client_id", "callfunnel-console"),
        ("redirect_uri", redirect.as_str()),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "st4te"),
        ("nonce", "n0nce"),
        ("scope", "openid"),
    ];
    let mut form: Vec<(&str, &str)> = oauth.to_vec();
    form.extend([("username", "ana"), ("password", password), ("tenant", tenant), ("role", role)]);
    let r = post_form(&http, format!("{base}/dev/oidc/auth"), &form).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(to.as_str().starts_with(&redirect));
    let q: std::collections::HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st4te");
    let token = [("grant_type", "authorization_code"), ("code", q["code"].as_str()), ("redirect_uri", redirect.as_str()), ("client_id", "callfunnel-console"), ("code_verifier", VERIFIER)];
    let r = post_form(&http, format!("{base}/dev/oidc/token"), &token).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    // the code is good once
    let again = post_form(&http, format!("{base}/dev/oidc/token"), &token).await;
    assert_eq!(again.status(), 400);
    assert_eq!(again.json::<Value>().await.unwrap()["error"], "invalid_grant");
    body
}

fn claims(jwt: &str) -> Value {
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy_and_signs_in_with_pkce() {
    let (s, stop, base, dir) = start("pkce").await;
    let http = no_redirects();
    let r = http.get(format!("{base}/console")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (308, "/console/"));
    let r = http.get(format!("{base}/console/")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && csp.contains("connect-src 'self';"), "{csp}");
    assert!(r.text().await.unwrap().contains(r#"<script type="module" src="/console/assets/js/app.js">"#));
    let r = http.get(format!("{base}/console/assets/js/app.js")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/javascript; charset=utf-8");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = http.get(format!("{base}/console/assets/js/app.js")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(http.get(format!("{base}/console/assets/../../Cargo.toml")).send().await.unwrap().status(), 404);
    assert_eq!(http.get(format!("{base}/console/assets/js/nope.js")).send().await.unwrap().status(), 404);
    let cfg: Value = http.get(format!("{base}/console/config.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!((cfg["issuer"].as_str().unwrap(), cfg["client_id"].as_str().unwrap()), (format!("{base}/dev/oidc").as_str(), "callfunnel-console"));
    let d: Value = http.get(format!("{base}/dev/oidc/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!((d["authorization_endpoint"].as_str().unwrap(), d["code_challenge_methods_supported"].clone()), (format!("{base}/dev/oidc/auth").as_str(), json!(["S256"])));

    // the form: only for our console, only with PKCE; errors stay on our page
    let q = |redirect: &str, method: &str| format!("{base}/dev/oidc/auth?response_type=code&client_id=callfunnel-console&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method={method}&state=s", url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>());
    let r = http.get(q(&format!("{base}/console/"), "S256")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"<label for="password">Password</label>"#) && page.contains("dev-password"), "{page}");
    let r = http.get(q("https://evil.example/console/", "S256")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("redirect_uri must be this server"));
    let r = http.get(q(&format!("{base}/console/"), "plain")).send().await.unwrap();
    assert_eq!(r.status(), 400);

    let password = std::fs::read_to_string(dir.join("auth/dev-password")).unwrap();
    let form = |pw: &str| {
        vec![("response_type", "code".to_string()), ("client_id", "callfunnel-console".into()), ("redirect_uri", format!("{base}/console/")), ("code_challenge", CHALLENGE.into()),
            ("code_challenge_method", "S256".into()), ("state", "s".into()), ("username", "ana".into()), ("password", pw.to_string()), ("tenant", "acme".into()), ("role", "editor".into())]
    };
    let r = post_form(&http, format!("{base}/dev/oidc/auth"), &form("guess")).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("Wrong user name or password"));

    let t = sign_in(&base, password.trim(), "acme", "editor").await;
    let (access, id) = (claims(t["access_token"].as_str().unwrap()), claims(t["id_token"].as_str().unwrap()));
    assert_eq!((access["tenant_id"].clone(), access["azp"].clone(), access["realm_access"]["roles"].clone(), id["nonce"].clone()), (json!("acme"), json!("callfunnel-console"), json!(["editor"]), json!("n0nce")));
    let me: Value = http.get(format!("{base}/v1/me")).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!((me["tenant"].clone(), me["role"].clone(), me["subject"].clone()), (json!("acme"), json!("editor"), json!("ana")));

    // a verifier that does not match the challenge gets nothing
    let r = post_form(&http, format!("{base}/dev/oidc/auth"), &form(password.trim())).await;
    let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let code = to.query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    let wrong = "A".repeat(43);
    let redirect = format!("{base}/console/");
    let r = post_form(&http, format!("{base}/dev/oidc/token"), &[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", redirect.as_str()), ("client_id", "callfunnel-console"), ("code_verifier", wrong.as_str())]).await;
    assert_eq!(r.json::<Value>().await.unwrap()["error_description"], "code_verifier does not match the code_challenge");
    stop.cancel();
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads SSE `event: call` payloads from a response until `n` arrived or `limit` passed.
async fn read_events(r: reqwest::Response, n: usize, limit: Duration) -> Vec<Value> {
    read_events_until(r, limit, |got| got.len() >= n).await
}

/// Reads SSE `event: call` payloads until `done` says so or `limit` passed.
pub(crate) async fn read_events_until(r: reqwest::Response, limit: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut body = r.bytes_stream();
    let _ = tokio::time::timeout(limit, async {
        while let Some(Ok(chunk)) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(i) = buf.find("\n\n") {
                let block: String = buf.drain(..i + 2).collect();
                if block.contains("event: call") {
                    let data: String = block.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
                    out.push(serde_json::from_str(&data).unwrap());
                }
            }
            if done(&out) {
                return;
            }
        }
    })
    .await;
    out
}

#[tokio::test]
async fn live_events_reach_only_the_tenants_watchers_and_agents_lint_before_publishing() {
    let (s, stop, base, dir) = start("live").await;
    let st = &s.state;
    let token = |tenant: &str, role: &str| st.auth.dev.as_ref().unwrap().token("ana", Some(tenant), &[role], &st.config.auth.audience, 600);
    for (id, name) in [("acme", "Acme"), ("globex", "Globex")] {
        st.stores.control.ensure_tenant(id, name).await.unwrap();
    }
    let http = reqwest::Client::new();
    let acme = http.get(format!("{base}/v1/calls/events")).bearer_auth(token("acme", "viewer")).send().await.unwrap();
    assert_eq!(acme.headers()["content-type"], "text/event-stream");
    let only_c2 = http.get(format!("{base}/v1/calls/events?call_id=c2")).bearer_auth(token("acme", "viewer")).send().await.unwrap();
    let other = http.get(format!("{base}/v1/calls/events")).bearer_auth(token("globex", "viewer")).send().await.unwrap();
    assert_eq!((only_c2.status().as_u16(), other.status().as_u16()), (200, 200));
    assert_eq!(http.get(format!("{base}/v1/calls/events")).send().await.unwrap().status(), 401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ev = |kind: &str| TimelineEvent::new(10, 1, kind, json!({"agent_id": "clinic", "caller": "+15550100"}));
    st.stores.timeline.append("acme", "c1", &[ev("call_started")]).await.unwrap();
    st.stores.timeline.append("acme", "c2", &[ev("call_started"), ev("transcript")]).await.unwrap();
    let got = read_events(acme, 3, Duration::from_secs(5)).await;
    assert_eq!(got.iter().map(|e| (e["call_id"].as_str().unwrap(), e["kind"].as_str().unwrap())).collect::<Vec<_>>(), [("c1", "call_started"), ("c2", "call_started"), ("c2", "transcript")]);
    assert_eq!(read_events(only_c2, 2, Duration::from_secs(5)).await.len(), 2);
    assert!(read_events(other, 1, Duration::from_millis(500)).await.is_empty(), "another tenant sees nothing");
    // the list shows who the call was for
    let list: Value = http.get(format!("{base}/v1/calls?agent_id=clinic")).bearer_auth(token("acme", "viewer")).send().await.unwrap().json().await.unwrap();
    assert_eq!((list["data"].as_array().unwrap().len(), list["data"][0]["agent_id"].clone(), list["data"][0]["caller"].clone()), (2, json!("clinic"), json!("+15550100")));

    // lint: a text that does not load names its line; a good one is ok; neither is published
    let editor = token("acme", "editor");
    let r = http.post(format!("{base}/v1/agents")).bearer_auth(&editor).json(&json!({"id": "bakery", "name": "Bakery"})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let lint = |body: &str| http.post(format!("{base}/v1/agents/bakery/lint")).bearer_auth(&editor).json(&json!({"kind": "rulebook", "body": body})).send();
    let bad: Value = lint("name = \"B\"\ngreeting = [oops\n").await.unwrap().json().await.unwrap();
    assert_eq!((bad["ok"].clone(), bad["lints"][0]["severity"].clone()), (json!(false), json!("error")));
    assert!(bad["lints"][0]["at"].as_str().unwrap().starts_with("line 2"), "{bad}");
    let book = "name = \"Bakery\"\ngreeting = \"Hello\"\nfallback = [\"Sorry?\"]\n[[intent]]\nname = \"hours\"\nexamples = [\"when are you open\", \"what are your hours\"]\nreply = \"Seven to two.\"\n";
    let good: Value = lint(book).await.unwrap().json().await.unwrap();
    assert_eq!(good["ok"], true, "{good}");
    let prompt: Value = http.post(format!("{base}/v1/agents/bakery/lint")).bearer_auth(&editor).json(&json!({"kind": "prompt", "body": "  "})).send().await.unwrap().json().await.unwrap();
    assert_eq!((prompt["ok"].clone(), prompt["lints"][0]["at"].clone()), (json!(false), json!("prompt")));
    let r = http.post(format!("{base}/v1/agents/nobody/lint")).bearer_auth(&editor).json(&json!({"kind": "rulebook", "body": book})).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let agent: Value = http.get(format!("{base}/v1/agents/bakery")).bearer_auth(&editor).send().await.unwrap().json().await.unwrap();
    assert_eq!(agent["latest_version"], 0, "linting publishes nothing");
    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_call_runs_on_the_web_transport_and_only_with_its_plan() {
    let (s, stop, base, dir) = start("web").await;
    let st = &s.state;
    let tenant = st.config.agents.default_tenant.clone();
    let token = |role: &str| st.auth.dev.as_ref().unwrap().token("ana", Some(&tenant), &[role], &st.config.auth.audience, 600);
    let http = reqwest::Client::new();
    let place = |role: &str, agent: &str| http.post(format!("{base}/v1/calls/web")).bearer_auth(token(role)).json(&json!({"agent_id": agent})).send();
    assert_eq!(place("viewer", "clinic").await.unwrap().status(), 403);
    let r = place("editor", "no-such-agent").await.unwrap();
    assert_eq!((r.status().as_u16(), r.json::<Value>().await.unwrap()["code"].clone()), (404, json!("agent_not_found")));
    let r = place("editor", "clinic").await.unwrap();
    assert_eq!(r.status(), 201);
    let call: Value = r.json().await.unwrap();
    let (call_id, path) = (call["call_id"].as_str().unwrap().to_string(), call["path"].as_str().unwrap().to_string());
    assert_eq!(call["url"].as_str().unwrap(), format!("ws://{}{path}", st.config.server.public_host));

    // a Twilio stream may not take a browser call's plan
    let twilio = format!("ws://{}/twilio/media/{call_id}/{}", st.config.server.public_host, st.auth.call_tokens.mint(&call_id));
    let (mut tw, _) = tokio_tungstenite::connect_async(twilio.as_str()).await.unwrap();
    let start = json!({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {"accountSid": "AC1", "streamSid": "MZ1", "callSid": "CAx", "tracks": ["inbound"], "customParameters": {}, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}});
    tw.send(Message::text(start.to_string())).await.unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(Ok(m)) = tw.next().await {
            if m.is_close() {
                return true;
            }
        }
        true
    })
    .await
    .unwrap();
    assert!(refused);
    let ev: Value = http.get(format!("{base}/v1/calls/{call_id}")).bearer_auth(token("viewer")).send().await.unwrap().json().await.unwrap();
    assert!(ev["events"].as_array().unwrap().iter().any(|e| e["kind"] == "call_refused"), "{ev}");

    // the browser's own call: the agent greets over the web dialect
    let r = place("editor", "clinic").await.unwrap();
    let call: Value = r.json().await.unwrap();
    let call_id = call["call_id"].as_str().unwrap().to_string();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}{}", st.config.server.public_host, call["path"].as_str().unwrap())).await.unwrap();
    ws.send(Message::text(json!({"event": "start", "call_id": call_id}).to_string())).await.unwrap();
    let silence = base64::engine::general_purpose::STANDARD.encode([0u8; 320]);
    let (mut audio_ms, mut marks) = (0usize, 0usize);
    let heard = tokio::time::timeout(Duration::from_secs(60), async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tokio::select! {
                _ = tick.tick() => ws.send(Message::text(json!({"event": "media", "payload": silence}).to_string())).await.unwrap(),
                m = ws.next() => {
                    let Some(Ok(Message::Text(t))) = m else { return };
                    let v: Value = serde_json::from_str(&t).unwrap();
                    match v["event"].as_str().unwrap() {
                        "media" => audio_ms += base64::engine::general_purpose::STANDARD.decode(v["payload"].as_str().unwrap()).unwrap().len() / 16,
                        "mark" => {
                            marks += 1;
                            ws.send(Message::text(json!({"event": "mark", "name": v["name"]}).to_string())).await.unwrap();
                            if audio_ms > 1000 {
                                return;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    })
    .await;
    assert!(heard.is_ok() && audio_ms > 1000 && marks > 0, "the greeting came back as PCM with marks: {audio_ms} ms, {marks} marks");
    ws.send(Message::text(r#"{"event":"stop"}"#)).await.unwrap();
    let mut ended = Value::Null;
    for _ in 0..100 {
        ended = http.get(format!("{base}/v1/calls/{call_id}")).bearer_auth(token("viewer")).send().await.unwrap().json().await.unwrap();
        if ended["status"] == "ended" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = ended["events"].as_array().unwrap();
    let started = events.iter().find(|e| e["kind"] == "call_started").unwrap_or_else(|| panic!("{ended}"));
    assert_eq!((started["data"]["agent_id"].clone(), started["data"]["caller"].clone()), (json!("clinic"), json!("browser:ana")));
    let stream = events.iter().find(|e| e["kind"] == "carrier_stream_started").unwrap();
    assert_eq!(stream["data"]["carrier"], "web");
    assert!(events.iter().any(|e| e["kind"] == "call_ended"), "{ended}");

    // a token for a call nobody planned opens nothing
    let stray = format!("ws://{}/web/media/cstray/{}", st.config.server.public_host, st.auth.call_tokens.mint("cstray"));
    let (mut ws, _) = tokio_tungstenite::connect_async(stray.as_str()).await.unwrap();
    ws.send(Message::text(r#"{"event":"start","call_id":"cstray"}"#)).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(60), async { while let Some(Ok(m)) = ws.next().await { if m.is_close() { break; } } }).await;
    assert!(closed.is_ok());
    let stray: Value = http.get(format!("{base}/v1/calls/cstray")).bearer_auth(token("viewer")).send().await.unwrap().json().await.unwrap();
    assert!(stray["events"].as_array().is_some_and(|e| e.iter().any(|e| e["kind"] == "call_refused")), "{stray}");
    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}
