//! Audio helpers: energy-based speech segmentation (no model) and synthetic "speech" whose
//! length follows the text.

use callfunnel_media_dsp::g711;

/// Speech starts after this much loud audio, and ends after `hangover_ms` of quiet.
const START_MS: u32 = 60;
/// Frame RMS (of PCM16) above which a frame counts as speech.
const THRESHOLD: f64 = 500.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegEvent {
    /// Speech began at this stream time (ms).
    Start(u64),
    /// Speech ended; the segment ran from `start` to `end` ms.
    End { start: u64, end: u64 },
}

/// Splits a stream into speech segments by frame energy (20 ms frames).
pub struct Segmenter {
    rate: u32,
    hangover_ms: u32,
    pending: Vec<i16>,
    t_ms: u64,
    loud_ms: u32,
    quiet_ms: u32,
    in_speech: bool,
    start: u64,
    last_loud_end: u64,
}

impl Segmenter {
    pub fn new(rate: u32, hangover_ms: u32) -> Self {
        Segmenter { rate, hangover_ms, pending: Vec::new(), t_ms: 0, loud_ms: 0, quiet_ms: 0, in_speech: false, start: 0, last_loud_end: 0 }
    }

    /// Stream time so far (ms).
    pub fn now_ms(&self) -> u64 {
        self.t_ms
    }

    /// Start of the current segment (ms), if in speech.
    pub fn segment_start(&self) -> Option<u64> {
        self.in_speech.then_some(self.start)
    }

    pub fn push(&mut self, pcm: &[i16]) -> Vec<SegEvent> {
        let frame = (self.rate / 50) as usize;
        self.pending.extend_from_slice(pcm);
        let mut out = Vec::new();
        let mut off = 0;
        while self.pending.len() - off >= frame {
            let f = &self.pending[off..off + frame];
            off += frame;
            let rms = (f.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / frame as f64).sqrt();
            let loud = rms > THRESHOLD;
            self.t_ms += 20;
            if loud {
                self.loud_ms += 20;
                self.quiet_ms = 0;
                self.last_loud_end = self.t_ms;
                if !self.in_speech && self.loud_ms >= START_MS {
                    self.in_speech = true;
                    self.start = self.t_ms - self.loud_ms as u64;
                    out.push(SegEvent::Start(self.start));
                }
            } else {
                self.loud_ms = 0;
                self.quiet_ms += 20;
                if self.in_speech && self.quiet_ms >= self.hangover_ms {
                    self.in_speech = false;
                    out.push(SegEvent::End { start: self.start, end: self.last_loud_end });
                }
            }
        }
        self.pending.drain(..off);
        out
    }

    /// Ends the current segment now (a `Finalize`), if any.
    pub fn cut(&mut self) -> Option<(u64, u64)> {
        if self.in_speech {
            self.in_speech = false;
            self.loud_ms = 0;
            return Some((self.start, self.last_loud_end.max(self.start + 20)));
        }
        None
    }
}

/// Milliseconds of speech for `text` (about 60 ms per character, at least 200 ms).
pub fn speech_ms(text: &str) -> u64 {
    (text.chars().count() as u64 * 60).max(200)
}

/// Deterministic voiced-sounding audio: a 180 Hz tone with a slow amplitude wobble.
pub fn synth(samples: usize, rate: u32, offset: usize) -> Vec<i16> {
    (0..samples)
        .map(|i| {
            let t = (i + offset) as f64 / rate as f64;
            let env = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            (env * 6000.0 * (2.0 * std::f64::consts::PI * 180.0 * t).sin()) as i16
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    S16le,
    Mulaw,
    Alaw,
    F32le,
}

impl Encoding {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pcm_s16le" | "linear16" | "wav" => Encoding::S16le,
            "pcm_mulaw" | "mulaw" => Encoding::Mulaw,
            "pcm_alaw" | "alaw" => Encoding::Alaw,
            "pcm_f32le" => Encoding::F32le,
            _ => return None,
        })
    }

    pub fn encode(self, pcm: &[i16]) -> Vec<u8> {
        match self {
            Encoding::S16le => pcm.iter().flat_map(|s| s.to_le_bytes()).collect(),
            Encoding::Mulaw => g711::mulaw_encode_all(pcm),
            Encoding::Alaw => pcm.iter().map(|&s| alaw_encode(s)).collect(),
            Encoding::F32le => pcm.iter().flat_map(|&s| (s as f32 / 32768.0).to_le_bytes()).collect(),
        }
    }

    pub fn decode(self, bytes: &[u8]) -> Vec<i16> {
        match self {
            Encoding::S16le => bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(),
            Encoding::Mulaw => g711::mulaw_decode_all(bytes),
            Encoding::Alaw => bytes.iter().map(|&b| alaw_decode(b)).collect(),
            Encoding::F32le => bytes.chunks_exact(4).map(|b| (f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * 32767.0) as i16).collect(),
        }
    }
}

fn alaw_encode(pcm: i16) -> u8 {
    // G.711 A-law (the reference g711.c algorithm on 13-bit samples)
    const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut v = (pcm as i32) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let Some(seg) = SEG_END.iter().position(|&e| v <= e) else { return (0x7F ^ mask) as u8 };
    let q = if seg < 2 { (v >> 1) & 0xF } else { (v >> seg) & 0xF };
    (((seg as i32) << 4 | q) ^ mask) as u8
}

fn alaw_decode(b: u8) -> i16 {
    let a = (b ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => t = (t + 0x108) << (seg - 1),
    }
    if a & 0x80 != 0 { t as i16 } else { -(t as i16) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_tone_silence_tone() {
        let mut s = Segmenter::new(8000, 300);
        let tone = synth(8000, 8000, 0);
        let quiet = vec![0i16; 8000];
        let mut ev = Vec::new();
        for chunk in [&tone[..], &quiet[..], &tone[..], &quiet[..]] {
            for c in chunk.chunks(160) {
                ev.extend(s.push(c));
            }
        }
        assert_eq!(ev.len(), 4, "{ev:?}");
        assert!(matches!(ev[1], SegEvent::End { start: 0, end: 1000 }), "{ev:?}");
        assert!(matches!(ev[3], SegEvent::End { start: 2000, end: 3000 }), "{ev:?}");
    }

    #[test]
    fn alaw_round_trips_roughly() {
        for s in [-30000i16, -1000, -5, 0, 7, 1000, 30000] {
            let d = alaw_decode(alaw_encode(s));
            assert!((d as i32 - s as i32).abs() <= (s as i32).abs() / 16 + 16, "{s} -> {d}");
        }
    }
}
