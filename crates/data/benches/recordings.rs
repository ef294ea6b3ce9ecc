//! Do recording uploads keep up with real time? `cargo bench -p callfunnel-data --bench
//! recordings -- [CALLS] [SECONDS] [SPEED]` (defaults 500 calls, 60 s, ×2) against the S3 test
//! server (`scripts/services.sh up s3`). Each simulated call grows its dual-channel 8 kHz WAV
//! (32 KB/s) SPEED times faster than real time, flushing once a second like the call's tap,
//! for 0.5× to 1.5× SECONDS (calls end at different times),
//! while `upload_growing_file` uploads it; at the end we measure how long after the call's end
//! its object is complete. If every upload finishes promptly at ×SPEED, real time (×1) has a
//! SPEED-fold margin.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callfunnel_data::recordings::{upload_growing_file, RecordingStore, S3Config, S3Recordings, UploadOptions};

fn service_env(key: &str) -> String {
    if let Ok(v) = std::env::var(key) {
        return v;
    }
    let dir = std::path::PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/callfunnel/services");
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        for line in std::fs::read_to_string(e.path()).unwrap_or_default().lines() {
            if let Some((k, v)) = line.split_once('=') {
                if k == key {
                    return v.to_string();
                }
            }
        }
    }
    panic!("{key} unknown: run `scripts/services.sh up s3`")
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (calls, secs, speed) = (arg(0, 500) as usize, arg(1, 60), arg(2, 2));
    let cfg = S3Config {
        endpoint: service_env("CF_TEST_S3_ENDPOINT"),
        region: service_env("CF_TEST_S3_REGION"),
        bucket: service_env("CF_TEST_S3_BUCKET"),
        access_key: service_env("CF_TEST_S3_ACCESS_KEY"),
        secret_key: service_env("CF_TEST_S3_SECRET_KEY"),
    };
    let store: Arc<dyn RecordingStore> = Arc::new(S3Recordings::new(&cfg).expect("s3"));
    let dir = std::env::temp_dir().join(format!("cf-bench-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tenant = format!("bench{}", std::process::id());
    let per_flush = 32_000 * speed as usize; // one second of call audio × SPEED
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..calls {
        let (store, dir, tenant) = (store.clone(), dir.clone(), tenant.clone());
        tasks.push(tokio::spawn(async move {
            let call = format!("call{i}");
            let path = dir.join(format!("{call}.wav"));
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let writer = {
                let path = path.clone();
                tokio::spawn(async move {
                    // stagger the calls over the first second, as real calls are
                    tokio::time::sleep(Duration::from_millis((i as u64 * 997) % 1000)).await;
                    let chunk = vec![0x11u8; per_flush];
                    // calls end at different times, as real ones do: 0.5× to 1.5× the length
                    let len = secs * (50 + (i as u64 * 37) % 101) / 100;
                    for s in 0..len.max(1) {
                        let p = path.clone();
                        let c = chunk.clone();
                        tokio::task::spawn_blocking(move || {
                            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&p).unwrap();
                            if s == 0 {
                                f.write_all(&[0u8; 44]).unwrap(); // the header, rewritten at the end
                            }
                            f.write_all(&c).unwrap();
                        })
                        .await
                        .unwrap();
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    let _ = tx.send(());
                    Instant::now()
                })
            };
            let opts = UploadOptions { delete_local: true, ..UploadOptions::default() };
            let report = upload_growing_file(store.as_ref(), &tenant, &call, &path, async move {
                let _ = rx.await;
            }, &opts)
            .await
            .expect("upload");
            let ended = writer.await.unwrap();
            (ended.elapsed().as_secs_f64() * 1000.0, report.bytes, report.parts)
        }));
    }
    let mut lags = Vec::new();
    let (mut bytes, mut multipart) = (0u64, 0usize);
    for t in tasks {
        let (lag, b, parts) = t.await.unwrap();
        lags.push(lag);
        bytes += b;
        multipart += usize::from(parts > 1);
    }
    let wall = t0.elapsed().as_secs_f64();
    println!("| calls | call length (mean) | speed | data uploaded | multipart calls | wall | upload lag after call end p50 / p99 / max |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {calls} | {secs} s | ×{speed} | {:.0} MB ({:.1} MB/s; real time for {calls} calls needs {:.1} MB/s) | {multipart} | {wall:.1} s | {:.0} / {:.0} / {:.0} ms |",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / wall,
        calls as f64 * 0.032,
        pct(&mut lags, 0.5),
        pct(&mut lags, 0.99),
        pct(&mut lags, 1.0)
    );
    for i in 0..calls {
        let _ = store.delete(&tenant, &format!("call{i}")).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
