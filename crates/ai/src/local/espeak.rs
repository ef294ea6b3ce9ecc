//! IPA phonemes from the `espeak-ng` program (run as a subprocess, never linked: it is GPL).

use std::process::Command;

use crate::{AiError, Result};

/// Phonemes of one sentence in Piper's form: espeak's clause lines joined with ", ", ended
/// with the sentence's own terminator (espeak drops punctuation, Piper's voices expect it).
pub fn phonemize(sentence: &str, voice: &str) -> Result<String> {
    let out = Command::new("espeak-ng")
        .args(["-q", "--ipa", "-v", voice, "--"])
        .arg(sentence)
        .output()
        .map_err(|e| AiError::Provider { provider: "espeak-ng", message: format!("cannot run espeak-ng (install the Debian package `espeak-ng`): {e}") })?;
    if !out.status.success() {
        return Err(AiError::Provider { provider: "espeak-ng", message: String::from_utf8_lossy(&out.stderr).trim().to_string() });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let clauses: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let end = match sentence.trim_end().chars().last() {
        Some(c @ ('?' | '!' | '.')) => c,
        _ => '.',
    };
    Ok(format!("{}{end}", clauses.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_and_terminators_are_restored() {
        let p = phonemize("Hello there, how are you?", "en-us").unwrap();
        assert!(p.contains(", "), "{p}");
        assert!(p.ends_with('?'), "{p}");
        assert!(p.contains("h") && !p.contains('\n'));
        assert!(phonemize("Fine", "en-us").unwrap().ends_with('.'));
    }
}
