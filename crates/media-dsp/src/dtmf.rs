//! DTMF (ITU-T Q.23/Q.24) for 8 kHz telephony: tones to press keys in-band, and a streaming
//! detector (Goertzel on 205-sample blocks) that rejects speech, music and single tones.

use crate::goertzel::{mean_square, power};

const LOW: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const HIGH: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];
/// Each key: this long a tone, then this long a gap.
const TONE_MS: usize = 100;
const GAP_MS: usize = 60;
/// `w` or `,` in a key string waits this long.
const PAUSE_MS: usize = 500;
const MAX_KEYS: usize = 64;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DtmfError {
    #[error("`{0}` is not a DTMF key (0-9 * # A-D, w or , to pause)")]
    BadDigit(char),
    #[error("more than {MAX_KEYS} keys")]
    TooLong,
}

fn key_freqs(c: char) -> Option<(f32, f32)> {
    KEYS.iter().enumerate().find_map(|(r, row)| row.iter().position(|&k| k == c.to_ascii_uppercase()).map(|col| (LOW[r], HIGH[col])))
}

/// PCM16 at `rate` that presses `keys` in order: 100 ms tone + 60 ms gap each, each tone at
/// about −7 dBFS, with 5 ms fades; `w` or `,` pauses 500 ms.
pub fn tones(keys: &str, rate: u32) -> Result<Vec<i16>, DtmfError> {
    if keys.chars().count() > MAX_KEYS {
        return Err(DtmfError::TooLong);
    }
    let per_ms = rate as usize / 1000;
    let mut out = Vec::new();
    for c in keys.chars() {
        if c == 'w' || c == ',' {
            out.resize(out.len() + PAUSE_MS * per_ms, 0);
            continue;
        }
        let (lo, hi) = key_freqs(c).ok_or(DtmfError::BadDigit(c))?;
        let n = TONE_MS * per_ms;
        let fade = 5 * per_ms;
        for i in 0..n {
            let t = i as f32 / rate as f32;
            let env = (i.min(n - 1 - i) as f32 / fade as f32).min(1.0);
            let v = 0.45 * ((2.0 * std::f32::consts::PI * lo * t).sin() + (2.0 * std::f32::consts::PI * hi * t).sin()) * env;
            out.push((v * 32767.0) as i16);
        }
        out.resize(out.len() + GAP_MS * per_ms, 0);
    }
    Ok(out)
}

/// Streaming DTMF detector. Each key press is reported once, when its tone has lasted 40 ms.
pub struct DtmfDetector {
    rate: u32,
    block: usize,
    buf: Vec<f32>,
    /// The key seen in the last block(s) and for how many blocks in a row.
    current: Option<char>,
    run: u32,
    reported: bool,
}

impl DtmfDetector {
    pub fn new(rate: u32) -> Self {
        // 205 samples at 8 kHz (~25.6 ms): bins ~39 Hz apart, enough to tell the DTMF tones apart.
        let block = (205 * rate as usize / 8000).max(1);
        DtmfDetector { rate, block, buf: Vec::with_capacity(block), current: None, run: 0, reported: false }
    }

    /// Feeds audio; returns the keys whose press was confirmed in it.
    pub fn push(&mut self, pcm: &[i16]) -> Vec<char> {
        let mut keys = Vec::new();
        for &s in pcm {
            self.buf.push(s as f32 / 32768.0);
            if self.buf.len() == self.block {
                let k = self.classify();
                self.buf.clear();
                if k.is_some() && k == self.current {
                    self.run += 1;
                } else {
                    self.current = k;
                    self.run = 1;
                    self.reported = false;
                }
                // Two blocks in a row (~51 ms ≥ 40 ms) confirm a press.
                if let (Some(c), false, true) = (self.current, self.reported, self.run >= 2) {
                    self.reported = true;
                    keys.push(c);
                }
            }
        }
        keys
    }

    fn classify(&self) -> Option<char> {
        let b = &self.buf;
        let total = mean_square(b);
        // Quieter than about −40 dBFS per tone: nothing.
        if total < 2e-4 {
            return None;
        }
        let lo: Vec<f32> = LOW.iter().map(|&f| power(b, f, self.rate)).collect();
        let hi: Vec<f32> = HIGH.iter().map(|&f| power(b, f, self.rate)).collect();
        let best = |v: &[f32]| v.iter().enumerate().fold((0, 0.0f32), |m, (i, &p)| if p > m.1 { (i, p) } else { m });
        let ((li, lp), (hi_i, hp)) = (best(&lo), best(&hi));
        let others = |v: &[f32], skip: usize| v.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, p)| *p).fold(0.0f32, f32::max);
        // Each tone stands out in its group (≥ 8 dB over the rest) ...
        if lp < 6.3 * others(&lo, li) || hp < 6.3 * others(&hi, hi_i) {
            return None;
        }
        // ... the twist is within +4/−8 dB (high relative to low) ...
        let twist = hp / lp;
        if !(0.158..=2.51).contains(&twist) {
            return None;
        }
        // ... and the pair carries most of the energy (not speech or music with a peak there).
        if lp + hp < 0.7 * total {
            return None;
        }
        Some(KEYS[li][hi_i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, amp: f32, seed: &mut u32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 17;
                *seed ^= *seed << 5;
                (*seed as f32 / u32::MAX as f32 * 2.0 - 1.0) * amp
            })
            .collect()
    }

    fn speechlike(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f32 / 8000.0;
                let f0 = 120.0 + 80.0 * (t * 1.3).sin().abs();
                let v: f32 = (1..12).map(|h| (2.0 * std::f32::consts::PI * f0 * h as f32 * t).sin() * [0.0, 0.5, 0.8, 0.6, 0.3, 0.5, 0.2, 0.15, 0.3, 0.1, 0.08, 0.05][h] / h as f32).sum();
                (v * 12000.0) as i16
            })
            .collect()
    }

    #[test]
    fn every_key_round_trips() {
        let keys = "0123456789*#ABCD";
        let mut d = DtmfDetector::new(8000);
        let got: String = d.push(&tones(keys, 8000).unwrap()).into_iter().collect();
        assert_eq!(got, keys);
    }

    #[test]
    fn survives_noise_mulaw_and_odd_slices() {
        let pcm = tones("159#", 8000).unwrap();
        let mut seed = 7;
        let rms = (pcm.iter().map(|&s| (s as f32).powi(2)).sum::<f32>() / pcm.len() as f32).sqrt();
        let n = noise(pcm.len(), rms / 10.0 * 1.7, &mut seed);
        let noisy: Vec<i16> = pcm.iter().zip(n).map(|(&s, e)| (s as f32 + e).clamp(-32768.0, 32767.0) as i16).collect();
        let mut d = DtmfDetector::new(8000);
        let got: String = noisy.chunks(37).flat_map(|c| d.push(c)).collect();
        assert_eq!(got, "159#", "20 dB SNR");
        let ulaw = crate::g711::mulaw_decode_all(&crate::g711::mulaw_encode_all(&pcm));
        let mut d = DtmfDetector::new(8000);
        assert_eq!(d.push(&ulaw).into_iter().collect::<String>(), "159#");
    }

    #[test]
    fn speech_noise_and_single_tones_are_not_keys() {
        let mut d = DtmfDetector::new(8000);
        assert!(d.push(&speechlike(8000 * 3)).is_empty());
        let mut seed = 3;
        let n: Vec<i16> = noise(16000, 8000.0, &mut seed).into_iter().map(|v| v as i16).collect();
        assert!(d.push(&n).is_empty());
        let tone: Vec<i16> = (0..8000).map(|i| ((2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 8000.0).sin() * 10000.0) as i16).collect();
        assert!(d.push(&tone).is_empty());
    }

    #[test]
    fn a_held_key_counts_once_and_bad_keys_are_refused() {
        let (lo, hi) = key_freqs('5').unwrap();
        let held: Vec<i16> = (0..8000).map(|i| {
            let t = i as f32 / 8000.0;
            (0.4 * ((2.0 * std::f32::consts::PI * lo * t).sin() + (2.0 * std::f32::consts::PI * hi * t).sin()) * 32767.0) as i16
        }).collect();
        let mut d = DtmfDetector::new(8000);
        assert_eq!(d.push(&held), vec!['5']);
        assert_eq!(tones("1x", 8000), Err(DtmfError::BadDigit('x')));
        assert_eq!(tones(&"1".repeat(65), 8000), Err(DtmfError::TooLong));
        assert_eq!(tones("w", 8000).unwrap().len(), 4000);
    }
}
