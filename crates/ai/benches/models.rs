//! Model latency on this machine: `cargo bench -p callfunnel-ai --bench models`.
//! Prints a Markdown table (median and p99 over repeated runs). Needs the fetched models.

use std::time::Instant;

use callfunnel_ai::local::{minilm::MiniLm, piper::PiperTts, silero::SileroVadFactory, smart_turn::SmartTurn, whisper::WhisperStt};
use callfunnel_ai::models::ModelPaths;
use callfunnel_ai::VadFactory;
use callfunnel_media_dsp::Resampler;

fn espeak(text: &str, rate: u32) -> Vec<f32> {
    let out = std::process::Command::new("espeak-ng").args(["-v", "en-us", "--stdout", text]).output().expect("espeak-ng");
    let mut r = hound::WavReader::new(std::io::Cursor::new(out.stdout)).expect("wav");
    let sr = r.spec().sample_rate;
    let x: Vec<f32> = r.samples::<i16>().map_while(Result::ok).map(|s| s as f32 / 32768.0).collect();
    Resampler::oneshot(&x, sr, rate)
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[((v.len() as f64 * 0.99) as usize).min(v.len() - 1)])
}

fn row(what: &str, unit: &str, v: Vec<f64>) {
    let n = v.len();
    let (p50, p99) = stats(v);
    println!("| {what} | {p50:.1} {unit} | {p99:.1} {unit} | {n} |");
}

fn main() {
    let paths = ModelPaths::default();
    println!("| what | median | p99 | runs |\n|---|---|---|---|");
    let vad = SileroVadFactory::load(&paths).expect("silero");
    for rate in [8000u32, 16000] {
        let mut v = vad.create(rate).expect("vad");
        let audio = espeak("Hello, I would like to book an appointment for tomorrow morning, please.", rate);
        let n = v.frame_len();
        let mut t = Vec::new();
        for _ in 0..4 {
            for f in audio.chunks_exact(n) {
                let s = Instant::now();
                v.process(f).expect("vad");
                t.push(s.elapsed().as_secs_f64() * 1e6);
            }
        }
        row(&format!("Silero VAD v6, one {} ms frame at {} kHz", n * 1000 / rate as usize, rate / 1000), "µs", t);
    }
    let st = SmartTurn::load(&paths).expect("smart turn");
    let utt = espeak("I would like to book an appointment for tomorrow.", 16000);
    row("Smart Turn v3.2, one prediction (8 s window)", "ms", (0..20).map(|_| { let s = Instant::now(); st.probability(&utt).expect("st"); s.elapsed().as_secs_f64() * 1e3 }).collect());
    let words = espeak("I would like to book an appointment for tomorrow at three.", 16000);
    for threads in [1, 2] {
        let w = WhisperStt::load_with_threads(&paths, threads).expect("whisper");
        row(&format!("Whisper base, {:.1} s utterance, {threads} thread(s)", words.len() as f64 / 16000.0), "ms", (0..5).map(|_| { let s = Instant::now(); w.transcribe(&words, "en").expect("w"); s.elapsed().as_secs_f64() * 1e3 }).collect());
    }
    let piper = PiperTts::load(&paths).expect("piper");
    let mut rtf = Vec::new();
    row("Piper joe, first audio of a short sentence (phonemes + synthesis)", "ms", (0..8).map(|_| {
        let s = Instant::now();
        let (a, r) = piper.synthesize("Sure. Can I have your name, please?").expect("piper");
        let e = s.elapsed().as_secs_f64();
        rtf.push(e / (a.len() as f64 / r as f64));
        e * 1e3
    }).collect());
    row("Piper joe, real-time factor", "×", rtf);
    let m = MiniLm::load(&paths).expect("minilm");
    row("MiniLM-L6 embedding, one sentence", "ms", (0..30).map(|_| { let s = Instant::now(); m.embed_blocking(&["I'd like to book an appointment please".into()]).expect("e"); s.elapsed().as_secs_f64() * 1e3 }).collect());
}
