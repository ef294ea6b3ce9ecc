//! Criterion benchmarks of the AI side's per-frame and per-token work:
//! `cargo bench --workspace --bench provider_path`. One Silero VAD frame at 8 kHz (needs the
//! fetched models: `callfunnel models fetch`), and Anthropic-style SSE parsed as it streams in.

use std::hint::black_box;

use callfunnel_ai::VadFactory;
use callfunnel_ai::cloud::sse::SseParser;
use callfunnel_ai::local::silero::SileroVadFactory;
use callfunnel_ai::models::ModelPaths;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("provider_path");
    match SileroVadFactory::load(&ModelPaths::default()) {
        Ok(f) => {
            let mut vad = f.create(8000).expect("vad");
            let n = vad.frame_len();
            let frame: Vec<f32> = (0..n).map(|i| ((i as f32 * 0.07).sin() * 0.3)).collect();
            g.throughput(Throughput::Elements(1));
            g.bench_function("silero_vad_frame_8k", |b| b.iter(|| vad.process(black_box(&frame)).unwrap()));
        }
        Err(e) => eprintln!("silero_vad_frame_8k skipped: models not fetched ({e}); run `callfunnel models fetch`"),
    }
    // one streamed reply: 40 text deltas, delivered in 1 KiB network chunks
    let mut body = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":900}}}\n\n");
    for i in 0..40 {
        body.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"word{i} \"}}}}\n\n"));
    }
    body.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(1024).collect();
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("sse_parse_reply_40_deltas", |b| {
        b.iter(|| {
            let mut p = SseParser::default();
            let mut n = 0;
            for ch in &chunks {
                n += p.push(black_box(ch)).unwrap().len();
            }
            assert_eq!(n, 42);
        })
    });
    g.finish();
}

criterion_group!(provider_path, benches);
criterion_main!(provider_path);
