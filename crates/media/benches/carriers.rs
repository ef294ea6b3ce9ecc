//! Per-frame cost of the telephony pieces that run on every frame of a call:
//! `cargo bench -p callfunnel-media --bench carriers`. Prints a Markdown table (median and p99
//! per call of each operation, over many runs).

use std::time::Instant;

use base64::Engine as _;
use callfunnel_media::carrier::MediaCodec;
use callfunnel_media::dsp::beep::BeepDetector;
use callfunnel_media::dsp::dtmf::DtmfDetector;
use callfunnel_media::engine::CarrierOut;
use callfunnel_media::exotel::ExotelCodec;
use callfunnel_media::twilio::TwilioCodec;

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[((v.len() as f64 * 0.99) as usize).min(v.len() - 1)])
}

fn bench(what: &str, n: usize, mut f: impl FnMut(usize)) {
    let warm = n / 10;
    for i in 0..warm {
        f(i);
    }
    let mut v = Vec::with_capacity(n);
    for i in warm..warm + n {
        let t = Instant::now();
        f(i);
        v.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (p50, p99) = stats(v);
    println!("| {what} | {p50:.2} µs | {p99:.2} µs | {n} |");
}

fn speechlike(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let f0 = 120.0 + 80.0 * (t * 1.3).sin().abs();
            let v: f32 = (1..12).map(|h| (2.0 * std::f32::consts::PI * f0 * h as f32 * t).sin() / h as f32).sum();
            (v * 9000.0) as i16
        })
        .collect()
}

fn main() {
    let audio = speechlike(8000 * 20);
    let frames: Vec<&[i16]> = audio.chunks(160).collect();
    println!("| operation (per call) | p50 | p99 | runs |\n|---|---|---|---|");
    let mut beep = BeepDetector::new(8000);
    bench("beep detector, one 20 ms frame", 20_000, |i| {
        std::hint::black_box(beep.push(frames[i % frames.len()]));
    });
    let mut dtmf = DtmfDetector::new(8000);
    bench("DTMF detector, one 20 ms frame", 20_000, |i| {
        std::hint::black_box(dtmf.push(frames[i % frames.len()]));
    });

    let mut tw = TwilioCodec::default();
    tw.decode(r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"customParameters":{},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#).unwrap();
    let payload = base64::engine::general_purpose::STANDARD.encode(callfunnel_media::dsp::g711::mulaw_encode_all(frames[3]));
    let tw_msgs: Vec<String> = (0..40_000).map(|i| format!(r#"{{"event":"media","sequenceNumber":"{}","streamSid":"MZ1","media":{{"track":"inbound","chunk":"{i}","timestamp":"{}","payload":"{payload}"}}}}"#, i + 2, i * 20)).collect();
    bench("Twilio: decode one inbound 20 ms media message", 20_000, |i| {
        std::hint::black_box(tw.decode(&tw_msgs[i]).unwrap());
    });
    let mut out = Vec::new();
    bench("Twilio: encode one outbound 20 ms frame", 20_000, |i| {
        out.clear();
        tw.encode(&CarrierOut::Audio(frames[i % frames.len()].to_vec()), &mut out);
    });

    let mut ex = ExotelCodec::default();
    ex.decode(r#"{"event":"start","sequence_number":"1","stream_sid":"S1","start":{"stream_sid":"S1","call_sid":"C1","account_sid":"A1","from":"+91","to":"+91","media_format":{"encoding":"audio/x-raw","sample_rate":"8000","bit_rate":"16"}}}"#).unwrap();
    let pcm: Vec<u8> = audio[..800].iter().flat_map(|s| s.to_le_bytes()).collect();
    let p = base64::engine::general_purpose::STANDARD.encode(&pcm);
    let ex_msgs: Vec<String> = (0..40_000).map(|i| format!(r#"{{"event":"media","sequence_number":"{}","stream_sid":"S1","media":{{"chunk":"{i}","timestamp":"{}","payload":"{p}"}}}}"#, i + 2, i * 100)).collect();
    bench("Exotel: decode one inbound 100 ms PCM16 message", 20_000, |i| {
        std::hint::black_box(ex.decode(&ex_msgs[i]).unwrap());
    });
    bench("Exotel: encode one outbound 20 ms frame (into 3.2 KB chunks)", 20_000, |i| {
        out.clear();
        ex.encode(&CarrierOut::Audio(frames[i % frames.len()].to_vec()), &mut out);
    });
}
