//! Telephony end to end with every real offline model: outbound calls through the fake carrier
//! (Twilio- and Exotel-shaped REST, signed callbacks, AMD, the media leg dialled back to us by
//! the scripted caller), voicemail, busy, REST hang-up, warm transfer, signatures enforced on
//! every webhook and media upgrade, and routing by number.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use callfunnel_ai::cloud::StaticSecrets;
use callfunnel_control::stores::Stores;
use callfunnel_control::{Config, Server};
use callfunnel_media::caller::{self, CallerCarrier, CallerOptions, CallerReport, Script};
use callfunnel_sim::carrier::{Answer, Callee, CarrierEvent, CarrierKind, FakeCarrier, FakeCarrierConfig, MediaLeg};
use callfunnel_telephony::twilio::rest::{HangupOutcome, TwilioClient};
use callfunnel_telephony::twilio::signature::sign;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub(crate) const TOKEN: &str = "twilio-test-token";
const AC: &str = "AC00000000000000000000000000000001";

/// The scripted caller as the far end of a carrier's media leg.
struct ScriptedCallee {
    scripts: HashMap<&'static str, Script>,
    reports: Mutex<Vec<CallerReport>>,
}

#[async_trait]
impl Callee for ScriptedCallee {
    async fn answer(&self, leg: MediaLeg) -> String {
        let key = match (leg.answer, leg.to.as_str()) {
            (Answer::Machine { .. }, _) => "machine",
            (_, "+15550004") => "wait",
            (_, "+15550005") => "person",
            _ => "human",
        };
        let key = if leg.carrier == CarrierKind::Exotel && leg.from == "+919800000005" { "person" } else { key };
        let opts = CallerOptions {
            carrier: if leg.carrier == CarrierKind::Exotel { CallerCarrier::Exotel { mulaw: false } } else { CallerCarrier::Twilio },
            headers: leg.headers,
            call_sid: Some(leg.call_sid),
            params: (leg.carrier == CarrierKind::Twilio).then_some(leg.custom_parameters),
            hangup: Some(leg.hangup),
            ..CallerOptions::new(leg.ws_url)
        };
        match caller::run(&self.scripts[key], &opts).await {
            Ok(r) => {
                let e = r.ended_by.clone();
                self.reports.lock().push(r);
                e
            }
            Err(e) => format!("caller error: {e}"),
        }
    }
}

fn scripts() -> HashMap<&'static str, Script> {
    let s = |t: &str| Script::from_toml(t).unwrap();
    HashMap::from([
        ("human", s("[[line]]\nsay = \"Hello?\"\nstart_ms = 500\n[[line]]\nsay = \"Goodbye\"\n")),
        ("wait", s("[call]\nmax_call_secs = 60\n[[line]]\nsay = \"Hello?\"\nstart_ms = 500\n[[line]]\nsay = \"Hmm\"\nstart_ms = 59000\n")),
        ("person", s("[[line]]\nsay = \"Hello?\"\nstart_ms = 500\n[[line]]\nsay = \"Can I speak to a person please\"\n")),
        (
            "machine",
            s("[[line]]\nsay = \"Hi, you have reached Sam. I cannot take your call right now. Please leave a message after the tone.\"\nstart_ms = 300\n[[line]]\ntone_hz = 1000\ntone_ms = 450\nstart_ms = 6000\n"),
        ),
    ])
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub(crate) struct Rig {
    pub server: Server,
    stop: CancellationToken,
    pub carrier: FakeCarrier,
    pub base: String,
    callee: Arc<ScriptedCallee>,
    pub http: reqwest::Client,
    dir: std::path::PathBuf,
}

pub(crate) async fn rig(name: &str, tweak: impl FnOnce(&mut Config)) -> Rig {
    let secrets = StaticSecrets::default().with("twilio_auth_token", TOKEN).with("exotel_api_key", "key").with("exotel_api_token", "tok").with("exotel_stream_auth", "bot:pw");
    rig_with(name, tweak, secrets, HashMap::new()).await
}

/// A rig whose server has `secrets` and opens its stores with the credentials in `creds`.
pub(crate) async fn rig_with(name: &str, tweak: impl FnOnce(&mut Config), secrets: StaticSecrets, creds: HashMap<String, String>) -> Rig {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let callee = Arc::new(ScriptedCallee { scripts: scripts(), reports: Mutex::new(Vec::new()) });
    let answers = HashMap::from([
        ("+15550002".to_string(), Answer::Machine { greeting_ms: 9000 }),
        ("+15550003".to_string(), Answer::Busy),
    ]);
    let carrier = FakeCarrier::start(FakeCarrierConfig {
        twilio_account_sid: AC.into(),
        twilio_auth_token: TOKEN.into(),
        exotel_account_sid: "exo1".into(),
        exotel_api_key: "key".into(),
        exotel_api_token: "tok".into(),
        exotel_voicebot_url: format!("ws://bot:pw@127.0.0.1:{port}/exotel/media"),
        exotel_passthru_url: format!("{base}/exotel/passthru"),
        answers,
        reorder_status: true,
        callee: callee.clone(),
    })
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("cf-tel-{}-{name}", std::process::id()));
    let mut cfg = Config::default();
    cfg.server.listen = ([127, 0, 0, 1], port).into();
    cfg.server.public_host = format!("127.0.0.1:{port}");
    cfg.server.public_ws_scheme = "ws".into();
    cfg.data.dir = dir.clone();
    cfg.agents.dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../agents");
    cfg.twilio.account_sid = AC.into();
    cfg.twilio.api_base = carrier.url();
    cfg.twilio.from_number = "+15550100".into();
    cfg.exotel.account_sid = "exo1".into();
    cfg.exotel.api_base = carrier.url();
    cfg.exotel.caller_id = "08000000000".into();
    cfg.exotel.flow_app_id = "4242".into();
    cfg.telephony.voicemail_message = Some("Hi, this is Riverside Family Clinic about your appointment. Please call us back. Goodbye.".into());
    tweak(&mut cfg);
    let stop = CancellationToken::new();
    let stores = Stores::open_with(&cfg, &|k| creds.get(k).cloned()).await.unwrap();
    let server = Server::start_with_stores(cfg, stop.clone(), Arc::new(secrets), stores).await.unwrap();
    let http = authed_client(&server, "tenant-admin");
    Rig { server, stop, carrier, base, callee, http, dir }
}

/// An HTTP client sending a dev-issuer token for the server's default tenant with `role`.
pub(crate) fn authed_client(server: &Server, role: &str) -> reqwest::Client {
    let st = &server.state;
    let token = st.auth.dev.as_ref().expect("dev issuer").token("test", Some(&st.config.agents.default_tenant), &[role], &st.config.auth.audience, 3600);
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(h).build().unwrap()
}

impl Rig {
    pub async fn place(&self, body: Value) -> Value {
        let r = self.http.post(format!("{}/v1/calls", self.base)).json(&body).send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 201, "{v}");
        v
    }

    /// The call's timeline once it has ended (and the carrier is done with it).
    pub async fn ended(&self, call_id: &str) -> Vec<Value> {
        for _ in 0..600 {
            if let Ok(r) = self.http.get(format!("{}/v1/calls/{call_id}", self.base)).send().await {
                if let Ok(v) = r.json::<Value>().await {
                    let ev = v["events"].as_array().cloned().unwrap_or_default();
                    if ev.iter().any(|e| e["kind"] == "carrier_status" && e["data"]["status"] == "completed") && ev.iter().any(|e| e["kind"] == "call_ended") {
                        return ev;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("call {call_id} did not end; carrier saw {:?}", self.carrier.events());
    }

    pub fn done(self) {
        self.stop.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kinds(ev: &[Value]) -> Vec<String> {
    ev.iter().map(|e| e["kind"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_outbound_calls_reach_people_voicemail_and_busy_lines() {
    let rig = rig("tw", |_| {}).await;

    // A person answers: "Hello?" → the agent greets → "Goodbye" → the agent hangs up.
    let placed = rig.place(json!({"to": "+15550001"})).await;
    let id = placed["call_id"].as_str().unwrap().to_string();
    assert_eq!(placed["carrier"], "twilio");
    let ev = rig.ended(&id).await;
    let k = kinds(&ev);
    let statuses: Vec<(&str, bool)> = ev.iter().filter(|e| e["kind"] == "carrier_status").map(|e| (e["data"]["status"].as_str().unwrap(), e["data"]["stale"].as_bool().unwrap())).collect();
    assert_eq!(statuses, [("ringing", false), ("initiated", true), ("in-progress", false), ("completed", false)], "a late `initiated` is stale");
    let by = ev.iter().find(|e| e["kind"] == "answered_by").unwrap_or_else(|| panic!("{k:?}"));
    assert_eq!(by["data"]["answered_by"], "human");
    assert!(ev.iter().any(|e| e["kind"] == "agent_said" && e["data"]["text"].as_str().unwrap().starts_with("Thanks for calling Riverside")), "{k:?}");
    let end = ev.iter().find(|e| e["kind"] == "call_ended").unwrap();
    assert_eq!(end["data"]["end"], "agent_ended", "{k:?}");
    let rec = ev.iter().find(|e| e["kind"] == "recording_saved").expect("recorded");
    let wav = hound::WavReader::open(rec["data"]["path"].as_str().unwrap()).unwrap();
    assert_eq!(wav.spec().channels, 2);
    assert!(wav.duration() > 8000 * 3, "the recording covers the call");
    // Every callback and the TwiML fetch passed our signature check; the leg was signed too.
    let cev = rig.carrier.events();
    assert!(cev.iter().all(|e| !matches!(e, CarrierEvent::StatusSent { http_status, .. } | CarrierEvent::TwimlFetched { http_status, .. } if !(200..300).contains(http_status))), "{cev:?}");
    assert!(cev.iter().any(|e| matches!(e, CarrierEvent::StreamEnded { ended_by, .. } if ended_by == "agent closed the stream")), "{cev:?}");

    // A voicemail: greeting, beep, our message, hang-up; never the greeting meant for a person.
    let vm = rig.place(json!({"to": "+15550002"})).await;
    let ev = rig.ended(vm["call_id"].as_str().unwrap()).await;
    let k = kinds(&ev);
    let by = ev.iter().find(|e| e["kind"] == "answered_by").unwrap_or_else(|| panic!("{k:?}"));
    assert_eq!(by["data"]["answered_by"], "machine", "{k:?}");
    assert!(k.contains(&"voicemail_message_started".to_string()), "{k:?}");
    assert!(!k.contains(&"agent_turn_started".to_string()), "{k:?}");
    let end = ev.iter().find(|e| e["kind"] == "call_ended").unwrap();
    assert_eq!(end["data"]["reason"], "voicemail left", "{k:?}");

    // Busy: only carrier events, no media.
    let busy = rig.place(json!({"to": "+15550003"})).await;
    let bid = busy["call_id"].as_str().unwrap().to_string();
    rig.carrier.wait_for(Duration::from_secs(10), |e| matches!(e, CarrierEvent::StatusSent { status, .. } if status == "busy")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let tl: Value = rig.http.get(format!("{}/v1/calls/{bid}", rig.base)).send().await.unwrap().json().await.unwrap();
    let st: Vec<&str> = tl["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "carrier_status").map(|e| e["data"]["status"].as_str().unwrap()).collect();
    assert!(st.contains(&"busy") && !kinds(tl["events"].as_array().unwrap()).contains(&"call_started".to_string()), "{tl}");

    // Bad input gets a coded error.
    let r = rig.http.post(format!("{}/v1/calls", rig.base)).json(&json!({"to": "call me"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_number");
    let r = rig.http.post(format!("{}/v1/calls", rig.base)).json(&json!({"to": "+15550001", "carrier": "pigeon"})).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_carrier");
    rig.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_hangs_up_and_a_warm_transfer_whispers_a_brief() {
    let rig = rig("hang", |_| {}).await;
    let placed = rig.place(json!({"to": "+15550004"})).await;
    let id = placed["call_id"].as_str().unwrap().to_string();
    let sid = placed["carrier_sid"].as_str().unwrap().to_string();
    // Wait until the agent has greeted, then hang up through our API.
    for _ in 0..300 {
        let tl: Value = rig.http.get(format!("{}/v1/calls/{id}", rig.base)).send().await.unwrap().json().await.unwrap_or_default();
        // a greeting actually heard (an interrupted, empty one does not count)
        if tl["events"].as_array().is_some_and(|e| e.iter().any(|x| x["kind"] == "agent_said" && x["data"]["text"].as_str().is_some_and(|t| !t.is_empty()))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r: Value = rig.http.post(format!("{}/v1/calls/{id}/hangup", rig.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!((r["hung_up"].as_bool(), r["carrier"].as_str()), (Some(true), Some("completed")), "{r}");
    rig.carrier.wait_for(Duration::from_secs(10), |e| matches!(e, CarrierEvent::StreamEnded { .. })).await.unwrap();
    let ev = rig.ended(&id).await;
    assert_eq!(ev.iter().find(|e| e["kind"] == "call_ended").unwrap()["data"]["reason"], "hung up through the API");
    let again = rig.http.post(format!("{}/v1/calls/{id}/hangup", rig.base)).send().await.unwrap();
    assert_eq!(again.status(), 404, "the call is over");
    assert_eq!(again.json::<Value>().await.unwrap()["code"], "call_not_active");
    assert_eq!(TwilioClient::new(&rig.carrier.url(), AC, TOKEN).hangup(&sid).await.unwrap(), HangupOutcome::AlreadyEnded, "404/20404 means already ended");
    assert!(TwilioClient::new(&rig.carrier.url(), AC, "wrong").hangup(&sid).await.is_err());

    // Warm transfer: the caller asks for a person; reception hears a brief, then is bridged.
    let t = rig.place(json!({"to": "+15550005", "screen": false})).await;
    let ev = rig.ended(t["call_id"].as_str().unwrap()).await;
    let end = &ev.iter().find(|e| e["kind"] == "call_ended").unwrap()["data"];
    assert_eq!((end["end"].as_str(), end["to"].as_str()), (Some("transferred"), Some("+15550123000")), "{end}");
    let cev = rig.carrier.wait_for(Duration::from_secs(10), |e| matches!(e, CarrierEvent::Whispered { .. })).await.unwrap_or_else(|e| panic!("{e:?}"));
    let said = cev.iter().find_map(|e| if let CarrierEvent::Whispered { said, .. } = e { Some(said.clone()) } else { None }).unwrap();
    assert!(said.starts_with("Incoming transfer. Reason: ") && said.contains("+15550005") && said.to_lowercase().contains("said:"), "{said}");
    assert!(cev.iter().any(|e| matches!(e, CarrierEvent::Dialed { to, whisper: Some(_), .. } if to == "+15550123000")));
    rig.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exotel_outbound_flow_passthru_and_direct_stream() {
    let rig = rig("exo", |_| {}).await;
    // Through a flow: the Voicebot applet connects with Basic auth; after a transfer the
    // Passthru applet takes branch B (302).
    let placed = rig.place(json!({"to": "+919800000005", "carrier": "exotel"})).await;
    assert_eq!(placed["carrier"], "exotel");
    let cev = rig.carrier.wait_for(Duration::from_secs(90), |e| matches!(e, CarrierEvent::Passthru { .. })).await.unwrap_or_else(|e| panic!("{e:?}"));
    let pt = cev.iter().find_map(|e| if let CarrierEvent::Passthru { http_status, branch, .. } = e { Some((*http_status, branch.clone())) } else { None }).unwrap();
    assert_eq!(pt, (302, "B".to_string()), "{cev:?}");

    // Straight to our stream (`streamurl`), credentials in the URL as Exotel takes them.
    let client = callfunnel_telephony::exotel::rest::ExotelClient::new(&rig.carrier.url(), "exo1", "key", "tok");
    let port = rig.server.addr.port();
    let call = client
        .connect_stream(&callfunnel_telephony::exotel::rest::ConnectStream { from: "+919800000001".into(), caller_id: "080".into(), stream_url: format!("ws://bot:pw@127.0.0.1:{port}/exotel/media/exdirect1/{}", rig.server.state.auth.call_tokens.mint("exdirect1")), ..Default::default() })
        .await
        .unwrap();
    rig.carrier.wait_for(Duration::from_secs(90), |e| matches!(e, CarrierEvent::StreamEnded { call_sid, .. } if *call_sid == call.sid)).await.unwrap();
    // The engine writes its last events just after the stream ends: wait for them.
    let mut k = Vec::new();
    for _ in 0..100 {
        let tl: Value = rig.http.get(format!("{}/v1/calls/exdirect1", rig.base)).send().await.unwrap().json().await.unwrap();
        k = kinds(tl["events"].as_array().unwrap());
        if k.contains(&"call_ended".to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(k.contains(&"call_ended".to_string()) && k.contains(&"transcript".to_string()), "{k:?}");
    // Without the credentials the stream is refused.
    let bad = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/exotel/media/nope1")).await;
    assert!(matches!(bad, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 401), "{bad:?}");
    assert!(client.connect_stream(&Default::default()).await.is_err(), "missing fields are refused");
    rig.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_guard_every_twilio_request_and_numbers_route_calls() {
    let rig = rig("sig", |c| {
        c.numbers = vec![callfunnel_control::config::NumberRoute { number: "+15550199".into(), tenant_id: "acme".into(), agent_id: "clinic".into() }];
    })
    .await;
    let url = format!("{}/twilio/voice", rig.base);
    let form = |to: &str| vec![("CallSid".to_string(), "CA0123456789abcdef0123456789abcdef".to_string()), ("From".to_string(), "+15550100".to_string()), ("To".to_string(), to.to_string())];
    let body = |f: &[(String, String)]| url::form_urlencoded::Serializer::new(String::new()).extend_pairs(f.iter().map(|(a, b)| (a.as_str(), b.as_str()))).finish();
    let post = |sig: Option<String>, f: Vec<(String, String)>, headers: Vec<(&'static str, &'static str)>| {
        let mut r = rig.http.post(&url).header("content-type", "application/x-www-form-urlencoded").body(body(&f));
        if let Some(s) = sig {
            r = r.header("X-Twilio-Signature", s);
        }
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r.send()
    };
    // Unsigned, tampered, wrong token: 403 with a code, nothing processed.
    let r = post(None, form("+15550199"), vec![]).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_signature");
    let good = sign(TOKEN, &url, &form("+15550199"));
    assert_eq!(post(Some(good.clone()), form("+15550100"), vec![]).await.unwrap().status(), 403, "tampered To");
    assert_eq!(post(Some(sign("other", &url, &form("+15550199"))), form("+15550199"), vec![]).await.unwrap().status(), 403);
    // Signed: a known number streams to its agent; an unknown one hears a refusal.
    let xml = post(Some(good), form("+15550199"), vec![]).await.unwrap().text().await.unwrap();
    assert!(xml.contains("<Stream url=") && xml.contains(r#"value="acme""#), "{xml}");
    let xml = post(Some(sign(TOKEN, &url, &form("+15550000"))), form("+15550000"), vec![]).await.unwrap().text().await.unwrap();
    assert!(xml.contains("<Say>Sorry, this number is not in service. Goodbye.</Say><Hangup/>"), "{xml}");
    // Behind a TLS proxy the public URL is rebuilt from X-Forwarded-*.
    let public = "https://voice.example.com/twilio/voice";
    let r = post(Some(sign(TOKEN, public, &form("+15550199"))), form("+15550199"), vec![("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "voice.example.com")]).await.unwrap();
    assert_eq!(r.status(), 200);
    // The media upgrade is signed over the ws:// URL.
    let ws = format!("ws://127.0.0.1:{}/twilio/media/CA0123456789abcdef0123456789abcdef/{}", rig.server.addr.port(), rig.server.state.auth.call_tokens.mint("CA0123456789abcdef0123456789abcdef"));
    let unsigned = tokio_tungstenite::connect_async(ws.as_str()).await;
    assert!(matches!(unsigned, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 403), "{unsigned:?}");
    let script = Script::from_toml("[[line]]\nsay = \"Goodbye\"\n").unwrap();
    let opts = CallerOptions { headers: vec![("X-Twilio-Signature".into(), sign(TOKEN, &ws, &[]))], ..CallerOptions::new(ws.clone()) };
    let report = caller::run(&script, &opts).await.unwrap();
    assert_eq!(report.ended_by, "agent closed the stream", "{report:?}");
    // An Exotel stream to a number we do not serve hears the refusal, then the line closes.
    let unknown = Script::from_toml("[call]\nto = \"+15550000\"\n[[line]]\nsay = \"Hello?\"\nstart_ms = 9000\n").unwrap();
    let opts = CallerOptions {
        carrier: CallerCarrier::Exotel { mulaw: false },
        headers: vec![("Authorization".into(), "Basic Ym90OnB3".into())],
        ..CallerOptions::new(format!("ws://127.0.0.1:{}/exotel/media/unk1/{}", rig.server.addr.port(), rig.server.state.auth.call_tokens.mint("unk1")))
    };
    let r = caller::run(&unknown, &opts).await.unwrap();
    assert_eq!(r.ended_by, "agent closed the stream", "{r:?}");
    assert!(r.agent_audio_ms > 1500, "the refusal was spoken: {r:?}");
    let tl: Value = rig.http.get(format!("{}/v1/calls/unk1", rig.base)).send().await.unwrap().json().await.unwrap();
    assert!(kinds(tl["events"].as_array().unwrap()).contains(&"call_refused".to_string()), "{tl}");
    rig.callee.reports.lock().clear();
    rig.done();
}

/// A campaign dials its contacts through the carrier, retries the busy one with backoff, completes,
/// and the tenant's webhooks hear about each call and the campaign.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_dials_retries_and_completes_with_webhooks() {
    let rig = rig("camp", |c| {
        c.campaigns.tick_ms = 300;
        c.tools.allow_http = true;
        c.tools.allow_networks = vec!["127.0.0.1/32".into()];
    })
    .await;
    let events = Arc::new(Mutex::new(Vec::<Value>::new()));
    let ev = events.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let ev = ev.clone();
            async move {
                ev.lock().push(serde_json::from_slice::<Value>(&body).unwrap_or_default());
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let tenant = rig.server.state.config.agents.default_tenant.clone();
    rig.server.state.stores.control.create_agent(&tenant, "clinic", "Clinic").await.unwrap();
    // a version published through the API is what the calls use (not the agent file)
    let book = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../agents/clinic.toml")).unwrap();
    let book = book.replace("reply = \"Thanks for calling Riverside Family Clinic. Goodbye!\"", "reply = \"Goodbye from version two!\"");
    let r = rig.http.post(format!("{}/v1/agents/clinic/versions", rig.base)).json(&json!({"kind": "rulebook", "body": book})).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = rig.http.post(format!("{}/v1/webhooks", rig.base)).json(&json!({"url": hook_url, "events": ["call.started", "call.ended", "campaign.completed"]})).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    let body = json!({
        "id": "remind", "name": "Reminders", "agent_id": "clinic", "start": true,
        "settings": {"window": {"start": "00:00", "end": "00:00", "timezone": "Asia/Kolkata"}, "concurrency": 2, "max_attempts": 2, "retry_backoff_s": 1},
        "contacts": [{"number": "+15550003", "variables": {"name": "Bo"}}, {"number": "+15550009", "variables": {"name": "Ana"}}],
    });
    let r = rig.http.post(format!("{}/v1/campaigns", rig.base)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let mut c = Value::Null;
    let mut most_waiting = 0; // the dial backlog (the autoscaling signal) while it runs
    for _ in 0..900 {
        c = rig.http.get(format!("{}/v1/campaigns/remind", rig.base)).send().await.unwrap().json().await.unwrap();
        most_waiting = most_waiting.max(rig.server.state.dialer.backlog());
        if c["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c["status"], "completed", "{c}");
    assert!((1..=2).contains(&most_waiting), "contacts waited to be dialled (the busy one for its retry): {most_waiting}");
    for _ in 0..20 {
        if rig.server.state.dialer.backlog() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rig.server.state.dialer.backlog(), 0, "nothing left to dial");
    let p = &c["progress"];
    assert_eq!((p["total"].as_i64(), p["done"].as_i64(), p["failed"].as_i64(), p["attempts"].as_i64()), (Some(2), Some(1), Some(1), Some(3)), "{c}");
    let rows: Value = rig.http.get(format!("{}/v1/campaigns/remind/contacts", rig.base)).send().await.unwrap().json().await.unwrap();
    let row = |n: &str| rows["data"].as_array().unwrap().iter().find(|r| r["number"] == n).cloned().unwrap();
    let (busy, human) = (row("+15550003"), row("+15550009"));
    assert_eq!((busy["status"].as_str(), busy["attempts"].as_i64(), busy["last_outcome"].as_str()), (Some("failed"), Some(2), Some("busy")), "{rows}");
    assert_eq!((human["status"].as_str(), human["attempts"].as_i64(), human["last_outcome"].as_str()), (Some("done"), Some(1), Some("completed")), "{rows}");
    // the answered call carried the contact's variables and the campaign id
    let tl: Value = rig.http.get(format!("{}/v1/calls/{}", rig.base, human["last_call_id"].as_str().unwrap())).send().await.unwrap().json().await.unwrap();
    let placed = tl["events"].as_array().unwrap().iter().find(|e| e["kind"] == "carrier_call").cloned().unwrap();
    assert_eq!((placed["data"]["variables"]["name"].as_str(), placed["data"]["campaign_id"].as_str()), (Some("Ana"), Some("remind")), "{placed}");
    let said: Vec<&str> = tl["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "agent_said").filter_map(|e| e["data"]["text"].as_str()).collect();
    assert!(said.contains(&"Goodbye from version two!"), "the published version's goodbye: {said:?}");
    // webhooks: the answered call started and ended; the campaign completed
    let mut kinds = Vec::new();
    for _ in 0..100 {
        kinds = events.lock().iter().map(|e| e["event"].as_str().unwrap_or_default().to_string()).collect::<Vec<_>>();
        if kinds.contains(&"campaign.completed".to_string()) && kinds.contains(&"call.ended".to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(kinds.contains(&"call.started".to_string()) && kinds.contains(&"call.ended".to_string()) && kinds.contains(&"campaign.completed".to_string()), "{kinds:?}");
    let done = events.lock().iter().find(|e| e["event"] == "campaign.completed").cloned().unwrap();
    assert_eq!((done["data"]["campaign_id"].as_str(), done["data"]["done"].as_i64(), done["data"]["failed"].as_i64()), (Some("remind"), Some(1), Some(1)), "{done}");
    rig.done();
}
