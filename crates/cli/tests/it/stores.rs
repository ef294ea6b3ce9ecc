//! The server on the production data plane: PostgreSQL (control store: the call's usage in the
//! ledger, exactly once), Redis (active-call leases), S3 (recordings uploaded while the call
//! runs), Vault (the Twilio auth token comes from there, not from the environment) and Qdrant,
//! all real servers started by `scripts/services.sh`.

use std::collections::HashMap;
use std::time::Duration;

use callfunnel_ai::cloud::StaticSecrets;
use callfunnel_control::config::{S3Config, VaultConfig};
use callfunnel_data::hot::{HotState, RedisHotState};
use callfunnel_data::recordings::{RecordingStore, S3Config as S3, S3Recordings};
use callfunnel_data::secrets::{Secret, SecretStore, VaultAuth, VaultConfig as Vault, VaultSecrets};
use serde_json::{json, Value};

use super::telephony::{rig_with, TOKEN};

/// Where `scripts/services.sh up` left the servers (the environment overrides).
pub(crate) fn service_env(key: &str) -> String {
    if let Ok(v) = std::env::var(key) {
        return v;
    }
    let dir = std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/callfunnel/services");
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        for line in std::fs::read_to_string(e.path()).unwrap_or_default().lines() {
            if let Some((k, v)) = line.split_once('=') {
                if k == key {
                    return v.to_string();
                }
            }
        }
    }
    panic!("{key} unknown: run `scripts/services.sh up` (make test does)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_on_the_production_data_plane() {
    let run = format!("st{}", std::process::id());
    let (vault_addr, root) = (service_env("CF_TEST_VAULT_ADDR"), service_env("CF_TEST_VAULT_TOKEN"));
    // The platform's Twilio token lives in Vault only: signed callbacks pass only if it is read there.
    let vault = VaultSecrets::new(Vault::new(vault_addr.clone(), VaultAuth::Token(Secret::new(root.clone())))).unwrap();
    vault.put("platform", "twilio_auth_token", &Secret::new(TOKEN)).await.unwrap();

    let s3 = S3 {
        endpoint: service_env("CF_TEST_S3_ENDPOINT"),
        region: service_env("CF_TEST_S3_REGION"),
        bucket: service_env("CF_TEST_S3_BUCKET"),
        access_key: service_env("CF_TEST_S3_ACCESS_KEY"),
        secret_key: service_env("CF_TEST_S3_SECRET_KEY"),
    };
    let (redis_url, prefix) = (service_env("CF_TEST_REDIS_URL"), format!("cf-it-{run}"));
    let creds = HashMap::from([
        ("CALLFUNNEL_VAULT_TOKEN".to_string(), root.clone()),
        ("CALLFUNNEL_S3_SECRET_ACCESS_KEY".to_string(), s3.secret_key.clone()),
        ("CALLFUNNEL_QDRANT_API_KEY".to_string(), service_env("CF_TEST_QDRANT_API_KEY")),
    ]);
    let secrets = StaticSecrets::default().with("exotel_api_key", "key").with("exotel_api_token", "tok").with("exotel_stream_auth", "bot:pw");
    let s3c = s3.clone();
    let rig = rig_with(
        "stores",
        |c| {
            c.agents.default_tenant = run.clone();
            c.stores.postgres_url = Some(service_env("CF_TEST_POSTGRES_URL"));
            c.stores.redis_url = Some(redis_url.clone());
            c.stores.redis_prefix = Some(prefix.clone());
            c.stores.node_id = Some("node-a".into());
            c.stores.qdrant_url = Some(service_env("CF_TEST_QDRANT_URL"));
            c.stores.s3 = Some(S3Config { endpoint: s3c.endpoint.clone(), bucket: s3c.bucket.clone(), region: s3c.region.clone(), access_key_id: s3c.access_key.clone(), keep_local: false });
            c.stores.vault = Some(VaultConfig { addr: vault_addr.clone(), auth: "token".into(), ..Default::default() });
        },
        secrets,
        creds,
    )
    .await;
    let backends: HashMap<_, _> = rig.server.state.stores.backends.iter().cloned().collect();
    assert_eq!((backends["control"], backends["hot"], backends["recordings"], backends["secrets"], backends["vectors"]), ("postgres", "redis", "s3", "vault", "qdrant"));

    // A person answers and talks; while the call runs its lease is counted in Redis.
    let hot = RedisHotState::connect(&redis_url, &prefix).await.unwrap();
    let placed = rig.place(json!({"to": "+15550001"})).await;
    let id = placed["call_id"].as_str().unwrap().to_string();
    let mut seen_live = false;
    for _ in 0..400 {
        // the lease is taken when the call is placed (admission), the placement when it connects
        if hot.active_calls_node("node-a").await.unwrap() == 1 && hot.call_node(&id).await.unwrap().as_deref() == Some("node-a") {
            seen_live = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen_live, "the live call never held a lease");
    let ev = rig.ended(&id).await;
    let kinds: Vec<&str> = ev.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"transcript"), "{kinds:?}");
    // Callbacks were signed with the token from Vault and accepted.
    assert!(ev.iter().any(|e| e["kind"] == "carrier_status" && e["data"]["status"] == "completed"), "{kinds:?}");
    assert_eq!(hot.active_calls_node("node-a").await.unwrap(), 0, "the lease is released");
    assert_eq!(hot.call_node(&id).await.unwrap(), None);

    // The recording went to S3 (uploaded while the call ran, finished at its end).
    let tenant = rig.server.state.calls.tenant_of(&id).await;
    let mut uploaded: Option<Value> = None;
    let mut last = Value::Null;
    for _ in 0..200 {
        let tl: Value = rig.http.get(format!("{}/v1/calls/{id}", rig.base)).send().await.unwrap().json().await.unwrap();
        last = tl.clone();
        uploaded = tl["events"].as_array().unwrap().iter().find(|e| e["kind"] == "recording_uploaded" || e["kind"] == "recording_upload_failed").cloned();
        if uploaded.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let uploaded = uploaded.unwrap_or_else(|| panic!("no upload event (tenant {tenant}): {:?}", kinds_of(&last)));
    assert_eq!(uploaded["kind"], "recording_uploaded", "{uploaded}");
    let store = S3Recordings::new(&s3).unwrap();
    let wav = store.get(&tenant, &id).await.unwrap();
    assert_eq!(uploaded["data"]["bytes"].as_u64(), Some(wav.len() as u64));
    let reader = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).unwrap();
    assert_eq!(reader.spec().channels, 2);
    assert!(reader.duration() > 8000 * 2, "the recording covers the call");
    let link = store.presign_get(&tenant, &id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(reqwest::get(&link).await.unwrap().bytes().await.unwrap().len(), wav.len());
    let spool = rig.server.state.config.data.dir.join("spool/recordings").join(&tenant).join(format!("{id}.wav"));
    assert!(!spool.exists(), "the spooled file is removed after a successful upload");

    // The call's usage is in the ledger, once, even when billed again (a retry or a replay).
    let control = rig.server.state.stores.control.clone();
    let mut totals = Vec::new();
    for _ in 0..100 {
        totals = control.usage_summary(&tenant, 0, i64::MAX).await.unwrap();
        if totals.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let get = |m: &str| totals.iter().filter(|t| t.metric.as_str() == m).map(|t| t.quantity).sum::<i64>();
    let usage_ev = ev.iter().find(|e| e["kind"] == "call_usage").expect("call_usage");
    assert_eq!(get("call_ms"), usage_ev["data"]["call_ms"].as_i64().unwrap(), "{totals:?}");
    assert!(get("stt_ms") > 500 && get("tts_characters") > 20, "{totals:?}");
    let usage: callfunnel_media::engine::CallUsage = serde_json::from_value(usage_ev["data"].clone()).unwrap();
    rig.server.state.calls.data.bill(&tenant, &id, &usage);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(control.usage_summary(&tenant, 0, i64::MAX).await.unwrap(), totals, "billed twice");
    rig.done();
}

fn kinds_of(tl: &Value) -> Vec<String> {
    tl["events"].as_array().map(|a| a.iter().map(|e| format!("{}#{}", e["kind"].as_str().unwrap_or(""), e["seq"])).collect()).unwrap_or_default()
}
