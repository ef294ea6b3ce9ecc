//! Sarvam AI for Indian languages: Bulbul streaming TTS and Saarika/Saaras streaming STT, both
//! over WebSockets with the `api-subscription-key` header.

pub mod stt;
pub mod tts;

pub use stt::SarvamStt;
pub use tts::SarvamTts;

/// The 11 language codes Sarvam speaks (note `od-IN` for Odia).
pub const LANGUAGES: [&str; 11] = ["bn-IN", "en-IN", "gu-IN", "hi-IN", "kn-IN", "ml-IN", "mr-IN", "od-IN", "pa-IN", "ta-IN", "te-IN"];

/// Maps a BCP-47 tag to Sarvam's code (`hi` → `hi-IN`, `or-IN` → `od-IN`; Hinglish `hi-Latn`
/// and `en-IN` → `en-IN`/`hi-IN` as given).
pub fn language_code(tag: &str) -> Option<&'static str> {
    let t = tag.replace('_', "-");
    let base = t.split('-').next().unwrap_or("").to_ascii_lowercase();
    let base = if base == "or" { "od".to_string() } else { base };
    LANGUAGES.iter().copied().find(|l| l.split('-').next() == Some(base.as_str()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn language_codes() {
        assert_eq!(super::language_code("hi"), Some("hi-IN"));
        assert_eq!(super::language_code("or-IN"), Some("od-IN"));
        assert_eq!(super::language_code("en-IN"), Some("en-IN"));
        assert_eq!(super::language_code("fr-FR"), None);
    }
}
