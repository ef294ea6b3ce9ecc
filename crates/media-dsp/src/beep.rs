//! Answering-machine beep detection: a single steady tone between 350 and 2500 Hz lasting
//! 150 ms to 3 s, reported once when it ends. Each 20 ms frame is checked with a coarse Goertzel
//! bank (50 Hz steps) refined around the peak: about 50 Goertzel passes of 160 samples, ~23 µs
//! per frame on this machine (`cargo bench -p callfunnel-media --bench carriers`), so the engine
//! runs it only while an outbound call is being screened.

use crate::goertzel::{mean_square, power};

const FRAME_MS: u32 = 20;
const MIN_HZ: f32 = 350.0;
const MAX_HZ: f32 = 2500.0;
const STEP_HZ: f32 = 50.0;
const MIN_MS: u32 = 150;
const MAX_MS: u32 = 3000;
/// Share of the frame's energy the tone must carry.
const PURITY: f32 = 0.7;
/// The tone may wander this much between frames.
const DRIFT_HZ: f32 = 40.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Beep {
    pub freq_hz: f32,
    pub duration_ms: u32,
    /// When the beep ended, counted from the first sample pushed.
    pub ended_at_ms: u64,
}

pub struct BeepDetector {
    rate: u32,
    frame: usize,
    buf: Vec<f32>,
    frames_seen: u64,
    /// The tone running now: its frequency (mean) and length in frames.
    tone: Option<(f32, u32)>,
}

impl BeepDetector {
    pub fn new(rate: u32) -> Self {
        let frame = (rate * FRAME_MS / 1000) as usize;
        BeepDetector { rate, frame, buf: Vec::with_capacity(frame), frames_seen: 0, tone: None }
    }

    /// Feeds audio; returns a beep that ended within it.
    pub fn push(&mut self, pcm: &[i16]) -> Option<Beep> {
        let mut found = None;
        for &s in pcm {
            self.buf.push(s as f32 / 32768.0);
            if self.buf.len() == self.frame {
                let f = self.tone_in_frame();
                self.buf.clear();
                self.frames_seen += 1;
                if let Some(b) = self.step(f) {
                    found = Some(b);
                }
            }
        }
        found
    }

    fn step(&mut self, f: Option<f32>) -> Option<Beep> {
        match (self.tone, f) {
            (Some((mean, n)), Some(hz)) if (hz - mean).abs() <= DRIFT_HZ => {
                self.tone = Some(((mean * n as f32 + hz) / (n + 1) as f32, n + 1));
                None
            }
            (prev, next) => {
                self.tone = next.map(|hz| (hz, 1));
                let (mean, n) = prev?;
                let ms = n * FRAME_MS;
                (MIN_MS..=MAX_MS).contains(&ms).then(|| Beep { freq_hz: mean, duration_ms: ms, ended_at_ms: (self.frames_seen - 1) * FRAME_MS as u64 })
            }
        }
    }

    /// The frequency of a pure tone filling this frame, if there is one.
    fn tone_in_frame(&self) -> Option<f32> {
        let b = &self.buf;
        let total = mean_square(b);
        if total < 1e-5 {
            return None;
        }
        let coarse = (0..=((MAX_HZ - MIN_HZ) / STEP_HZ) as usize).map(|i| MIN_HZ + i as f32 * STEP_HZ);
        let (peak, _) = coarse.map(|f| (f, power(b, f, self.rate))).fold((0.0, 0.0f32), |m, x| if x.1 > m.1 { x } else { m });
        // Refine in 10 Hz steps around the coarse peak.
        let (hz, p) = (-4..=4).map(|k| peak + k as f32 * 10.0).map(|f| (f, power(b, f, self.rate))).fold((0.0, 0.0f32), |m, x| if x.1 > m.1 { x } else { m });
        (p >= PURITY * total).then_some(hz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f32, ms: usize, amp: f32) -> Vec<i16> {
        (0..ms * 8).map(|i| ((2.0 * std::f32::consts::PI * hz * i as f32 / 8000.0).sin() * amp) as i16).collect()
    }

    fn speechlike(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f32 / 8000.0;
                let f0 = 120.0 + 80.0 * (t * 1.3).sin().abs();
                let v: f32 = (1..12).map(|h| (2.0 * std::f32::consts::PI * f0 * h as f32 * t).sin() / h as f32).sum();
                (v * 9000.0) as i16
            })
            .collect()
    }

    fn detect(pcm: &[i16]) -> Vec<Beep> {
        let mut d = BeepDetector::new(8000);
        pcm.chunks(333).filter_map(|c| d.push(c)).collect()
    }

    #[test]
    fn a_beep_after_a_greeting_is_found_once() {
        let mut pcm = speechlike(16000);
        pcm.extend(sine(1000.0, 400, 9000.0));
        pcm.extend(vec![0; 4000]);
        let b = detect(&pcm);
        assert_eq!(b.len(), 1, "{b:?}");
        assert!((b[0].freq_hz - 1000.0).abs() <= 30.0, "{b:?}");
        assert!((b[0].duration_ms as i32 - 400).abs() <= 40, "{b:?}");
        assert!((2380..=2460).contains(&b[0].ended_at_ms), "{b:?}");
        for hz in [440.0, 850.0, 1400.0] {
            let mut p = vec![0; 800];
            p.extend(sine(hz, 300, 8000.0));
            p.extend(vec![0; 800]);
            let b = detect(&p);
            assert!(b.len() == 1 && (b[0].freq_hz - hz).abs() <= 30.0, "{hz}: {b:?}");
        }
    }

    #[test]
    fn speech_dtmf_noise_and_blips_are_not_beeps() {
        assert!(detect(&speechlike(24000)).is_empty());
        assert!(detect(&crate::dtmf::tones("123456789", 8000).unwrap()).is_empty());
        let mut blip = sine(1000.0, 60, 9000.0);
        blip.extend(vec![0; 800]);
        assert!(detect(&blip).is_empty());
        let mut seed = 9u32;
        let noise: Vec<i16> = (0..16000).map(|_| { seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5; (seed as i32 >> 18) as i16 }).collect();
        assert!(detect(&noise).is_empty());
    }

    #[test]
    fn a_noisy_or_mulaw_beep_is_still_found() {
        let mut seed = 5u32;
        let mut pcm = sine(850.0, 500, 9000.0);
        for s in pcm.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            *s = s.saturating_add(((seed as f32 / u32::MAX as f32 * 2.0 - 1.0) * 1100.0) as i16);
        }
        pcm.extend(vec![0; 800]);
        assert_eq!(detect(&pcm).len(), 1, "20 dB SNR");
        let ulaw = crate::g711::mulaw_decode_all(&crate::g711::mulaw_encode_all(&pcm));
        assert_eq!(detect(&ulaw).len(), 1);
    }
}
