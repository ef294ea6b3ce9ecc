//! `[providers]`: which provider serves each capability (an ordered failover chain), per
//! language, and where each cloud provider lives. Keys never live here: they come from the
//! tenant's secret source (environment variables until the data plane brings Vault).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvidersConfig {
    /// Speech-to-text chain: `deepgram`, `sarvam`, `local` (Whisper).
    pub stt: Vec<String>,
    /// Text-to-speech chain: `cartesia`, `sarvam`, `local` (Piper).
    pub tts: Vec<String>,
    /// Per-language chains, e.g. `[providers.language.hi-IN] stt = ["sarvam"]`.
    pub language: BTreeMap<String, LanguageProviders>,
    /// No transcript this long after the turn ended: fail over to the next STT (ms).
    pub stt_finalize_timeout_ms: u64,
    /// No audio this long after text was sent: fail over to the next TTS (ms).
    pub tts_first_audio_timeout_ms: u64,
    pub deepgram: DeepgramProvider,
    pub anthropic: AnthropicProvider,
    pub cartesia: CartesiaProvider,
    pub sarvam: SarvamProvider,
    pub voyage: VoyageProvider,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LanguageProviders {
    pub stt: Option<Vec<String>>,
    pub tts: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeepgramProvider {
    pub url: String,
    pub model: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnthropicProvider {
    pub url: String,
    /// Overrides the agent's model (e.g. to pin a dated id fleet-wide).
    pub model: Option<String>,
    /// Used when the agent names none.
    pub fallback_model: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CartesiaProvider {
    pub url: String,
    pub model: String,
    /// Voice id used when the agent's voice is not a Cartesia voice id.
    pub voice: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SarvamProvider {
    pub url: String,
    pub tts_model: String,
    pub stt_model: String,
    pub speaker: String,
    /// STT mode for saaras models (`codemix` for Hinglish).
    pub stt_mode: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoyageProvider {
    pub url: String,
    pub model: String,
    pub dimension: usize,
}

impl Default for ProvidersConfig {
    fn default() -> Self {
        ProvidersConfig {
            stt: vec!["local".into()],
            tts: vec!["local".into()],
            language: BTreeMap::new(),
            stt_finalize_timeout_ms: 1000,
            tts_first_audio_timeout_ms: 1000,
            deepgram: DeepgramProvider::default(),
            anthropic: AnthropicProvider::default(),
            cartesia: CartesiaProvider::default(),
            sarvam: SarvamProvider::default(),
            voyage: VoyageProvider::default(),
        }
    }
}

impl Default for DeepgramProvider {
    fn default() -> Self {
        DeepgramProvider { url: "https://api.deepgram.com".into(), model: "nova-3".into() }
    }
}
impl Default for AnthropicProvider {
    fn default() -> Self {
        AnthropicProvider { url: "https://api.anthropic.com".into(), model: None, fallback_model: Some("claude-sonnet-4-6".into()) }
    }
}
impl Default for CartesiaProvider {
    fn default() -> Self {
        CartesiaProvider { url: "https://api.cartesia.ai".into(), model: "sonic-3".into(), voice: "a0e99841-438c-4a64-b679-ae501e7d6091".into() }
    }
}
impl Default for SarvamProvider {
    fn default() -> Self {
        SarvamProvider { url: "https://api.sarvam.ai".into(), tts_model: "bulbul:v2".into(), stt_model: "saarika:v2.5".into(), speaker: "anushka".into(), stt_mode: None }
    }
}
impl Default for VoyageProvider {
    fn default() -> Self {
        VoyageProvider { url: "https://api.voyageai.com".into(), model: "voyage-3.5".into(), dimension: 1024 }
    }
}

pub const STT_PROVIDERS: [&str; 3] = ["deepgram", "sarvam", "local"];
pub const TTS_PROVIDERS: [&str; 3] = ["cartesia", "sarvam", "local"];

impl ProvidersConfig {
    /// The STT and TTS chains for `language` (its own chains, else the defaults).
    pub fn chains(&self, language: &str) -> (Vec<String>, Vec<String>) {
        let l = self.language.get(language).cloned().unwrap_or_default();
        (l.stt.unwrap_or_else(|| self.stt.clone()), l.tts.unwrap_or_else(|| self.tts.clone()))
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        let check = |what: &str, list: &[String], known: &[&str]| -> anyhow::Result<()> {
            if list.is_empty() {
                anyhow::bail!("providers.{what}: give at least one provider");
            }
            for p in list {
                if !known.contains(&p.as_str()) {
                    anyhow::bail!("providers.{what}: unknown provider `{p}` (known: {})", known.join(", "));
                }
            }
            Ok(())
        };
        check("stt", &self.stt, &STT_PROVIDERS)?;
        check("tts", &self.tts, &TTS_PROVIDERS)?;
        for (lang, l) in &self.language {
            if let Some(s) = &l.stt {
                check(&format!("language.{lang}.stt"), s, &STT_PROVIDERS)?;
            }
            if let Some(t) = &l.tts {
                check(&format!("language.{lang}.tts"), t, &TTS_PROVIDERS)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_chains_override_the_default() {
        let c: ProvidersConfig = toml::from_str("stt = [\"deepgram\", \"local\"]\n[language.hi-IN]\nstt = [\"sarvam\"]\ntts = [\"sarvam\"]\n").unwrap();
        assert_eq!(c.chains("en-US"), (vec!["deepgram".to_string(), "local".into()], vec!["local".to_string()]));
        assert_eq!(c.chains("hi-IN"), (vec!["sarvam".to_string()], vec!["sarvam".to_string()]));
        c.validate().unwrap();
        let bad: ProvidersConfig = toml::from_str("tts = [\"elevenlabs\"]").unwrap();
        assert!(bad.validate().unwrap_err().to_string().contains("unknown provider `elevenlabs`"));
    }
}
