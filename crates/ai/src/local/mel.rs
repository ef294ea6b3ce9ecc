//! Whisper-style log-mel features as Smart Turn v3 was trained on: 8 s at 16 kHz
//! (left-padded with zeros, or the last 8 s), zero-mean/unit-variance waveform, centred
//! reflect-padded STFT (400-point periodic Hann, hop 160), Slaney mel (80 bins), log10,
//! clamp to max−8, (x+4)/4. Output `[80][800]` row-major.

use std::sync::{Arc, OnceLock};

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::models::ct2_ggml::mel_filterbank;

pub const RATE: usize = 16000;
pub const SAMPLES: usize = 8 * RATE;
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
pub const N_MELS: usize = 80;
pub const FRAMES: usize = SAMPLES / HOP; // 800

struct Tables {
    fft: Arc<dyn Fft<f64>>,
    window: Vec<f64>,
    /// Each mel filter as its first non-zero bin and its weights from there (a filter covers
    /// a few bins of 201: summing only those is the same sum, about 15 times fewer products).
    filters: Vec<(usize, Vec<f32>)>,
}

fn sparse(filters: Vec<Vec<f32>>) -> Vec<(usize, Vec<f32>)> {
    filters
        .into_iter()
        .map(|f| {
            let first = f.iter().position(|&w| w != 0.0).unwrap_or(0);
            let last = f.iter().rposition(|&w| w != 0.0).map_or(first, |l| l + 1);
            (first, f[first..last.max(first)].to_vec())
        })
        .collect()
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| Tables {
        fft: FftPlanner::new().plan_fft_forward(N_FFT),
        window: (0..N_FFT).map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()).collect(),
        filters: sparse(mel_filterbank(RATE as f64, N_FFT, N_MELS)),
    })
}

/// The last 8 s of `audio`, zero-padded at the start when shorter.
pub fn last_window(audio: &[f32]) -> Vec<f32> {
    if audio.len() >= SAMPLES {
        audio[audio.len() - SAMPLES..].to_vec()
    } else {
        let mut v = vec![0.0; SAMPLES - audio.len()];
        v.extend_from_slice(audio);
        v
    }
}

/// Log-mel features of exactly `SAMPLES` samples (use [`last_window`] first).
pub fn log_mel(window8s: &[f32]) -> Vec<f32> {
    assert_eq!(window8s.len(), SAMPLES, "log_mel takes exactly 8 s");
    let t = tables();
    let n = SAMPLES as f64;
    let mean = window8s.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = window8s.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let scale = 1.0 / (var + 1e-7).sqrt();
    // Normalise in f32 as the reference does, then reflect-pad by N_FFT/2 on both sides.
    let x: Vec<f64> = window8s.iter().map(|&v| ((v as f64 - mean) * scale) as f32 as f64).collect();
    let pad = N_FFT / 2;
    let mut padded = Vec::with_capacity(SAMPLES + 2 * pad);
    padded.extend((1..=pad).rev().map(|i| x[i]));
    padded.extend_from_slice(&x);
    padded.extend((0..pad).map(|i| x[SAMPLES - 2 - i]));

    let bins = N_FFT / 2 + 1;
    let mut out = vec![0f32; N_MELS * FRAMES];
    let mut buf = vec![Complex::new(0.0, 0.0); N_FFT];
    let mut power = vec![0f64; bins];
    // The reference drops the last of its 801 frames: compute only the first 800.
    for f in 0..FRAMES {
        let start = f * HOP;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = Complex::new(padded[start + i] * t.window[i], 0.0);
        }
        t.fft.process(&mut buf);
        for (k, p) in power.iter_mut().enumerate() {
            *p = buf[k].norm_sqr();
        }
        for (m, (first, filt)) in t.filters.iter().enumerate() {
            let e: f64 = filt.iter().zip(&power[*first..]).map(|(&w, &p)| w as f64 * p).sum();
            out[m * FRAMES + f] = e.max(1e-10).log10() as f32;
        }
    }
    let max = out.iter().copied().fold(f32::MIN, f32::max);
    for v in &mut out {
        *v = ((*v).max(max - 8.0) + 4.0) / 4.0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_match_the_reference_implementation() {
        // Three tones for 1 s (left-padded to 8 s); the reference (pipecat's numpy code) was
        // run once on the same input to get these values.
        let tone = |f: f32, a: f32, n: usize| a * (2.0 * std::f32::consts::PI * f * n as f32 / RATE as f32).sin();
        let audio: Vec<f32> = (0..RATE).map(|n| tone(300.0, 0.3, n) + tone(1000.0, 0.2, n) + tone(2500.0, 0.1, n)).collect();
        let f = log_mel(&last_window(&audio));
        assert_eq!(f.len(), N_MELS * FRAMES);
        let at = |m: usize, t: usize| f[m * FRAMES + t];
        for (m, t, want) in REFERENCE {
            assert!((at(m, t) - want).abs() < 2e-3, "mel {m} frame {t}: {} vs {want}", at(m, t));
        }
    }

    // (mel bin, frame, value) from the reference implementation.
    const REFERENCE: [(usize, usize, f32); 7] = [(0, 750, 0.26222), (2, 750, 0.60306), (4, 750, 1.00626), (5, 750, 1.41263), (7, 750, 1.81636), (0, 0, -0.18364), (10, 699, 0.72809)];
}
