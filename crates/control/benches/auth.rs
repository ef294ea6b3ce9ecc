//! What identity costs per request: `cargo bench --bench auth -- [N]` (default 3000).
//! JWT verification (parse, RS256 signature with a 2048-bit key, claims), call-token mint and
//! check (every media upgrade), webhook signing (1 KiB body), and a whole authenticated
//! `GET /v1/agents` over loopback HTTP on the embedded stores (token check, tenant lookup,
//! query, JSON).

use std::time::Instant;

use callfunnel_control::auth::{CallTokens, DevIssuer};
use callfunnel_control::{Config, Server};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

fn report(name: &str, mut us: Vec<f64>) {
    let mean = us.iter().sum::<f64>() / us.len() as f64;
    println!("{name:<44} n={:<6} mean {mean:>8.1} µs  p50 {:>8.1} µs  p99 {:>8.1} µs", us.len(), pct(&mut us, 0.5), pct(&mut us, 0.99));
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3000);
    let dir = std::env::temp_dir().join(format!("cf-bench-auth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = Config::default();
    cfg.server.listen = ([127, 0, 0, 1], 0).into();
    cfg.server.preload_models = false;
    cfg.data.dir = dir.clone();
    cfg.data.timeline = "memory".into();
    let stop = tokio_util::sync::CancellationToken::new();
    let s = Server::start(cfg, stop.clone()).await.unwrap();
    let auth = s.state.auth.clone();
    let dev: &DevIssuer = auth.dev.as_ref().unwrap();
    let tenant = s.state.config.agents.default_tenant.clone();
    let token = dev.token("bench", Some(&tenant), &["viewer"], "voice-api", 3600);

    let mut us = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        auth.verify_jwt(&token).await.unwrap();
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    report("JWT verify (RS256-2048, claims)", us);

    let tokens = CallTokens::new(b"0123456789abcdef0123456789abcdef", 600);
    let mut us = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("CA{i:032}");
        let t = Instant::now();
        let tok = tokens.mint(&id);
        tokens.check(&id, &tok).unwrap();
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    report("call token mint + check (HMAC-SHA256)", us);

    let body = vec![b'x'; 1024];
    let mut us = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        std::hint::black_box(callfunnel_control::webhooks::sign::sign("whsec_0123456789abcdef", i as i64, &body));
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    report("webhook signature (1 KiB body)", us);

    let http = reqwest::Client::new();
    let url = format!("http://{}/v1/agents", s.addr);
    for _ in 0..50 {
        http.get(&url).bearer_auth(&token).send().await.unwrap();
    }
    let mut us = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        r.bytes().await.unwrap();
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    report("GET /v1/agents over HTTP (JWT, SQLite)", us);
    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}
