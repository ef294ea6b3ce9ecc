//! One contract for secret stores, run against OpenBao (`scripts/services.sh up openbao`,
//! AppRole and token auth) and the encrypted local file; then what only one backend has:
//! Vault policies, token renewal and re-login, the read cache, Kubernetes login (against a
//! stand-in Vault in this file), the local file's encryption and key handling.

mod common;

use std::time::Duration;

use callfunnel_data::DataError;
use callfunnel_data::secrets::{LocalSecrets, Secret, SecretStore, SecretsKey, VaultAuth, VaultConfig, VaultSecrets, is_permission_denied};

// ---------------------------------------------------------------- the shared contract

async fn crud(s: &dyn SecretStore, t1: &str, t2: &str) {
    assert_eq!(s.get(t1, "openai").await.unwrap(), None);
    assert_eq!(s.list(t1).await.unwrap(), Vec::<String>::new());
    s.put(t1, "openai", &Secret::new("sk-one")).await.unwrap();
    s.put(t1, "deepgram", &Secret::new("dg-1")).await.unwrap();
    assert_eq!(s.get(t1, "openai").await.unwrap().unwrap().expose(), "sk-one");
    s.put(t1, "openai", &Secret::new("sk-two")).await.unwrap();
    assert_eq!(s.get(t1, "openai").await.unwrap().unwrap().expose(), "sk-two", "put replaces");
    assert_eq!(s.list(t1).await.unwrap(), vec!["deepgram".to_string(), "openai".to_string()]);
    // the other tenant sees nothing of it, and its own secret of the same name is separate
    assert_eq!(s.get(t2, "openai").await.unwrap(), None);
    assert_eq!(s.list(t2).await.unwrap(), Vec::<String>::new());
    s.put(t2, "openai", &Secret::new("sk-other")).await.unwrap();
    assert_eq!(s.get(t1, "openai").await.unwrap().unwrap().expose(), "sk-two");
    assert_eq!(s.get(t2, "openai").await.unwrap().unwrap().expose(), "sk-other");
    assert!(s.delete(t1, "openai").await.unwrap());
    assert!(!s.delete(t1, "openai").await.unwrap(), "deleted twice");
    assert_eq!(s.get(t1, "openai").await.unwrap(), None);
    assert_eq!(s.list(t1).await.unwrap(), vec!["deepgram".to_string()]);
    assert_eq!(s.get(t2, "openai").await.unwrap().unwrap().expose(), "sk-other");
}

async fn bad_ids(s: &dyn SecretStore, t1: &str) {
    for (tenant, name) in [("../etc", "x"), (t1, "a/b"), (t1, ""), ("", "x"), (t1, "../../sys/policy")] {
        let r = s.put(tenant, name, &Secret::new("v")).await;
        assert!(matches!(r, Err(DataError::InvalidId(_))), "{tenant:?}/{name:?}: {r:?}");
        assert!(matches!(s.get(tenant, name).await, Err(DataError::InvalidId(_))));
    }
    assert!(matches!(s.list("a b").await, Err(DataError::InvalidId(_))));
}

async fn values_kept_exactly(s: &dyn SecretStore, t1: &str) {
    let odd = "line1\nline2 \"quoted\" ünïcödé \u{1F511} {\"json\": true}";
    s.put(t1, "odd", &Secret::new(odd)).await.unwrap();
    assert_eq!(s.get(t1, "odd").await.unwrap().unwrap().expose(), odd);
    s.put(t1, "empty", &Secret::new("")).await.unwrap();
    assert_eq!(s.get(t1, "empty").await.unwrap().unwrap().expose(), "");
}

macro_rules! contract {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn openbao_approle() {
                let (t1, t2) = (common::unique("t1"), common::unique("t2"));
                let bao = Bao::from_env().await;
                let store = bao.approle_store(&[&t1, &t2], "60s", "120s", Duration::ZERO).await;
                super::$name(&store, &t1, &t2).await;
            }
            #[tokio::test]
            async fn openbao_token() {
                let (t1, t2) = (common::unique("t1"), common::unique("t2"));
                let bao = Bao::from_env().await;
                let mut cfg = VaultConfig::new(&bao.addr, VaultAuth::Token(Secret::new(bao.root.clone())));
                cfg.cache_ttl = Duration::from_secs(30);
                super::$name(&VaultSecrets::new(cfg).unwrap(), &t1, &t2).await;
            }
            #[tokio::test]
            async fn local() {
                let dir = temp_dir();
                let store = LocalSecrets::open(dir.join("secrets.enc"), SecretsKey::random()).unwrap();
                super::$name(&store, "t1", "t2").await;
            }
        }
    };
}

async fn crud_contract(s: &dyn SecretStore, t1: &str, t2: &str) {
    crud(s, t1, t2).await;
}
async fn bad_ids_contract(s: &dyn SecretStore, t1: &str, _t2: &str) {
    bad_ids(s, t1).await;
}
async fn values_contract(s: &dyn SecretStore, t1: &str, _t2: &str) {
    values_kept_exactly(s, t1).await;
}
contract!(crud_contract);
contract!(bad_ids_contract);
contract!(values_contract);

#[test]
fn secret_is_redacted() {
    let s = Secret::new("sk-live-123");
    assert_eq!(format!("{s:?}"), "Secret(***)");
    assert_eq!(format!("{s}"), "Secret(***)");
    assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(***))");
    assert_eq!(s.expose(), "sk-live-123");
    let auth = VaultAuth::approle("role-1", Secret::new("secret-id-xyz"));
    assert!(!format!("{auth:?}").contains("secret-id-xyz"));
    assert!(!format!("{:?}", VaultAuth::Token(Secret::new("hvs.tok"))).contains("hvs.tok"));
    assert!(!format!("{:?}", SecretsKey::from_bytes([7; 32])).contains("BwcH"));
}

// ---------------------------------------------------------------- helpers

fn temp_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(common::unique("cf-secrets"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The OpenBao dev server, driven with its root token to set up what a test needs.
struct Bao {
    addr: String,
    root: String,
    http: reqwest::Client,
}

struct AppRole {
    mount: String,
    role_id: String,
    secret_id: String,
}

impl Bao {
    async fn from_env() -> Bao {
        Bao {
            addr: common::service_env("CF_TEST_VAULT_ADDR"),
            root: common::service_env("CF_TEST_VAULT_TOKEN"),
            http: reqwest::Client::new(),
        }
    }

    async fn root(&self, method: reqwest::Method, path: &str, body: serde_json::Value) -> serde_json::Value {
        let mut req = self.http.request(method, format!("{}/v1/{path}", self.addr)).header("X-Vault-Token", &self.root);
        if !body.is_null() {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .expect("OpenBao reachable");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "root {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    /// A fresh policy allowing only the given tenants' paths; returns its name.
    async fn policy(&self, tenants: &[&str]) -> String {
        let mut policy = String::new();
        for t in tenants {
            policy += &format!(
                "path \"secret/data/tenants/{t}/*\" {{ capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }}\n\
                 path \"secret/metadata/tenants/{t}/*\" {{ capabilities = [\"read\", \"delete\", \"list\"] }}\n"
            );
        }
        let name = common::unique("policy");
        self.root(reqwest::Method::PUT, &format!("sys/policies/acl/{name}"), serde_json::json!({ "policy": policy })).await;
        name
    }

    /// A fresh AppRole mount (its tokens can be revoked without touching other tests) with a
    /// role whose policy allows only the given tenants' paths.
    async fn approle(&self, tenants: &[&str], ttl: &str, max_ttl: &str) -> AppRole {
        use reqwest::Method;
        let mount = common::unique("approle");
        self.root(Method::POST, &format!("sys/auth/{mount}"), serde_json::json!({"type": "approle"})).await;
        let name = self.policy(tenants).await;
        let role = format!("auth/{mount}/role/callfunnel");
        let cfg = serde_json::json!({"token_policies": [name], "token_ttl": ttl, "token_max_ttl": max_ttl});
        self.root(Method::POST, &role, cfg).await;
        let role_id = self.root(Method::GET, &format!("{role}/role-id"), serde_json::Value::Null).await;
        let secret_id = self.root(Method::POST, &format!("{role}/secret-id"), serde_json::json!({})).await;
        AppRole {
            mount,
            role_id: role_id["data"]["role_id"].as_str().expect("role_id").to_string(),
            secret_id: secret_id["data"]["secret_id"].as_str().expect("secret_id").to_string(),
        }
    }

    fn store(&self, r: &AppRole, cache_ttl: Duration) -> VaultSecrets {
        let auth = VaultAuth::AppRole { mount: r.mount.clone(), role_id: r.role_id.clone(), secret_id: Secret::new(r.secret_id.clone()) };
        let mut cfg = VaultConfig::new(&self.addr, auth);
        cfg.cache_ttl = cache_ttl;
        VaultSecrets::new(cfg).unwrap()
    }

    async fn approle_store(&self, tenants: &[&str], ttl: &str, max_ttl: &str, cache_ttl: Duration) -> VaultSecrets {
        let r = self.approle(tenants, ttl, max_ttl).await;
        self.store(&r, cache_ttl)
    }
}

// ---------------------------------------------------------------- Vault only

#[tokio::test]
async fn vault_policy_confines_a_tenant() {
    let bao = Bao::from_env().await;
    let (mine, theirs) = (common::unique("own"), common::unique("other"));
    let r = bao.approle(&[&mine], "60s", "120s").await;
    let store = bao.store(&r, Duration::ZERO);
    store.put(&mine, "openai", &Secret::new("sk-mine")).await.unwrap();
    assert_eq!(store.get(&mine, "openai").await.unwrap().unwrap().expose(), "sk-mine");
    let errors = [
        store.get(&theirs, "openai").await.unwrap_err(),
        store.put(&theirs, "openai", &Secret::new("x")).await.unwrap_err(),
        store.list(&theirs).await.unwrap_err(),
        store.delete(&theirs, "openai").await.unwrap_err(),
    ];
    for e in &errors {
        assert!(is_permission_denied(e), "{e}");
        let text = format!("{e} {e:?}");
        assert!(!text.contains(&r.secret_id) && !text.contains(&bao.root) && !text.contains("hvs."), "secret leaked: {text}");
    }
    // a wrong secret_id is refused at login, as a permission error
    let wrong = AppRole { secret_id: "not-the-secret-id".into(), ..r };
    let e = bao.store(&wrong, Duration::ZERO).get(&mine, "openai").await.unwrap_err();
    assert!(is_permission_denied(&e), "{e}");
    assert!(!format!("{e}").contains("not-the-secret-id"));
}

#[tokio::test]
async fn vault_token_renewal_outlives_the_ttl() {
    let bao = Bao::from_env().await;
    let t = common::unique("renew");
    let store = bao.approle_store(&[&t], "4s", "120s", Duration::ZERO).await;
    store.put(&t, "openai", &Secret::new("v")).await.unwrap();
    // 10 s of steady use with a 4 s token: it must be renewed, not replaced
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(store.get(&t, "openai").await.unwrap().unwrap().expose(), "v");
    }
    let stats = store.auth_stats();
    assert_eq!((stats.logins, stats.failed_renewals), (1, 0), "{stats:?}");
    assert!(stats.renewals >= 2, "{stats:?}");
}

#[tokio::test]
async fn vault_logs_in_again_when_the_token_is_gone() {
    let bao = Bao::from_env().await;
    let t = common::unique("relogin");
    // max TTL 2 s: the token cannot be renewed past it, so an idle store must log in again
    let r = bao.approle(&[&t], "2s", "2s").await;
    let store = bao.store(&r, Duration::ZERO);
    store.put(&t, "openai", &Secret::new("v")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(store.get(&t, "openai").await.unwrap().unwrap().expose(), "v");
    assert_eq!(store.auth_stats().logins, 2);

    // revoked behind the store's back (all tokens of this AppRole mount): 403, log in, retry
    let r2 = bao.approle(&[&t], "60s", "120s").await;
    let store = bao.store(&r2, Duration::ZERO);
    assert!(store.get(&t, "openai").await.unwrap().is_some());
    bao.root(reqwest::Method::PUT, &format!("sys/leases/revoke-prefix/auth/{}/login", r2.mount), serde_json::json!({})).await;
    assert_eq!(store.get(&t, "openai").await.unwrap().unwrap().expose(), "v");
    assert_eq!(store.auth_stats().logins, 2);
}

#[tokio::test]
async fn vault_read_cache_serves_within_its_ttl() {
    let bao = Bao::from_env().await;
    let t = common::unique("cache");
    let store = bao.approle_store(&[&t], "60s", "120s", Duration::from_millis(1500)).await;
    store.put(&t, "openai", &Secret::new("v1")).await.unwrap();
    assert_eq!(store.get(&t, "openai").await.unwrap().unwrap().expose(), "v1");
    // changed behind the store's back: the cached value is served until the TTL passes
    let path = format!("secret/data/tenants/{t}/providers/openai");
    bao.root(reqwest::Method::POST, &path, serde_json::json!({"data": {"value": "v2"}})).await;
    assert_eq!(store.get(&t, "openai").await.unwrap().unwrap().expose(), "v1", "served from the cache");
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(store.get(&t, "openai").await.unwrap().unwrap().expose(), "v2", "fetched again after the TTL");
    // writes and deletes through the store drop the cached entry at once
    store.put(&t, "openai", &Secret::new("v3")).await.unwrap();
    assert_eq!(store.get(&t, "openai").await.unwrap().unwrap().expose(), "v3");
    assert!(store.delete(&t, "openai").await.unwrap());
    assert_eq!(store.get(&t, "openai").await.unwrap(), None);
}

/// A tiny HTTP server on a loopback port: answers `n` requests with `reply(head, body)` and
/// returns their request lines.
async fn fake_http<F>(n: usize, reply: F) -> (String, tokio::task::JoinHandle<Vec<String>>)
where
    F: Fn(&str, &str) -> String + Send + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..n {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let got = sock.read(&mut chunk).await.unwrap();
                assert!(got > 0, "client closed early");
                buf.extend_from_slice(&chunk[..got]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()))
                        .unwrap_or(0);
                    if body.len() >= len {
                        break (head.to_string(), body.to_string());
                    }
                }
            };
            let out = reply(&head, &body);
            let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{out}", out.len());
            sock.write_all(resp.as_bytes()).await.unwrap();
            seen.push(head.lines().next().unwrap_or("").to_string());
        }
        seen
    });
    (addr, task)
}

/// A stand-in Vault: answers the Kubernetes login and one KV read, checking what it is sent.
async fn fake_vault(expect_role: &'static str, expect_jwt: String) -> (String, tokio::task::JoinHandle<Vec<String>>) {
    fake_http(2, move |head, body| {
        if head.starts_with("POST /v1/auth/kubernetes/login ") {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v, serde_json::json!({"role": expect_role, "jwt": expect_jwt}));
            r#"{"auth":{"client_token":"k8s-issued-token","lease_duration":3600,"renewable":true}}"#.to_string()
        } else {
            assert!(head.starts_with("GET /v1/secret/data/tenants/t1/providers/openai "), "{head}");
            assert!(head.to_ascii_lowercase().contains("x-vault-token: k8s-issued-token"), "{head}");
            r#"{"data":{"data":{"value":"sk-from-k8s"}}}"#.to_string()
        }
    })
    .await
}

#[tokio::test]
async fn vault_kubernetes_login_sends_the_service_account_jwt() {
    let dir = temp_dir();
    let jwt_path = dir.join("token");
    std::fs::write(&jwt_path, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2ln\n").unwrap();
    let (addr, server) = fake_vault("callfunnel", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2ln".into()).await;
    let auth = VaultAuth::Kubernetes { mount: "kubernetes".into(), role: "callfunnel".into(), jwt_path };
    let store = VaultSecrets::new(VaultConfig::new(addr, auth)).unwrap();
    assert_eq!(store.get("t1", "openai").await.unwrap().unwrap().expose(), "sk-from-k8s");
    let seen = server.await.unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(store.auth_stats().logins, 1);
    // a missing service-account token is a clear I/O error
    let missing = VaultAuth::Kubernetes { mount: "kubernetes".into(), role: "r".into(), jwt_path: dir.join("absent") };
    let e = VaultSecrets::new(VaultConfig::new("http://127.0.0.1:9", missing)).unwrap().get("t1", "x").await.unwrap_err();
    assert!(matches!(e, DataError::Io { .. }), "{e}");
}

/// A throwaway self-signed CA (public certificate only; its key was discarded). OpenBao wants
/// one for the Kubernetes API; the stand-in API speaks plain HTTP, so it is never used.
const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBmTCCAT+gAwIBAgIUVCVQoIrqPirg4K6+uKLaUymMJswwCgYIKoZIzj0EAwIw\nITEfMB0GA1UEAwwWY2FsbGZ1bm5lbC10ZXN0LWs4cy1jYTAgFw0yNjExMjUwNzUy\nMTNaGA8yMTI2MTEwMTA3NTIxM1owITEfMB0GA1UEAwwWY2FsbGZ1bm5lbC10ZXN0\nLWs4cy1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABKg+tyqRBQYnB4EUNiJc\nq/M91w6UPglictzS911mCUJTilYXCwn4wfjXSRPnnYGELFTgsdnSyI/iT2/bjtRc\n4yKjUzBRMB0GA1UdDgQWBBSWkiLg8l++nB8LM3Wh05MwW/sjITAfBgNVHSMEGDAW\ngBSWkiLg8l++nB8LM3Wh05MwW/sjITAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49\nBAMCA0gAMEUCIBHWWe81sY6PM0Mp0buQuEwhG3ZdxDwDGwtpFnI71xZXAiEAv/bS\nHYzLUuSj7/of5AbZ/Crll5+n66/gLMRtrWSR3/k=\n-----END CERTIFICATE-----";

/// OpenBao's own Kubernetes auth checks the store's login end to end; only the Kubernetes API
/// (its TokenReview endpoint) is a stand-in here, since no API server can run on this machine.
#[tokio::test]
async fn vault_kubernetes_login_against_openbao() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use reqwest::Method;
    use serde_json::json;
    let bao = Bao::from_env().await;
    let (t, other) = (common::unique("k8s"), common::unique("k8s-other"));
    let part = |v: serde_json::Value| B64.encode(v.to_string());
    let claims = json!({
        "iss": "kubernetes/serviceaccount",
        "sub": "system:serviceaccount:voice:callfunnel",
        "kubernetes.io/serviceaccount/namespace": "voice",
        "kubernetes.io/serviceaccount/service-account.name": "callfunnel",
        "kubernetes.io/serviceaccount/service-account.uid": "3f1c-uid",
    });
    let jwt = format!("{}.{}.{}", part(json!({"alg": "RS256", "typ": "JWT"})), part(claims), B64.encode(b"signature-checked-by-the-api"));
    let expect = jwt.clone();
    let (api, reviews) = fake_http(1, move |head, body| {
        assert!(head.starts_with("POST /apis/authentication.k8s.io/v1/tokenreviews "), "{head}");
        assert!(head.to_ascii_lowercase().contains("authorization: bearer reviewer-jwt"), "{head}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["spec"]["token"], json!(expect));
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": {"authenticated": true,
            "user": {"username": "system:serviceaccount:voice:callfunnel", "uid": "3f1c-uid", "groups": ["system:serviceaccounts"]}}})
        .to_string()
    })
    .await;
    let mount = common::unique("kubernetes");
    bao.root(Method::POST, &format!("sys/auth/{mount}"), json!({"type": "kubernetes"})).await;
    let cfg = json!({"kubernetes_host": api, "kubernetes_ca_cert": TEST_CA_PEM, "disable_local_ca_jwt": true,
        "token_reviewer_jwt": "reviewer-jwt"});
    bao.root(Method::POST, &format!("auth/{mount}/config"), cfg).await;
    let policy = bao.policy(&[&t]).await;
    let role = json!({"bound_service_account_names": ["callfunnel"], "bound_service_account_namespaces": ["voice"],
        "token_policies": [policy], "token_ttl": "60s"});
    bao.root(Method::POST, &format!("auth/{mount}/role/callfunnel"), role).await;
    let jwt_path = temp_dir().join("token");
    std::fs::write(&jwt_path, &jwt).unwrap();
    let auth = VaultAuth::Kubernetes { mount, role: "callfunnel".into(), jwt_path };
    let store = VaultSecrets::new(VaultConfig::new(&bao.addr, auth)).unwrap();
    store.put(&t, "openai", &Secret::new("sk-k8s")).await.unwrap();
    assert_eq!(store.get(&t, "openai").await.unwrap().unwrap().expose(), "sk-k8s");
    assert!(is_permission_denied(&store.get(&other, "openai").await.unwrap_err()));
    assert_eq!(reviews.await.unwrap().len(), 1, "one login, one TokenReview");
    assert_eq!(store.auth_stats().logins, 1);
}

// ---------------------------------------------------------------- local file only

#[tokio::test]
async fn local_file_is_encrypted_and_survives_reopening() {
    let dir = temp_dir();
    let path = dir.join("secrets.enc");
    let key = SecretsKey::random();
    let store = LocalSecrets::open(&path, key.clone()).unwrap();
    store.put("acme", "openai", &Secret::new("sk-plaintext-marker")).await.unwrap();
    let first = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(!text.contains("sk-plaintext-marker") && !text.contains("acme") && !text.contains("openai"));
    store.put("acme", "openai", &Secret::new("sk-plaintext-marker")).await.unwrap();
    assert_ne!(std::fs::read(&path).unwrap(), first, "same content, fresh nonce");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("secrets.enc")], "no temp file left behind");
    drop(store);
    let again = LocalSecrets::open(&path, key).unwrap();
    assert_eq!(again.get("acme", "openai").await.unwrap().unwrap().expose(), "sk-plaintext-marker");
}

#[tokio::test]
async fn local_wrong_key_is_refused_and_the_file_untouched() {
    let dir = temp_dir();
    let path = dir.join("secrets.enc");
    let store = LocalSecrets::open(&path, SecretsKey::random()).unwrap();
    store.put("acme", "openai", &Secret::new("v")).await.unwrap();
    let before = std::fs::read(&path).unwrap();
    let e = LocalSecrets::open(&path, SecretsKey::random()).unwrap_err();
    assert!(matches!(&e, DataError::Invalid { what: "secrets key", .. }), "{e}");
    assert!(e.to_string().contains("wrong key"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // not our format at all
    std::fs::write(dir.join("junk"), b"hello").unwrap();
    assert!(matches!(LocalSecrets::open(dir.join("junk"), SecretsKey::random()), Err(DataError::Corrupt { .. })));
}

#[test]
fn local_key_file_and_text() {
    let dir = temp_dir();
    let key_path = dir.join("secrets.key");
    let k1 = SecretsKey::from_file(&key_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let k2 = SecretsKey::from_file(&key_path).unwrap();
    assert_eq!(k1.to_base64(), k2.to_base64(), "the key file is reused, not replaced");
    assert_eq!(SecretsKey::from_base64(&k1.to_base64()).unwrap().to_base64(), k1.to_base64());
    let short = SecretsKey::from_base64("c2hvcnQta2V5").unwrap_err().to_string();
    assert!(short.contains("need 32") && !short.contains("c2hvcnQta2V5"), "{short}");
    assert!(SecretsKey::from_base64("not base64 !!").is_err());
    std::fs::write(dir.join("bad.key"), "too-short").unwrap();
    assert!(SecretsKey::from_file(&dir.join("bad.key")).is_err());
}
