//! The Goertzel algorithm: the power of one frequency in a block, for a handful of frequencies
//! far cheaper than an FFT (DTMF and beep detection run on every frame of a call).

/// Power of `freq` in `block` (PCM as f32), normalised by the block length so it is comparable
/// with the block's mean-square energy: a full-scale sine of amplitude A gives about A²/4·N…
/// divided by N/2, i.e. ≈ A²/2 — the sine's own mean square.
pub fn power(block: &[f32], freq: f32, rate: u32) -> f32 {
    let n = block.len();
    if n == 0 {
        return 0.0;
    }
    let w = 2.0 * std::f32::consts::PI * freq / rate as f32;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in block {
        let s = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let p = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * p / (n as f32 * n as f32)
}

/// Mean square of a block.
pub fn mean_square(block: &[f32]) -> f32 {
    if block.is_empty() {
        return 0.0;
    }
    block.iter().map(|x| x * x).sum::<f32>() / block.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sine_has_its_power_at_its_frequency_only() {
        let x: Vec<f32> = (0..400).map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 8000.0).sin() * 0.5).collect();
        let ms = mean_square(&x);
        assert!((power(&x, 1000.0, 8000) / ms - 1.0).abs() < 0.05, "{} vs {ms}", power(&x, 1000.0, 8000));
        assert!(power(&x, 1400.0, 8000) < ms * 0.01);
        assert_eq!(power(&[], 1000.0, 8000), 0.0);
    }
}
