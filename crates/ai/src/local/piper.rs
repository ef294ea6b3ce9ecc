//! Piper TTS (the "joe" voice, VITS through ONNX Runtime) with espeak-ng phonemes. Text is
//! synthesized sentence by sentence as soon as each sentence is complete, so the first audio
//! comes after one sentence, not the whole reply; 22.05 kHz output is resampled for the call.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use callfunnel_media_dsp::Resampler;
use ort::session::Session;
use ort::value::Tensor;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{espeak, ort_env};
use crate::models::ModelPaths;
use crate::text::SentenceSplitter;
use crate::{AiError, Result, TextToSpeech, TtsChunk, TtsConfig, TtsEvent, TtsInput, TtsStream};

/// Audio is handed to the engine in chunks of this many milliseconds.
const CHUNK_MS: usize = 100;

#[derive(Deserialize)]
struct VoiceConfig {
    audio: AudioConfig,
    inference: Inference,
    phoneme_id_map: HashMap<String, Vec<i64>>,
    espeak: Option<EspeakConfig>,
}

#[derive(Deserialize)]
struct AudioConfig {
    sample_rate: u32,
}

#[derive(Deserialize)]
struct Inference {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

#[derive(Deserialize)]
struct EspeakConfig {
    voice: String,
}

struct Voice {
    sessions: Vec<Mutex<Session>>,
    ids: HashMap<char, Vec<i64>>,
    rate: u32,
    scales: [f32; 3],
    espeak_voice: String,
}

pub struct PiperTts {
    voice: Arc<Voice>,
}

impl PiperTts {
    pub fn load(paths: &ModelPaths) -> Result<Self> {
        ort_env::init(paths)?;
        let cfg_path = paths.piper_config()?;
        let cfg: VoiceConfig = serde_json::from_slice(&std::fs::read(&cfg_path)?).map_err(|e| AiError::Config(format!("{}: {e}", cfg_path.display())))?;
        let model = paths.piper_voice()?;
        let sessions = (0..ort_env::pool_size().min(2)).map(|_| ort_env::session("piper", &model, 1).map(Mutex::new)).collect::<Result<Vec<_>>>()?;
        let ids = cfg.phoneme_id_map.into_iter().filter_map(|(k, v)| { let mut c = k.chars(); match (c.next(), c.next()) { (Some(ch), None) => Some((ch, v)), _ => None } }).collect();
        let i = cfg.inference;
        Ok(PiperTts {
            voice: Arc::new(Voice {
                sessions,
                ids,
                rate: cfg.audio.sample_rate,
                scales: [i.noise_scale, i.length_scale, i.noise_w],
                espeak_voice: cfg.espeak.map_or_else(|| "en-us".to_string(), |e| e.voice),
            }),
        })
    }

    /// Synthesizes one sentence at the voice's native rate (blocking).
    pub fn synthesize(&self, sentence: &str) -> Result<(Vec<f32>, u32)> {
        Ok((self.voice.synthesize(sentence)?, self.voice.rate))
    }
}

impl Voice {
    /// Phoneme ids: BOS, PAD, then each phoneme followed by PAD, then EOS.
    fn phoneme_ids(&self, phonemes: &str) -> Vec<i64> {
        let id = |c: char| self.ids.get(&c).cloned().unwrap_or_default();
        let pad = id('_');
        let mut out = id('^');
        out.extend(&pad);
        for c in phonemes.chars() {
            if let Some(v) = self.ids.get(&c) {
                out.extend(v);
                out.extend(&pad);
            }
        }
        out.extend(id('$'));
        out
    }

    fn synthesize(&self, sentence: &str) -> Result<Vec<f32>> {
        let phonemes = espeak::phonemize(sentence, &self.espeak_voice)?;
        let ids = self.phoneme_ids(&phonemes);
        let err = |e: ort::Error| AiError::inference("piper", e);
        let n = ids.len();
        let input = Tensor::from_array(([1usize, n], ids)).map_err(err)?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64])).map_err(err)?;
        let scales = Tensor::from_array(([3usize], self.scales.to_vec())).map_err(err)?;
        let inputs = ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales];
        let mut session = ort_env::any_free(&self.sessions);
        let out = session.run(inputs).map_err(err)?;
        let (_, audio) = out["output"].try_extract_tensor::<f32>().map_err(err)?;
        Ok(audio.to_vec())
    }
}

#[async_trait]
impl TextToSpeech for PiperTts {
    fn name(&self) -> &'static str {
        "piper-joe"
    }

    async fn open(&self, config: TtsConfig) -> Result<TtsStream> {
        let (in_tx, mut in_rx) = mpsc::channel::<TtsInput>(64);
        let (ev_tx, ev_rx) = mpsc::channel::<TtsEvent>(64);
        // Sentences (None = flushed) flow from the text task to the synthesis task.
        let (s_tx, mut s_rx) = mpsc::channel::<Option<String>>(64);
        tokio::spawn(async move {
            let mut split = SentenceSplitter::default();
            while let Some(input) = in_rx.recv().await {
                let (sentences, flush) = match input {
                    TtsInput::Text(t) => (split.push(&t), false),
                    TtsInput::Flush => (split.finish().into_iter().collect(), true),
                };
                for s in sentences {
                    if s_tx.send(Some(s)).await.is_err() {
                        return;
                    }
                }
                if flush && s_tx.send(None).await.is_err() {
                    return;
                }
            }
        });
        let voice = self.voice.clone();
        tokio::spawn(async move {
            let chunk = config.sample_rate as usize * CHUNK_MS / 1000;
            while let Some(item) = s_rx.recv().await {
                let Some(sentence) = item else {
                    if ev_tx.send(TtsEvent::Done).await.is_err() {
                        return;
                    }
                    continue;
                };
                if ev_tx.is_closed() {
                    return; // cancelled: do not synthesize the rest
                }
                let v = voice.clone();
                let s = sentence.clone();
                let out_rate = config.sample_rate;
                let audio = tokio::task::spawn_blocking(move || v.synthesize(&s).map(|a| Resampler::oneshot(&a, v.rate, out_rate))).await;
                let audio = match audio {
                    Ok(Ok(a)) => callfunnel_media_dsp::f32_to_i16(&a),
                    Ok(Err(e)) => { tracing::error!(error = %e, "piper failed"); continue }
                    Err(e) => { tracing::error!(error = %e, "piper task failed"); continue }
                };
                for (i, c) in audio.chunks(chunk.max(1)).enumerate() {
                    let ev = TtsEvent::Audio(TtsChunk { pcm: c.to_vec(), text: (i == 0).then(|| sentence.clone()) });
                    if ev_tx.send(ev).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(TtsStream { input: in_tx, events: ev_rx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_sentences_with_their_text() {
        let tts = PiperTts::load(&ModelPaths::default()).unwrap();
        let mut s = tts.open(TtsConfig { voice: "joe".into(), language: "en-US".into(), sample_rate: 8000 }).await.unwrap();
        let t = std::time::Instant::now();
        for piece in ["We are open ", "weekdays from eight to six. ", "On Saturday we open nine to one"] {
            s.input.send(TtsInput::Text(piece.into())).await.unwrap();
        }
        s.input.send(TtsInput::Flush).await.unwrap();
        let mut texts = Vec::new();
        let mut samples = 0usize;
        let mut first = None;
        loop {
            match s.events.recv().await.unwrap() {
                TtsEvent::Audio(c) => {
                    first.get_or_insert(t.elapsed());
                    assert!(c.pcm.len() <= 800);
                    samples += c.pcm.len();
                    texts.extend(c.text);
                }
                TtsEvent::Done => break,
            }
        }
        eprintln!("piper: first audio after {:?}", first);
        assert_eq!(texts, ["We are open weekdays from eight to six.", "On Saturday we open nine to one"]);
        let chars = texts.iter().map(|t| t.len()).sum::<usize>() as f64;
        let secs = samples as f64 / 8000.0;
        assert!((0.04..0.15).contains(&(secs / chars)), "{secs:.2} s for {chars} characters");
    }
}
