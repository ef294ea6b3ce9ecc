//! Identity and tenancy against the real OIDC provider (npm `oidc-provider`, Keycloak-shaped,
//! started by `scripts/services.sh`) and PostgreSQL: every `/v1` route × (own tenant, other
//! tenant, no token, expired, wrong audience, forged), a JWT attack suite, key rotation, roles,
//! API keys and platform admins.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use callfunnel_control::auth::{AuthMode, DevIssuer};
use callfunnel_control::{Config, Server};
use callfunnel_data::TimelineEvent;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::stores::service_env;

async fn client_token(client: &str, secret: &str) -> String {
    let issuer = service_env("CF_TEST_OIDC_ISSUER");
    let r = reqwest::Client::new()
        .post(format!("{issuer}/protocol/openid-connect/token"))
        .basic_auth(client, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    v["access_token"].as_str().unwrap_or_else(|| panic!("no token for {client}: {v}")).to_string()
}

fn parts(token: &str) -> (Value, Value) {
    let p: Vec<&str> = token.split('.').collect();
    (serde_json::from_slice(&B64.decode(p[0]).unwrap()).unwrap(), serde_json::from_slice(&B64.decode(p[1]).unwrap()).unwrap())
}

fn unsigned(header: &Value, claims: &Value, sig: &[u8]) -> String {
    format!("{}.{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()), B64.encode(sig))
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, token: Option<&str>, m: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut r = self.http.request(m, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

async fn start(dir: &std::path::Path) -> (Server, CancellationToken) {
    let mut cfg = Config::default();
    cfg.server.listen = ([127, 0, 0, 1], 0).into();
    cfg.server.preload_models = false;
    cfg.data.dir = dir.to_path_buf();
    cfg.data.timeline = "memory".into();
    cfg.stores.postgres_url = Some(service_env("CF_TEST_POSTGRES_URL"));
    cfg.auth.mode = AuthMode::Oidc;
    cfg.auth.issuer = Some(service_env("CF_TEST_OIDC_ISSUER"));
    cfg.auth.audience = service_env("CF_TEST_OIDC_AUDIENCE");
    cfg.auth.min_refetch_secs = 1;
    cfg.auth.leeway_secs = 1; // the short-lived client's tokens live 1 s
    let stop = CancellationToken::new();
    (Server::start(cfg, stop.clone()).await.unwrap(), stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_tenant_scoped_and_refuses_bad_tokens() {
    let run = format!("a{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("cf-auth-{run}"));
    let _ = std::fs::remove_dir_all(&dir);
    let (s, stop) = start(&dir).await;
    let api = Api { base: format!("http://{}", s.addr), http: reqwest::Client::new() };
    let control = s.state.stores.control.clone();
    control.ensure_tenant("acme", "Acme").await.unwrap();
    control.ensure_tenant("globex", "Globex").await.unwrap();

    let acme = client_token("svc-acme", "acme-secret").await;
    let viewer = client_token("svc-acme-viewer", "acme-viewer-secret").await;
    let editor = client_token("svc-acme-editor", "acme-editor-secret").await;
    let globex = client_token("svc-globex", "globex-secret").await;
    let platform = client_token("svc-platform", "platform-secret").await;
    let wrong_aud = client_token("svc-otheraud", "otheraud-secret").await;
    let short = client_token("svc-shortlived", "shortlived-secret").await;
    // forged: acme's claims under the provider's kid, signed by a key that is not the provider's
    let (header, claims) = parts(&acme);
    let rogue = DevIssuer::open(&dir.join("rogue"), claims["iss"].as_str().unwrap()).unwrap();
    let forged = rogue.sign_with_header(&header, &claims);

    // acme's resources (unique per run: the PostgreSQL database is shared)
    let (agent, kb, camp, number) = (format!("ag-{run}"), format!("kb-{run}"), format!("cp-{run}"), format!("+1555{:07}", std::process::id() % 10_000_000));
    let ok = |(st, v): (u16, Value), want: u16| {
        assert_eq!(st, want, "{v}");
        v
    };
    ok(api.call(Some(&acme), Method::POST, "/v1/agents", Some(&json!({"id": agent, "name": "Front desk"}))).await, 201);
    let book = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../agents/clinic.toml")).unwrap();
    let spec = json!({"kind": "rulebook", "body": book, "voice": "joe", "language": "en-US"});
    ok(api.call(Some(&acme), Method::POST, &format!("/v1/agents/{agent}/versions"), Some(&spec)).await, 201);
    ok(api.call(Some(&acme), Method::PUT, &format!("/v1/numbers/{number}"), Some(&json!({"agent_id": agent}))).await, 200);
    ok(api.call(Some(&acme), Method::POST, "/v1/knowledge-bases", Some(&json!({"id": kb, "name": "FAQ"}))).await, 201);
    ok(api.call(Some(&acme), Method::POST, &format!("/v1/knowledge-bases/{kb}/documents"), Some(&json!({"id": "hours", "title": "Hours", "text": "Open 8 to 6."}))).await, 201);
    let settings = json!({"window": {"start": "09:00", "end": "17:00", "timezone": "America/New_York"}, "concurrency": 1});
    ok(api.call(Some(&acme), Method::POST, "/v1/campaigns", Some(&json!({"id": camp, "name": "Reminders", "agent_id": agent, "settings": settings, "contacts": [{"number": "+15550100123", "variables": {"name": "Ana"}}]}))).await, 201);
    let hook = ok(api.call(Some(&acme), Method::POST, "/v1/webhooks", Some(&json!({"url": "https://hooks.example.com/cf", "events": ["call.ended"]}))).await, 201);
    let hook_id = hook["id"].as_str().unwrap().to_string();
    assert!(hook["secret"].as_str().unwrap().starts_with("whsec_"));
    let key = ok(api.call(Some(&acme), Method::POST, "/v1/api-keys", Some(&json!({"name": "crm", "role": "editor"}))).await, 201);
    let (key_id, key_plain) = (key["id"].as_str().unwrap().to_string(), key["key"].as_str().unwrap().to_string());
    let call_id = format!("call-{run}");
    s.state.store.append("acme", &call_id, &[TimelineEvent::new(0, 1, "call_started", json!({})), TimelineEvent::new(0, 2, "call_ended", json!({}))]).await.unwrap();
    s.state.stores.recordings.put("acme", &call_id, vec![1u8; 64].into()).await.unwrap();

    // Every route, as acme would call it on acme's resources, and the status acme gets.
    let patch = json!({"name": "Front desk 2"});
    let doc = json!({"id": "more", "title": "More", "text": "Parking is free."});
    let contacts = json!([{"number": "+15550100124"}]);
    let routes: Vec<(Method, String, Option<Value>, u16)> = vec![
        (Method::GET, "/v1/agents".into(), None, 200),
        (Method::GET, format!("/v1/agents/{agent}"), None, 200),
        (Method::PATCH, format!("/v1/agents/{agent}"), Some(patch.clone()), 200),
        (Method::GET, format!("/v1/agents/{agent}/versions"), None, 200),
        (Method::POST, format!("/v1/agents/{agent}/versions"), Some(spec.clone()), 201),
        (Method::GET, format!("/v1/agents/{agent}/versions/1"), None, 200),
        (Method::GET, "/v1/numbers".into(), None, 200),
        (Method::PUT, format!("/v1/numbers/{number}"), Some(json!({"agent_id": agent})), 200),
        (Method::GET, "/v1/knowledge-bases".into(), None, 200),
        (Method::GET, format!("/v1/knowledge-bases/{kb}/documents"), None, 200),
        (Method::POST, format!("/v1/knowledge-bases/{kb}/documents"), Some(doc), 201),
        (Method::DELETE, format!("/v1/knowledge-bases/{kb}/documents/more"), None, 204),
        (Method::GET, "/v1/campaigns".into(), None, 200),
        (Method::GET, format!("/v1/campaigns/{camp}"), None, 200),
        (Method::GET, format!("/v1/campaigns/{camp}/contacts"), None, 200),
        (Method::POST, format!("/v1/campaigns/{camp}/contacts"), Some(contacts), 200),
        (Method::GET, "/v1/calls".into(), None, 200),
        (Method::GET, format!("/v1/calls/{call_id}"), None, 200),
        (Method::GET, format!("/v1/calls/{call_id}/recording"), None, 200),
        (Method::GET, "/v1/calls/live".into(), None, 200),
        (Method::GET, "/v1/usage".into(), None, 200),
        (Method::GET, "/v1/webhooks".into(), None, 200),
        (Method::GET, format!("/v1/webhooks/deliveries?webhook_id={hook_id}"), None, 200),
        (Method::GET, "/v1/api-keys".into(), None, 200),
        (Method::GET, "/v1/tenants/acme".into(), None, 200),
        (Method::GET, "/v1/me".into(), None, 200),
    ];
    for (m, path, body, want) in &routes {
        let (st, v) = api.call(Some(&acme), m.clone(), path, body.as_ref()).await;
        assert_eq!(st, *want, "acme {m} {path}: {v}");
        for (who, token, code) in [("no token", None, "missing_credentials"), ("expired", Some(short.as_str()), ""), ("wrong audience", Some(wrong_aud.as_str()), "invalid_token"), ("forged", Some(forged.as_str()), "invalid_token")] {
            if who == "expired" {
                continue; // below, once it has expired
            }
            let (st, v) = api.call(token, m.clone(), path, body.as_ref()).await;
            assert_eq!((st, v["code"].as_str()), (401, Some(code)), "{who} {m} {path}: {v}");
        }
        // Another tenant: never acme's data. Single resources are unknown to it (404); lists
        // hold none of acme's ids.
        let (st, v) = api.call(Some(&globex), m.clone(), path, body.as_ref()).await;
        // (an error naming the id that was asked for is no leak)
        let text = if (200..300).contains(&st) { v.to_string() } else { String::new() };
        let leaked = [&agent, &kb, &camp, &number, &call_id, &hook_id, &key_id].into_iter().find(|id| text.contains(id.as_str()));
        assert!(leaked.is_none(), "globex {m} {path} saw acme's {leaked:?}: {v}");
        let single = path.matches('/').count() > 2 && !path.ends_with("/live") && !path.contains("deliveries") && path != "/v1/calls/live";
        if single && *m != Method::PUT {
            assert!(st == 404 || st == 403, "globex {m} {path} → {st}: {v}");
        }
        if *m == Method::PUT {
            // binding acme's number (with acme's agent, or its own) is refused
            assert!(st == 404 || st == 409, "globex {m} {path} → {st}: {v}");
        }
    }
    // globex naming acme's tenant is refused outright
    let r = api.http.get(format!("{}/v1/agents", api.base)).bearer_auth(&globex).header("x-tenant-id", "acme").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "tenant_mismatch");
    // globex's deletes did not touch acme's things
    for (m, path) in [(Method::DELETE, format!("/v1/agents/{agent}")), (Method::DELETE, format!("/v1/numbers/{number}")), (Method::DELETE, format!("/v1/webhooks/{hook_id}")), (Method::DELETE, format!("/v1/api-keys/{key_id}")), (Method::POST, format!("/v1/campaigns/{camp}/start"))] {
        let (st, v) = api.call(Some(&globex), m.clone(), &path, None).await;
        assert_eq!(st, 404, "globex {m} {path}: {v}");
    }
    assert_eq!(ok(api.call(Some(&acme), Method::GET, &format!("/v1/agents/{agent}"), None).await, 200)["name"], "Front desk 2");
    assert_eq!(ok(api.call(Some(&acme), Method::GET, &format!("/v1/campaigns/{camp}"), None).await, 200)["status"], "draft");
    let hooks = ok(api.call(Some(&acme), Method::GET, "/v1/webhooks", None).await, 200);
    assert!(hooks["data"].as_array().unwrap().iter().any(|h| h["id"] == hook_id.as_str()), "{hooks}");
    assert!(!hooks.to_string().contains("whsec_"), "secrets are shown only at creation");

    // Roles: a viewer reads but cannot write; an editor cannot delete agents or make keys.
    assert_eq!(api.call(Some(&viewer), Method::GET, &format!("/v1/agents/{agent}"), None).await.0, 200);
    let (st, v) = api.call(Some(&viewer), Method::PATCH, &format!("/v1/agents/{agent}"), Some(&patch)).await;
    assert_eq!((st, v["code"].as_str()), (403, Some("insufficient_role")));
    assert_eq!(api.call(Some(&editor), Method::DELETE, &format!("/v1/agents/{agent}"), None).await.0, 403);
    assert_eq!(api.call(Some(&editor), Method::POST, "/v1/api-keys", Some(&json!({"name": "x", "role": "viewer"}))).await.0, 403);
    // Platform admins: tenants and plans; a tenant admin cannot.
    assert_eq!(api.call(Some(&acme), Method::GET, "/v1/tenants", None).await.0, 403);
    assert_eq!(api.call(Some(&acme), Method::PUT, "/v1/tenants/acme/plan", Some(&json!({"retention_days": 30}))).await.0, 403);
    let all = ok(api.call(Some(&platform), Method::GET, "/v1/tenants?limit=200", None).await, 200);
    assert!(all["data"].as_array().unwrap().iter().any(|t| t["id"] == "acme"), "{all}");
    let (st, v) = api.call(Some(&platform), Method::GET, "/v1/agents", None).await;
    assert_eq!((st, v["code"].as_str()), (400, Some("tenant_required")));
    let r = api.http.get(format!("{}/v1/agents/{agent}", api.base)).bearer_auth(&platform).header("x-tenant-id", "acme").send().await.unwrap();
    assert_eq!(r.status(), 200, "a platform admin acts for a tenant it names");
    // An API key acts for its tenant with its role (editor here), never more.
    let (st, _) = api.call(Some(&key_plain), Method::PATCH, &format!("/v1/agents/{agent}"), Some(&patch)).await;
    assert_eq!(st, 200);
    assert_eq!(api.call(Some(&key_plain), Method::DELETE, &format!("/v1/agents/{agent}"), None).await.0, 403);
    assert_eq!(api.call(Some(&key_plain), Method::GET, &format!("/v1/agents/{agent}"), None).await.0, 200);
    let r = api.http.get(format!("{}/v1/agents/{agent}", api.base)).bearer_auth(&key_plain).header("x-tenant-id", "globex").send().await.unwrap();
    assert_eq!(r.status(), 403);
    ok(api.call(Some(&acme), Method::DELETE, &format!("/v1/api-keys/{key_id}"), None).await, 204);
    let (st, v) = api.call(Some(&key_plain), Method::GET, "/v1/agents", None).await;
    assert_eq!((st, v["code"].as_str()), (401, Some("invalid_api_key")), "a revoked key");

    // The expired token, on every route.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    for (m, path, body, _) in &routes {
        let (st, v) = api.call(Some(&short), m.clone(), path, body.as_ref()).await;
        assert_eq!((st, v["code"].as_str()), (401, Some("invalid_token")), "expired {m} {path}: {v}");
        assert!(v["message"].as_str().unwrap().contains("expired"), "{v}");
    }
    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_attacks_are_refused_and_rotated_keys_are_fetched() {
    let dir = std::env::temp_dir().join(format!("cf-jwt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (s, stop) = start(&dir).await;
    let auth = &s.state.auth;
    let good = client_token("svc-acme", "acme-secret").await;
    let claims = auth.verify_jwt(&good).await.expect("a provider token verifies");
    assert_eq!((claims["tenant_id"].as_str(), claims["azp"].as_str()), (Some("acme"), Some("svc-acme")));
    let (header, payload) = parts(&good);
    let refuse = |t: String, why: &'static str| {
        let a = auth.clone();
        async move {
            let r = a.verify_jwt(&t).await;
            assert!(r.is_err(), "{why} was accepted");
            r.unwrap_err().to_string()
        }
    };
    // alg none, with and without a signature part
    let none = json!({"alg": "none", "typ": "JWT", "kid": header["kid"]});
    assert!(refuse(unsigned(&none, &payload, b""), "alg none").await.contains("none"));
    assert!(refuse(format!("{}.{}.", B64.encode(none.to_string()), B64.encode(payload.to_string())), "alg none, empty signature").await.contains("none"));
    // HS256 "signed" with the provider's public key (as JWKS JSON and as the modulus bytes)
    let jwks: Value = reqwest::get(format!("{}/protocol/openid-connect/certs", service_env("CF_TEST_OIDC_ISSUER"))).await.unwrap().json().await.unwrap();
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]).unwrap().clone();
    let hs = json!({"alg": "HS256", "typ": "JWT", "kid": header["kid"]});
    for secret in [jwk.to_string().into_bytes(), B64.decode(jwk["n"].as_str().unwrap()).unwrap()] {
        let input = format!("{}.{}", B64.encode(hs.to_string()), B64.encode(payload.to_string()));
        let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &secret), input.as_bytes());
        assert!(refuse(format!("{input}.{}", B64.encode(mac)), "HS256 with the public key").await.contains("HS256"));
    }
    // a changed claim under the original signature
    let mut other = payload.clone();
    other["tenant_id"] = json!("globex");
    let sig = good.rsplit('.').next().unwrap();
    let tampered = format!("{}.{}.{sig}", good.split('.').next().unwrap(), B64.encode(other.to_string()));
    assert!(refuse(tampered, "a tampered payload").await.contains("signature"));
    // the right claims, the wrong key; an unknown kid; a foreign issuer with its own valid key
    let rogue = DevIssuer::open(&dir.join("rogue"), payload["iss"].as_str().unwrap()).unwrap();
    assert!(refuse(rogue.sign_with_header(&header, &payload), "a forged signature").await.contains("signature"));
    assert!(refuse(rogue.sign(&payload), "an unknown kid").await.contains("unknown"));
    let foreign = DevIssuer::open(&dir.join("foreign"), "http://127.0.0.1:9/realms/evil").unwrap();
    let mut f = payload.clone();
    f["iss"] = json!(foreign.issuer);
    refuse(foreign.sign(&f), "a foreign issuer's token").await;
    // expiry, not-before and audience, all under a valid signature would need the provider's
    // key: the short-lived client and the other-audience client give real ones
    let wrong_aud = client_token("svc-otheraud", "otheraud-secret").await;
    assert!(refuse(wrong_aud, "the wrong audience").await.contains("audience"));
    let short = client_token("svc-shortlived", "shortlived-secret").await;
    assert!(auth.verify_jwt(&short).await.is_ok());
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert!(refuse(short, "an expired token").await.contains("expired"));
    // garbage
    for junk in ["", "a.b", "a.b.c.d", "!!!.???.***", &"x".repeat(9000)] {
        refuse(junk.to_string(), "garbage").await;
    }

    // Key rotation: a token under a new kid makes the verifier refetch the JWKS once.
    let before = auth.jwks.fetches();
    let rotated: Value = reqwest::Client::new().post(format!("{}/rotate", service_env("CF_TEST_OIDC_ADMIN"))).send().await.unwrap().json().await.unwrap();
    let fresh = client_token("svc-acme", "acme-secret").await;
    assert_eq!(parts(&fresh).0["kid"], rotated["kid"], "{rotated}");
    tokio::time::sleep(Duration::from_millis(1100)).await; // past min_refetch
    auth.verify_jwt(&fresh).await.expect("a rotated key is fetched");
    assert_eq!(auth.jwks.fetches(), before + 1);
    auth.verify_jwt(&good).await.expect("the old key is still listed");
    // made-up kids cannot make the server hammer the issuer
    let burst: Vec<_> = (0..20).map(|i| rogue.sign_with_header(&json!({"alg": "RS256", "kid": format!("nope-{i}")}), &payload)).collect();
    for t in burst {
        assert!(auth.verify_jwt(&t).await.is_err());
    }
    assert!(auth.jwks.fetches() <= before + 2, "{} fetches", auth.jwks.fetches() - before);
    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}
