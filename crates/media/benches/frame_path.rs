//! Criterion benchmarks of what runs on every 20 ms frame of every call, media side:
//! `cargo bench --workspace --bench frame_path`. G.711 µ-law both ways, the 8 → 16 kHz
//! resampler, a Twilio media message parsed and an outbound frame serialized.

use std::hint::black_box;

use base64::Engine as _;
use callfunnel_media::carrier::MediaCodec;
use callfunnel_media::dsp::g711::{mulaw_decode_all, mulaw_encode_all};
use callfunnel_media::engine::CarrierOut;
use callfunnel_media::twilio::TwilioCodec;
use callfunnel_media::dsp::Resampler;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// A 20 ms frame of something speech-like (two tones and a little noise).
fn frame() -> Vec<i16> {
    (0..160).map(|i| {
        let t = i as f32 / 8000.0;
        ((t * 2.0 * std::f32::consts::PI * 220.0).sin() * 6000.0 + (t * 2.0 * std::f32::consts::PI * 1250.0).sin() * 2500.0 + ((i * 7919) % 97) as f32) as i16
    }).collect()
}

fn benches(c: &mut Criterion) {
    let pcm = frame();
    let ulaw = mulaw_encode_all(&pcm);
    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Elements(1));
    g.bench_function("mulaw_encode_20ms", |b| b.iter(|| mulaw_encode_all(black_box(&pcm))));
    g.bench_function("mulaw_decode_20ms", |b| b.iter(|| mulaw_decode_all(black_box(&ulaw))));
    let mut up = Resampler::new(8000, 16000);
    g.bench_function("resample_8k_to_16k_20ms", |b| b.iter(|| up.process_i16(black_box(&pcm))));

    let mut tw = TwilioCodec::default();
    tw.decode(r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"customParameters":{},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#).unwrap();
    let payload = base64::engine::general_purpose::STANDARD.encode(&ulaw);
    // sequence numbers must grow (the codec refuses replays): each message is made untimed
    let mut seq = 1u64;
    g.bench_function("twilio_parse_media_message", |b| {
        b.iter_batched(
            || {
                seq += 1;
                format!(r#"{{"event":"media","sequenceNumber":"{seq}","streamSid":"MZ1","media":{{"track":"inbound","chunk":"{seq}","timestamp":"{}","payload":"{payload}"}}}}"#, seq * 20)
            },
            |m| tw.decode(black_box(&m)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let out_frame = CarrierOut::Audio(pcm.clone());
    let mut out = Vec::new();
    g.bench_function("twilio_serialize_outbound_frame", |b| {
        b.iter(|| {
            out.clear();
            tw.encode(black_box(&out_frame), &mut out);
        })
    });
    g.finish();
}

criterion_group!(frame_path, benches);
criterion_main!(frame_path);
