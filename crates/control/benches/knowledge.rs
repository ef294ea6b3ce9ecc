//! Embedded retrieval: `cargo bench --workspace --bench knowledge -- [CHUNKS] [QUERIES]`
//! (default 10,000 chunks, 300 queries). A knowledge base of CHUNKS 384-dimension chunks in the
//! embedded vector index (the first 200 real MiniLM embeddings of clinic sentences, the rest
//! random unit vectors so the index is full-size), then questions through the whole path:
//! MiniLM query embedding + exact tenant-filtered search, top 3. Needs the models
//! (`callfunnel models fetch`).

use std::time::Instant;

use callfunnel_ai::EmbedKind;
use callfunnel_control::{Config, Server};
use callfunnel_data::vectors::VectorPoint;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let nums: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (chunks, queries) = (nums.first().copied().unwrap_or(10_000), nums.get(1).copied().unwrap_or(300));
    let dir = std::env::temp_dir().join(format!("cf-bench-kb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = Config::default();
    cfg.server.listen = ([127, 0, 0, 1], 0).into();
    cfg.server.preload_models = false;
    cfg.data.dir = dir.clone();
    cfg.data.timeline = "memory".into();
    let stop = tokio_util::sync::CancellationToken::new();
    let s = Server::start(cfg, stop.clone()).await.unwrap();
    let tenant = s.state.config.agents.default_tenant.clone();
    let kb = s.state.stores.control.create_kb(&tenant, "bench", "Bench", "minilm-l6-v2", 384).await.unwrap();
    let embedder = s.state.hub.embedder(&tenant, "minilm-l6-v2", 384).await.unwrap();
    let sentences: Vec<String> = (0..200).map(|i| format!("Clinic fact number {i}: the {} service is available on day {} from {} am.", ["parking", "lab", "vaccine", "billing", "records"][i % 5], i % 7, 8 + i % 4)).collect();
    let real = embedder.embed(sentences.clone(), EmbedKind::Document).await.unwrap();
    let vs = &s.state.stores.vectors;
    let collection = vs.ensure_collection("minilm-l6-v2", 384).await.unwrap();
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let t = Instant::now();
    let mut batch = Vec::new();
    for i in 0..chunks {
        let (text, vector) = if i < real.len() {
            (sentences[i].clone(), real[i].clone())
        } else {
            let v: Vec<f32> = (0..384).map(|_| rnd()).collect();
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            (format!("filler chunk {i}"), v.into_iter().map(|x| x / n).collect())
        };
        batch.push(VectorPoint { id: uuid::Uuid::new_v4(), kb_id: kb.id.clone(), doc_id: format!("d{}", i / 20), text, vector, extra: serde_json::Value::Null });
        if batch.len() == 500 {
            vs.upsert(&tenant, &collection, &batch).await.unwrap();
            batch.clear();
        }
    }
    if !batch.is_empty() {
        vs.upsert(&tenant, &collection, &batch).await.unwrap();
    }
    println!("indexed {chunks} chunks in {:.1} s", t.elapsed().as_secs_f64());
    let qs = ["where do I park", "when is the lab open", "vaccine days", "how do I pay my bill", "copy of my records"];
    for q in qs {
        s.state.knowledge.search(&tenant, &kb, q, 3).await.unwrap(); // warm up
    }
    let (mut total, mut embed_only) = (Vec::new(), Vec::new());
    for i in 0..queries {
        let q = format!("{} please {i}", qs[i % qs.len()]);
        let t = Instant::now();
        embedder.embed(vec![q.clone()], EmbedKind::Query).await.unwrap();
        embed_only.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let hits = s.state.knowledge.search(&tenant, &kb, &q, 3).await.unwrap();
        total.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(hits.len(), 3);
    }
    println!("query embedding (MiniLM)          p50 {:.2} ms  p95 {:.2} ms", pct(&mut embed_only, 0.5), pct(&mut embed_only, 0.95));
    println!("retrieval (embed + search top 3)  p50 {:.2} ms  p95 {:.2} ms  max {:.2} ms  ({queries} queries over {chunks} chunks)", pct(&mut total, 0.5), pct(&mut total, 0.95), pct(&mut total, 1.0));
    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}
