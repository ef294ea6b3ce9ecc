//! One contract for every VectorStore: the Qdrant REST API (scripts/services.sh up qdrant starts
//! the test server around the real Qdrant engine) and the embedded LocalVectors twin.

mod common;

use callfunnel_data::DataError;
use callfunnel_data::vectors::{LocalVectors, QdrantVectors, VectorPoint, VectorStore};
use common::{service_env, unique};
use serde_json::json;
use uuid::Uuid;

fn qdrant() -> QdrantVectors {
    QdrantVectors::new(&service_env("CF_TEST_QDRANT_URL"), Some(&service_env("CF_TEST_QDRANT_API_KEY"))).expect("client")
}

fn tmpdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(unique("cf-vectors"));
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

fn pt(kb: &str, doc: &str, text: &str, v: &[f32]) -> VectorPoint {
    VectorPoint { id: Uuid::new_v4(), kb_id: kb.into(), doc_id: doc.into(), text: text.into(), vector: v.to_vec(), extra: json!({"src": text}) }
}

async fn tenant_isolation(s: &dyn VectorStore) {
    let c = s.ensure_collection(&unique("iso"), 3).await.expect("collection");
    let (a, b) = (unique("ta"), unique("tb"));
    s.upsert(&a, &c, &[pt("kb1", "doc1", "a1", &[1.0, 0.0, 0.0]), pt("kb1", "doc2", "a2", &[0.0, 1.0, 0.0])]).await.expect("upsert a");
    s.upsert(&b, &c, &[pt("kb1", "doc1", "b1", &[1.0, 0.0, 0.0])]).await.expect("upsert b");
    let hits = s.search(&a, &c, &[1.0, 0.0, 0.0], 10, Some("kb1")).await.expect("search a");
    let texts: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
    assert_eq!(texts, ["a1", "a2"], "tenant A sees exactly its own points");
    let hits = s.search(&b, &c, &[0.0, 1.0, 0.0], 10, None).await.expect("search b");
    assert_eq!(hits.iter().map(|h| h.text.as_str()).collect::<Vec<_>>(), ["b1"]);
    assert!(s.search(&unique("tc"), &c, &[1.0, 0.0, 0.0], 10, None).await.expect("search c").is_empty());
    assert_eq!(s.count(&a, &c).await.expect("count"), 2);
    assert_eq!(s.count(&b, &c).await.expect("count"), 1);
    // B deleting "doc1" removes only B's doc1
    s.delete_document(&b, &c, "doc1").await.expect("delete");
    assert_eq!(s.count(&b, &c).await.expect("count"), 0);
    assert_eq!(s.count(&a, &c).await.expect("count"), 2);
}

async fn kb_filter(s: &dyn VectorStore) {
    let c = s.ensure_collection(&unique("kb"), 2).await.expect("collection");
    let t = unique("t");
    s.upsert(&t, &c, &[pt("sales", "d1", "s", &[1.0, 0.0]), pt("support", "d2", "p", &[1.0, 0.1])]).await.expect("upsert");
    let hits = s.search(&t, &c, &[1.0, 0.0], 5, Some("support")).await.expect("search");
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].kb_id.as_str(), hits[0].doc_id.as_str(), hits[0].text.as_str()), ("support", "d2", "p"));
    assert_eq!(hits[0].extra, json!({"src": "p"}));
    assert_eq!(s.search(&t, &c, &[1.0, 0.0], 5, None).await.expect("search").len(), 2);
    assert!(s.search(&t, &c, &[1.0, 0.0], 5, Some("nothing")).await.expect("search").is_empty());
}

async fn top_k_by_cosine(s: &dyn VectorStore) {
    let c = s.ensure_collection(&unique("topk"), 2).await.expect("collection");
    let t = unique("t");
    // angles 0°, 30°, 60°, 90°, 180° from the query [1, 0]; lengths differ (cosine ignores them)
    let deg = |d: f32, len: f32| [len * d.to_radians().cos(), len * d.to_radians().sin()];
    let pts = [pt("k", "d", "60", &deg(60.0, 3.0)), pt("k", "d", "0", &deg(0.0, 0.5)), pt("k", "d", "180", &deg(180.0, 1.0)),
        pt("k", "d", "90", &deg(90.0, 2.0)), pt("k", "d", "30", &deg(30.0, 7.0))];
    s.upsert(&t, &c, &pts).await.expect("upsert");
    let hits = s.search(&t, &c, &[2.0, 0.0], 3, None).await.expect("search");
    assert_eq!(hits.iter().map(|h| h.text.as_str()).collect::<Vec<_>>(), ["0", "30", "60"]);
    for (h, want) in hits.iter().zip([1.0f32, 0.866_025, 0.5]) {
        assert!((h.score - want).abs() < 1e-3, "score {} for {} (want {want})", h.score, h.text);
    }
    let all = s.search(&t, &c, &[2.0, 0.0], 10, None).await.expect("search");
    assert_eq!(all.last().map(|h| h.text.as_str()), Some("180"));
    assert!((all[4].score + 1.0).abs() < 1e-3);
}

async fn delete_and_replace(s: &dyn VectorStore) {
    let c = s.ensure_collection(&unique("del"), 2).await.expect("collection");
    let t = unique("t");
    let mut keep = pt("k", "keep", "old", &[0.0, 1.0]);
    s.upsert(&t, &c, &[pt("k", "gone", "g1", &[1.0, 0.0]), pt("k", "gone", "g2", &[1.0, 1.0]), keep.clone()]).await.expect("upsert");
    s.delete_document(&t, &c, "gone").await.expect("delete");
    let hits = s.search(&t, &c, &[1.0, 0.0], 10, None).await.expect("search");
    assert_eq!(hits.iter().map(|h| h.doc_id.as_str()).collect::<Vec<_>>(), ["keep"]);
    keep.text = "new".into(); // same id: replaced, not added
    s.upsert(&t, &c, &[keep.clone()]).await.expect("re-upsert");
    assert_eq!(s.count(&t, &c).await.expect("count"), 1);
    let hits = s.search(&t, &c, &[0.0, 1.0], 1, None).await.expect("search");
    assert_eq!((hits[0].id, hits[0].text.as_str()), (keep.id, "new"));
}

async fn dimension_checked(s: &dyn VectorStore) {
    let model = unique("dim");
    let c = s.ensure_collection(&model, 4).await.expect("collection");
    assert_eq!(s.ensure_collection(&model, 4).await.expect("again"), c, "ensure_collection is idempotent");
    let t = unique("t");
    let err = s.upsert(&t, &c, &[pt("k", "d", "ok", &[1.0, 0.0, 0.0, 0.0]), pt("k", "d", "bad", &[1.0, 0.0, 0.0])]).await;
    assert!(matches!(err, Err(DataError::Invalid { .. })), "{err:?}");
    assert_eq!(s.count(&t, &c).await.expect("count"), 0, "nothing written from a refused batch");
    let err = s.search(&t, &c, &[1.0, 0.0], 3, None).await;
    assert!(matches!(err, Err(DataError::Invalid { .. })), "{err:?}");
    assert!(matches!(s.ensure_collection(&model, 0).await, Err(DataError::Invalid { .. })));
    assert!(matches!(s.search("../x", &c, &[1.0; 4], 3, None).await, Err(DataError::InvalidId(_))));
    assert!(matches!(s.count(&t, "kb_never_made_3").await, Err(DataError::NotFound { .. })));
}

macro_rules! contract {
    ($($name:ident),*) => {
        mod on_qdrant { use super::*; $( #[tokio::test] async fn $name() { super::$name(&qdrant()).await; } )* }
        mod on_local { use super::*; $( #[tokio::test] async fn $name() { super::$name(&LocalVectors::open(tmpdir()).expect("open")).await; } )* }
    };
}
contract!(tenant_isolation, kb_filter, top_k_by_cosine, delete_and_replace, dimension_checked);

#[tokio::test]
async fn local_twin_persists_across_reopen() {
    let dir = tmpdir();
    let t = unique("t");
    let (c, kept) = {
        let s = LocalVectors::open(&dir).expect("open");
        let c = s.ensure_collection("persist-model", 2).await.expect("collection");
        let kept = pt("k", "d1", "kept", &[1.0, 0.0]);
        s.upsert(&t, &c, &[kept.clone(), pt("k", "d2", "deleted", &[0.0, 1.0])]).await.expect("upsert");
        s.delete_document(&t, &c, "d2").await.expect("delete");
        (c, kept)
    };
    // a torn last line (crash mid-append) is dropped on reopen
    let log = dir.join(&c).join("log.jsonl");
    std::fs::write(&log, format!("{}{{\"op\":\"upse", std::fs::read_to_string(&log).expect("log"))).expect("tear");
    let s = LocalVectors::open(&dir).expect("reopen");
    assert_eq!(s.ensure_collection("persist-model", 2).await.expect("collection"), c);
    let hits = s.search(&t, &c, &[1.0, 0.0], 5, None).await.expect("search");
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].id, hits[0].text.as_str(), &hits[0].extra), (kept.id, "kept", &kept.extra));
    s.upsert(&t, &c, &[pt("k", "d3", "after", &[0.0, 1.0])]).await.expect("append after repair");
    assert_eq!(LocalVectors::open(&dir).expect("reopen").count(&t, &c).await.expect("count"), 2);
}

#[tokio::test]
async fn qdrant_refuses_a_wrong_api_key() {
    let s = QdrantVectors::new(&service_env("CF_TEST_QDRANT_URL"), Some("wrong-key")).expect("client");
    let err = s.ensure_collection(&unique("key"), 3).await.expect_err("refused");
    assert!(matches!(err, DataError::Backend { .. }), "{err:?}");
    assert!(!format!("{err} {s:?}").contains("wrong-key"), "the key never shows in errors or Debug");
}

/// The official qdrant-client SDK accepts the test server's answers (they are parsed with
/// Qdrant's OpenAPI models) and gets Qdrant's results: the server is faithful for our calls.
#[test]
fn qdrant_test_server_passes_the_official_sdk_check() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/services/qdrant_sdk_check.py");
    let out = std::process::Command::new(service_env("CF_TEST_QDRANT_PYTHON"))
        .args([script, &service_env("CF_TEST_QDRANT_URL"), &service_env("CF_TEST_QDRANT_API_KEY")])
        .output()
        .expect("run the SDK check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("sdk check ok"), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
}

/// Like Qdrant, the test server refuses bodies that its OpenAPI schema refuses (so a request
/// our client got wrong cannot pass here and fail on a real Qdrant).
#[tokio::test]
async fn qdrant_test_server_validates_bodies_against_the_schema() {
    let url = service_env("CF_TEST_QDRANT_URL");
    let key = service_env("CF_TEST_QDRANT_API_KEY");
    let s = QdrantVectors::new(&url, Some(&key)).expect("client");
    let c = s.ensure_collection(&unique("schema"), 2).await.expect("collection");
    let http = reqwest::Client::new();
    let bad = [
        ("PUT", format!("/collections/{}", unique("x")), json!({"vectors": {"size": "two", "distance": "Cosine"}})),
        ("PUT", format!("/collections/{c}/points"), json!({"points": [{"id": "not-a-uuid", "vector": [1.0, 0.0]}]})),
        ("POST", format!("/collections/{c}/points/query"), json!({"query": [1.0, 0.0], "limitt": 3})),
        ("POST", format!("/collections/{c}/points/delete"), json!({"filter": {"must": [{"key": "doc_id", "match": {"valu": "d"}}]}})),
        ("PUT", format!("/collections/{c}/index"), json!({"field_name": "tenant_id", "field_schema": "keywords"})),
    ];
    for (method, path, body) in bad {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let r = http.request(m, format!("{url}{path}")).header("api-key", &key).json(&body).send().await.expect("send");
        assert_eq!(r.status(), 400, "{method} {path} {body}");
        let v: serde_json::Value = r.json().await.expect("json");
        assert!(v.pointer("/status/error").and_then(|e| e.as_str()).is_some_and(|e| e.contains("Format error")), "{v}");
    }
}
