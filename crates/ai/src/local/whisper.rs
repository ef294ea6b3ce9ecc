//! Whisper base through whisper.cpp (whisper-rs). Not a streaming model: each stream buffers
//! the caller's utterance and decodes it when the turn detector finalizes, on a blocking
//! thread with one decoder thread (many calls share few cores).

use std::sync::Arc;

use async_trait::async_trait;
use callfunnel_media_dsp::Resampler;
use tokio::sync::mpsc;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

use crate::models::ModelPaths;
use crate::{AiError, Result, SpeechToText, SttConfig, SttEvent, SttInput, SttStream};

/// Whisper's window: longer utterances keep their last 30 s.
const MAX_SECONDS: usize = 30;

pub struct WhisperStt {
    ctx: Arc<WhisperContext>,
    threads: i32,
}

impl WhisperStt {
    /// Loads the model with one decoder thread per utterance.
    pub fn load(paths: &ModelPaths) -> Result<Self> {
        Self::load_with_threads(paths, 1)
    }

    /// `threads` per decode: 2 halves latency for a single call on a 2-core box; 1 keeps many
    /// concurrent calls from contending (whisper.cpp's threads busy-wait).
    pub fn load_with_threads(paths: &ModelPaths, threads: usize) -> Result<Self> {
        let model = paths.whisper()?;
        whisper_rs::install_logging_hooks();
        let ctx = WhisperContext::new_with_params(&model, ctx_params()).map_err(|e| AiError::inference("whisper", format!("{}: {e}", model.display())))?;
        Ok(WhisperStt { ctx: Arc::new(ctx), threads: threads.clamp(1, 8) as i32 })
    }

    /// Transcribes 16 kHz mono audio (blocking).
    pub fn transcribe(&self, audio: &[f32], language: &str) -> Result<(String, f32)> {
        transcribe(&self.ctx, audio, language, self.threads)
    }
}

/// Flash attention on: with a reduced `audio_ctx` whisper.cpp's plain attention decodes
/// garbage ("and the") on short utterances; with flash attention the short context works.
fn ctx_params() -> WhisperContextParameters<'static> {
    let mut p = WhisperContextParameters::default();
    p.flash_attn(true);
    p
}

fn transcribe(ctx: &WhisperContext, audio: &[f32], language: &str, threads: i32) -> Result<(String, f32)> {
    if audio.len() < 1600 {
        return Ok((String::new(), 0.0));
    }
    let err = |e: whisper_rs::WhisperError| AiError::inference("whisper", e);
    let mut state = ctx.create_state().map_err(err)?;
    let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    p.set_n_threads(threads);
    p.set_language(Some(language));
    p.set_no_context(true);
    p.set_no_timestamps(true);
    p.set_single_segment(true);
    p.set_print_special(false);
    p.set_print_progress(false);
    p.set_print_realtime(false);
    p.set_print_timestamps(false);
    p.set_suppress_nst(true);
    p.set_temperature_inc(0.0);
    // Speech is ~4 tokens a second: a cap stops the repetition loops greedy decoding falls into.
    p.set_max_tokens((audio.len() as f64 / 16000.0 * 5.0) as i32 + 10);
    // Encode only as many frames as the audio needs (+3 s): a 2 s turn decodes in ~0.9 s
    // instead of ~5.7 s for the full 30 s window, at some cost in accuracy (BENCHMARKS.md).
    let secs = audio.len() as f64 / 16000.0;
    p.set_audio_ctx((((secs + 3.0) / 30.0 * 1500.0).ceil() as i32).clamp(64, 1500));
    // whisper.cpp wants at least ~1 s; pad short utterances with silence.
    let mut padded;
    let audio = if audio.len() < 16000 {
        padded = audio.to_vec();
        padded.resize(16000, 0.0);
        &padded[..]
    } else {
        audio
    };
    state.full(p, audio).map_err(err)?;
    let mut text = String::new();
    let mut no_speech = 0f32;
    for seg in state.as_iter() {
        no_speech = no_speech.max(seg.no_speech_probability());
        text.push_str(&seg.to_str_lossy().map_err(err)?);
    }
    let text = drop_repeats(&clean(&text));
    Ok((text, 1.0 - no_speech))
}

/// Drops whisper's non-speech annotations ("[BLANK_AUDIO]", "(music)") and squeezes spaces.
fn clean(text: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth = (depth - 1).max(0),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes consecutive repeats of a sentence ("Yes, please. Yes, please." → "Yes, please.").
fn drop_repeats(text: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '?' | '!') {
            let s = text[start..=i].trim();
            if !s.is_empty() && out.last().is_none_or(|l| !l.eq_ignore_ascii_case(s)) {
                out.push(s);
            }
            start = i + 1;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() && out.last().is_none_or(|l| !l.trim_end_matches(['.', '?', '!']).eq_ignore_ascii_case(rest)) {
        out.push(rest);
    }
    out.join(" ")
}

fn language_code(bcp47: &str) -> String {
    bcp47.split(['-', '_']).next().unwrap_or("en").to_lowercase()
}

#[async_trait]
impl SpeechToText for WhisperStt {
    fn name(&self) -> &'static str {
        "whisper-base"
    }

    async fn open(&self, config: SttConfig) -> Result<SttStream> {
        let (in_tx, mut in_rx) = mpsc::channel::<SttInput>(256);
        let (ev_tx, ev_rx) = mpsc::channel(16);
        let (ctx, threads) = (self.ctx.clone(), self.threads);
        let language = language_code(&config.language);
        let mut resampler = Resampler::new(config.sample_rate, 16000);
        tokio::spawn(async move {
            let mut buf: Vec<f32> = Vec::new();
            // A decode started at a pause, valid while no more audio arrives. Its text is also
            // sent at once as an interim result (the turn-taker's second opinion), unless audio
            // came in meanwhile.
            let mut early: Option<tokio::sync::oneshot::Receiver<Result<(String, f32)>>> = None;
            let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let decode = |audio: Vec<f32>| {
                let (ctx, lang) = (ctx.clone(), language.clone());
                tokio::task::spawn_blocking(move || transcribe(&ctx, &audio, &lang, threads))
            };
            while let Some(input) = in_rx.recv().await {
                match input {
                    SttInput::Audio(pcm) => {
                        early = None; // the caller went on: that transcript is stale
                        generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let x: Vec<f32> = pcm.iter().map(|&s| s as f32 / 32768.0).collect();
                        buf.extend(resampler.process(&x));
                        let max = MAX_SECONDS * 16000;
                        if buf.len() > max {
                            buf.drain(..buf.len() - max);
                        }
                    }
                    SttInput::Prepare => {
                        if early.is_none() && !buf.is_empty() {
                            let (tx, rx) = tokio::sync::oneshot::channel();
                            let job = decode(buf.clone());
                            let (events, gen_now, generation) = (ev_tx.clone(), generation.load(std::sync::atomic::Ordering::SeqCst), generation.clone());
                            tokio::spawn(async move {
                                let r = job.await.unwrap_or_else(|e| Err(AiError::inference("whisper", format!("task failed: {e}"))));
                                if let Ok((text, _)) = &r
                                    && !text.is_empty()
                                    && generation.load(std::sync::atomic::Ordering::SeqCst) == gen_now
                                {
                                    let _ = events.send(SttEvent::Interim { text: text.clone() }).await;
                                }
                                let _ = tx.send(r);
                            });
                            early = Some(rx);
                        }
                    }
                    SttInput::Finalize => {
                        // the final result is on its way: no interim for it
                        generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let audio = std::mem::take(&mut buf);
                        let result = match early.take() {
                            Some(rx) => rx.await.unwrap_or_else(|_| Err(AiError::inference("whisper", "task ended"))),
                            None => decode(audio).await.unwrap_or_else(|e| Err(AiError::inference("whisper", format!("task failed: {e}")))),
                        };
                        let (text, confidence) = result.unwrap_or_else(|e| {
                            tracing::error!(error = %e, "whisper failed");
                            (String::new(), 0.0)
                        });
                        if ev_tx.send(SttEvent::Final { text, confidence, flushed: true }).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(SttStream { input: in_tx, events: ev_rx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn espeak_8k(text: &str) -> Vec<i16> {
        let out = std::process::Command::new("espeak-ng").args(["-v", "en-us", "-s", "160", "--stdout", text]).output().expect("espeak-ng");
        let mut r = hound::WavReader::new(std::io::Cursor::new(out.stdout)).unwrap();
        let sr = r.spec().sample_rate;
        let x: Vec<f32> = r.samples::<i16>().map_while(|s| s.ok()).map(|s| s as f32 / 32768.0).collect();
        callfunnel_media_dsp::f32_to_i16(&Resampler::oneshot(&x, sr, 8000))
    }

    #[test]
    fn cleans_annotations() {
        assert_eq!(clean(" [BLANK_AUDIO] hello  (music) there "), "hello there");
        assert_eq!(language_code("en-US"), "en");
        assert_eq!(drop_repeats("Yes, please. Yes, please. Yes, please"), "Yes, please.");
        assert_eq!(drop_repeats("Hi. What are your hours? What are your hours?"), "Hi. What are your hours?");
        assert_eq!(drop_repeats("no punctuation"), "no punctuation");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transcribes_telephone_speech_per_utterance() {
        let stt = WhisperStt::load(&ModelPaths::default()).unwrap();
        let mut s = stt.open(SttConfig { language: "en-US".into(), sample_rate: 8000 }).await.unwrap();
        for text in ["What are your opening hours on Saturday?", "I would like to book an appointment."] {
            for chunk in espeak_8k(text).chunks(160) {
                s.input.send(SttInput::Audio(chunk.to_vec())).await.unwrap();
            }
            let t = std::time::Instant::now();
            s.input.send(SttInput::Prepare).await.unwrap();
            s.input.send(SttInput::Finalize).await.unwrap();
            let mut ev = s.events.recv().await.unwrap();
            let interim = if let SttEvent::Interim { text } = &ev { Some(text.clone()) } else { None };
            if interim.is_some() {
                ev = s.events.recv().await.unwrap(); // the decode finished before Finalize was seen
            }
            let SttEvent::Final { text: got, flushed, .. } = ev else { panic!("{ev:?}") };
            assert!(interim.is_none_or(|i| i == got), "one decode serves both");
            eprintln!("whisper: {got:?} in {:?}", t.elapsed());
            assert!(flushed);
            let norm = |x: &str| x.to_lowercase().chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect::<String>();
            let (want, got) = (norm(text), norm(&got));
            let hits = want.split_whitespace().filter(|w| got.split_whitespace().any(|g| g == *w)).count();
            // espeak-ng at 8 kHz through a reduced context: most words, not all.
            assert!(hits * 2 >= want.split_whitespace().count(), "heard {got:?} for {want:?}");
        }
        // A pause alone: the speculative decode's text arrives as an interim result, before any
        // Finalize; audio after the pause makes it stale (no interim), and Finalize decodes all.
        for chunk in espeak_8k("My name is Priya Shah.").chunks(160) {
            s.input.send(SttInput::Audio(chunk.to_vec())).await.unwrap();
        }
        s.input.send(SttInput::Prepare).await.unwrap();
        let ev = tokio::time::timeout(std::time::Duration::from_secs(20), s.events.recv()).await.unwrap().unwrap();
        let SttEvent::Interim { text } = ev else { panic!("{ev:?}") };
        assert!(text.to_lowercase().contains("name"), "{text}");
        s.input.send(SttInput::Finalize).await.unwrap();
        assert!(matches!(s.events.recv().await, Some(SttEvent::Final { flushed: true, .. })));
        for chunk in espeak_8k("I would like").chunks(160) {
            s.input.send(SttInput::Audio(chunk.to_vec())).await.unwrap();
        }
        s.input.send(SttInput::Prepare).await.unwrap();
        for chunk in espeak_8k("to book an appointment.").chunks(160) {
            s.input.send(SttInput::Audio(chunk.to_vec())).await.unwrap();
        }
        s.input.send(SttInput::Finalize).await.unwrap();
        let ev = s.events.recv().await.unwrap();
        let SttEvent::Final { text, .. } = ev else { panic!("a stale interim: {ev:?}") };
        assert!(text.to_lowercase().contains("appointment"), "{text}");
        // An empty utterance gives empty text, not a hallucination.
        s.input.send(SttInput::Finalize).await.unwrap();
        assert_eq!(s.events.recv().await, Some(SttEvent::Final { text: String::new(), confidence: 0.0, flushed: true }));
    }
}
