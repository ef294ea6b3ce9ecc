//! Caller scripts: what the simulated caller says and when.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::dsp::{self, Resampler};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    #[serde(default)]
    pub call: CallInfo,
    #[serde(rename = "line", default)]
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallInfo {
    pub from: String,
    pub to: String,
    pub tenant_id: String,
    pub agent_id: String,
    /// espeak-ng voice for `say` lines.
    pub voice: String,
    /// espeak-ng speaking rate, words per minute.
    pub rate_wpm: u32,
    /// Give up on the call after this long.
    pub max_call_secs: u64,
}

impl Default for CallInfo {
    fn default() -> Self {
        CallInfo { from: "+15550100".into(), to: "+15550199".into(), tenant_id: "demo".into(), agent_id: "clinic".into(), voice: "en-us".into(), rate_wpm: 165, max_call_secs: 180 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// Text spoken by espeak-ng.
    pub say: Option<String>,
    /// Or a WAV file (relative to the script).
    pub wav: Option<PathBuf>,
    /// Or DTMF digits.
    pub dtmf: Option<String>,
    /// Or a steady tone of this frequency (a voicemail's beep), `tone_ms` long.
    pub tone_hz: Option<f32>,
    #[serde(default = "default_tone_ms")]
    pub tone_ms: u64,
    /// Speak this long after the call starts without waiting for the agent (the callee of an
    /// outbound call speaks first).
    pub start_ms: Option<u64>,
    /// Wait this long after the agent stops talking before speaking.
    #[serde(default = "default_pause")]
    pub pause_ms: u64,
    /// Barge in: start speaking this long into the agent's next reply instead of waiting.
    pub barge_in_after_ms: Option<u64>,
}

fn default_pause() -> u64 {
    500
}

fn default_tone_ms() -> u64 {
    400
}

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read script {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid script {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("espeak-ng failed (install the Debian package `espeak-ng`): {0}")]
    Espeak(String),
    #[error(transparent)]
    Wav(#[from] dsp::wav::WavError),
}

impl Script {
    pub fn from_file(path: &Path) -> Result<Script, ScriptError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read { path: p.clone(), source })?;
        let mut s = Script::from_toml(&text).map_err(|message| ScriptError::Invalid { path: p, message })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for l in &mut s.lines {
            if let Some(w) = l.wav.as_mut() {
                if w.is_relative() {
                    *w = base.join(&*w);
                }
            }
        }
        Ok(s)
    }

    pub fn from_toml(text: &str) -> Result<Script, String> {
        let s: Script = toml::from_str(text).map_err(|e| e.to_string())?;
        if s.lines.is_empty() {
            return Err("no [[line]] entries".into());
        }
        for (i, l) in s.lines.iter().enumerate() {
            let n = l.say.is_some() as u8 + l.wav.is_some() as u8 + l.dtmf.is_some() as u8 + l.tone_hz.is_some() as u8;
            if n != 1 {
                return Err(format!("line {}: give exactly one of `say`, `wav`, `dtmf`, `tone_hz`", i + 1));
            }
            if let Some(hz) = l.tone_hz {
                if !(50.0..=3800.0).contains(&hz) || !(20..=10_000).contains(&l.tone_ms) {
                    return Err(format!("line {}: tone_hz must be 50-3800 and tone_ms 20-10000", i + 1));
                }
            }
            if let Some(d) = &l.dtmf {
                if d.is_empty() || !d.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
                    return Err(format!("line {}: dtmf must be digits, * or #", i + 1));
                }
            }
        }
        Ok(s)
    }
}

/// Speaks `text` with espeak-ng and returns 8 kHz PCM16.
pub fn espeak_8k(text: &str, voice: &str, rate_wpm: u32) -> Result<Vec<i16>, ScriptError> {
    let out = std::process::Command::new("espeak-ng")
        .args(["-v", voice, "-s", &rate_wpm.to_string(), "--stdout", "--", text])
        .output()
        .map_err(|e| ScriptError::Espeak(e.to_string()))?;
    if !out.status.success() {
        return Err(ScriptError::Espeak(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    let mut r = hound::WavReader::new(std::io::Cursor::new(out.stdout)).map_err(|e| ScriptError::Espeak(format!("bad WAV output: {e}")))?;
    let rate = r.spec().sample_rate;
    // espeak-ng streams its WAV with a placeholder length: stop at the real end of data.
    let x: Vec<f32> = r.samples::<i16>().map_while(Result::ok).map(|s| s as f32 / 32768.0).collect();
    Ok(dsp::f32_to_i16(&Resampler::oneshot(&x, rate, 8000)))
}

/// The audio of a `say` or `wav` line at 8 kHz.
/// Leading and trailing silence is trimmed, so "end of speech" is when the words end.
pub fn line_audio(line: &Line, call: &CallInfo) -> Result<Vec<i16>, ScriptError> {
    let pcm = if let Some(t) = &line.say {
        espeak_8k(t, &call.voice, call.rate_wpm)?
    } else if let Some(hz) = line.tone_hz {
        let n = line.tone_ms as usize * 8;
        return Ok((0..n).map(|i| ((2.0 * std::f32::consts::PI * hz * i as f32 / 8000.0).sin() * 8000.0) as i16).collect());
    } else if let Some(w) = &line.wav {
        dsp::f32_to_i16(&dsp::wav::read_mono(w, 8000)?)
    } else {
        Vec::new()
    };
    Ok(trim_silence(&pcm))
}

/// Drops leading/trailing audio quieter than −40 dBFS (keeping 20 ms either side).
pub fn trim_silence(pcm: &[i16]) -> Vec<i16> {
    const LOUD: i16 = 328;
    let (Some(first), Some(last)) = (pcm.iter().position(|s| s.abs() > LOUD), pcm.iter().rposition(|s| s.abs() > LOUD)) else {
        return Vec::new();
    };
    pcm[first.saturating_sub(160)..(last + 1 + 160).min(pcm.len())].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_validate() {
        let s = Script::from_toml("[[line]]\nsay = \"hi\"\n[[line]]\ndtmf = \"0\"\nbarge_in_after_ms = 900\n").unwrap();
        assert_eq!(s.lines.len(), 2);
        assert_eq!(s.lines[0].pause_ms, 500);
        assert!(Script::from_toml("").unwrap_err().contains("no [[line]]"));
        assert!(Script::from_toml("[[line]]\nsay = \"a\"\ndtmf = \"1\"\n").unwrap_err().contains("exactly one"));
        assert!(Script::from_toml("[[line]]\ndtmf = \"x\"\n").unwrap_err().contains("digits"));
        assert!(Script::from_toml("[[line]]\nsay = \"a\"\nshout = true\n").is_err());
    }

    #[test]
    fn silence_is_trimmed() {
        let mut pcm = vec![0i16; 8000];
        pcm.extend(std::iter::repeat_n(5000i16, 800));
        pcm.extend(vec![3i16; 4000]);
        let t = trim_silence(&pcm);
        assert_eq!(t.len(), 800 + 320);
        assert!(trim_silence(&[0, 1, -2]).is_empty());
    }
}
