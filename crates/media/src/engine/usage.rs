//! What a call used, for billing: call time, audio sent to STT, characters sent to TTS and the
//! LLM's tokens per provider. Counted where the work is handed to a provider, cheaply (atomics).

use std::sync::atomic::{AtomicU64, Ordering};

use callfunnel_ai::ProviderUsage;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Shared by the call's pieces while it runs.
pub struct UsageMeter {
    started: Instant,
    stt_samples: AtomicU64,
    tts_chars: AtomicU64,
    llm: Mutex<Vec<ProviderUsage>>,
}

/// The call's totals. `stt_audio_ms` counts audio at 8 kHz actually streamed to STT (pauses
/// are not sent); `tts_characters` counts Unicode scalar values sent for synthesis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallUsage {
    pub call_ms: u64,
    pub stt_provider: String,
    pub stt_audio_ms: u64,
    pub tts_provider: String,
    pub tts_characters: u64,
    /// One entry per (provider, model), summed over the call's requests.
    pub llm: Vec<ProviderUsage>,
}

impl Default for UsageMeter {
    fn default() -> Self {
        UsageMeter { started: Instant::now(), stt_samples: AtomicU64::new(0), tts_chars: AtomicU64::new(0), llm: Mutex::new(Vec::new()) }
    }
}

impl UsageMeter {
    pub fn stt_audio(&self, samples_8k: usize) {
        self.stt_samples.fetch_add(samples_8k as u64, Ordering::Relaxed);
    }

    pub fn tts_text(&self, text: &str) {
        self.tts_chars.fetch_add(text.chars().count() as u64, Ordering::Relaxed);
    }

    pub fn llm(&self, u: &ProviderUsage) {
        let mut all = self.llm.lock();
        match all.iter_mut().find(|x| x.provider == u.provider && x.model == u.model) {
            Some(x) => {
                x.input_tokens += u.input_tokens;
                x.output_tokens += u.output_tokens;
                x.cache_read_input_tokens += u.cache_read_input_tokens;
                x.cache_creation_input_tokens += u.cache_creation_input_tokens;
            }
            None => all.push(u.clone()),
        }
    }

    pub fn totals(&self, stt_provider: &str, tts_provider: &str) -> CallUsage {
        CallUsage {
            call_ms: self.started.elapsed().as_millis() as u64,
            stt_provider: stt_provider.to_string(),
            stt_audio_ms: self.stt_samples.load(Ordering::Relaxed) / 8,
            tts_provider: tts_provider.to_string(),
            tts_characters: self.tts_chars.load(Ordering::Relaxed),
            llm: self.llm.lock().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_provider_and_model() {
        let m = UsageMeter::default();
        m.stt_audio(8000);
        m.stt_audio(4000);
        m.tts_text("héllo ");
        let u = |p: &str, i| ProviderUsage { provider: p.into(), model: "m".into(), input_tokens: i, output_tokens: 1, ..Default::default() };
        m.llm(&u("anthropic", 10));
        m.llm(&u("anthropic", 5));
        m.llm(&u("openai", 7));
        let t = m.totals("deepgram", "cartesia");
        assert_eq!((t.stt_audio_ms, t.tts_characters), (1500, 6));
        assert_eq!(t.llm.len(), 2);
        assert_eq!((t.llm[0].input_tokens, t.llm[0].output_tokens), (15, 2));
    }
}
