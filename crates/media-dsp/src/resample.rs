//! Streaming rational-ratio polyphase resampler with a Kaiser-windowed sinc filter.
//!
//! `to/from` is reduced to `L/M`; the prototype low-pass runs at `L × from` with its cut-off
//! just below the lower Nyquist of the two rates, so down-sampling does not alias and
//! up-sampling does not image. Each output sample costs `taps_per_phase` multiply-adds.

#[derive(Debug, Clone)]
pub struct Resampler {
    l: u64,
    m: u64,
    taps: usize,
    /// `filter[phase * taps + k]`: the polyphase branches, reversed for a forward dot product.
    filter: Vec<f32>,
    /// Input samples from absolute index `base` on (the first `taps - 1` are history).
    buf: Vec<f32>,
    base: i64,
    /// Next output position in units of 1/L input samples (absolute).
    next: u64,
    from: u32,
    to: u32,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > 1e-12 * sum {
        term *= (x / (2.0 * k)).powi(2);
        sum += term;
        k += 1.0;
    }
    sum
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Self {
        assert!(from > 0 && to > 0, "sample rates must be positive");
        let g = gcd(from as u64, to as u64);
        let (l, m) = (to as u64 / g, from as u64 / g);
        // ~12 zero crossings each side of the centre at the narrower of the two bandwidths.
        let taps = ((24 * l.max(m)) as f64 / l as f64).ceil() as usize | 1;
        let n = l as usize * taps;
        let fc = 0.5 / l.max(m) as f64 * 0.94; // cycles per up-sampled sample
        let beta = 8.6;
        let centre = (n - 1) as f64 / 2.0;
        let proto: Vec<f64> = (0..n)
            .map(|j| {
                let t = j as f64 - centre;
                let x = 2.0 * fc * t;
                let sinc = if x.abs() < 1e-12 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) };
                let r = t / (centre + 1.0);
                let w = bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / bessel_i0(beta);
                2.0 * fc * sinc * w * l as f64
            })
            .collect();
        // Branch p holds proto[p + k*L], reversed so that tap k multiplies x[i - (taps-1) + k].
        let mut filter = vec![0f32; n];
        for p in 0..l as usize {
            for k in 0..taps {
                filter[p * taps + (taps - 1 - k)] = proto[p + k * l as usize] as f32;
            }
        }
        Resampler { l, m, taps, filter, buf: vec![0.0; taps - 1], base: -(taps as i64 - 1), next: 0, from, to }
    }

    pub fn from_rate(&self) -> u32 { self.from }
    pub fn to_rate(&self) -> u32 { self.to }

    /// Resamples the next block of a stream; keeps state across calls.
    pub fn process(&mut self, input: &[f32]) -> Vec<f32> {
        if self.l == self.m {
            return input.to_vec();
        }
        self.buf.extend_from_slice(input);
        let end = self.base + self.buf.len() as i64;
        let mut out = Vec::with_capacity((input.len() as u64 * self.l / self.m + 2) as usize);
        loop {
            let i = (self.next / self.l) as i64;
            if i >= end {
                break;
            }
            let p = (self.next % self.l) as usize;
            let start = (i - (self.taps as i64 - 1) - self.base) as usize;
            let x = &self.buf[start..start + self.taps];
            let h = &self.filter[p * self.taps..(p + 1) * self.taps];
            out.push(x.iter().zip(h).map(|(a, b)| a * b).sum());
            self.next += self.m;
        }
        let keep_from = (self.next / self.l) as i64 - (self.taps as i64 - 1);
        let drop = (keep_from - self.base).clamp(0, self.buf.len() as i64) as usize;
        self.buf.drain(..drop);
        self.base += drop as i64;
        out
    }

    /// PCM16 convenience wrapper around [`Resampler::process`].
    pub fn process_i16(&mut self, input: &[i16]) -> Vec<i16> {
        if self.l == self.m {
            return input.to_vec();
        }
        let x: Vec<f32> = input.iter().map(|&s| s as f32).collect();
        self.process(&x).into_iter().map(|s| s.round().clamp(-32768.0, 32767.0) as i16).collect()
    }

    /// Resamples a whole signal at once, compensating the filter delay.
    pub fn oneshot(input: &[f32], from: u32, to: u32) -> Vec<f32> {
        let mut r = Resampler::new(from, to);
        let delay_in = (r.taps - 1) / 2;
        let mut padded = input.to_vec();
        padded.extend(std::iter::repeat_n(0.0, delay_in + 1));
        let out = r.process(&padded);
        let delay_out = (delay_in as u64 * r.l / r.m) as usize;
        let want = (input.len() as u64 * r.l / r.m) as usize;
        out.into_iter().skip(delay_out).take(want).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize).map(|n| (2.0 * std::f32::consts::PI * freq * n as f32 / rate as f32).sin() * 0.5).collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|s| s * s).sum::<f32>() / x.len() as f32).sqrt()
    }

    /// Amplitude of `freq` in `x` by correlation with a quadrature pair.
    fn tone_level(x: &[f32], freq: f32, rate: u32) -> f32 {
        let (mut c, mut s) = (0f32, 0f32);
        for (n, v) in x.iter().enumerate() {
            let ph = 2.0 * std::f32::consts::PI * freq * n as f32 / rate as f32;
            c += v * ph.cos();
            s += v * ph.sin();
        }
        2.0 * (c * c + s * s).sqrt() / x.len() as f32
    }

    #[test]
    fn passband_tone_keeps_level_and_frequency() {
        for (from, to) in [(8000, 16000), (16000, 8000), (22050, 8000), (8000, 22050), (24000, 8000)] {
            let out = Resampler::oneshot(&sine(1000.0, from, 1.0), from, to);
            assert_eq!(out.len(), to as usize, "{from}->{to} length");
            let mid = &out[out.len() / 4..out.len() * 3 / 4];
            let level = tone_level(mid, 1000.0, to);
            assert!((level - 0.5).abs() < 0.01, "{from}->{to}: 1 kHz level {level}");
        }
    }

    #[test]
    fn downsampling_rejects_aliases() {
        // 6 kHz is above the 4 kHz Nyquist of 8 kHz: it must not fold back to 2 kHz.
        let out = Resampler::oneshot(&sine(6000.0, 22050, 1.0), 22050, 8000);
        let mid = &out[1000..7000];
        assert!(rms(mid) < 0.5 * 0.01, "alias rms {}", rms(mid));
    }

    #[test]
    fn streaming_equals_oneshot_blocks() {
        let x = sine(440.0, 8000, 0.5);
        let mut whole = Resampler::new(8000, 16000);
        let a = whole.process(&x);
        let mut chunked = Resampler::new(8000, 16000);
        let b: Vec<f32> = x.chunks(160).flat_map(|c| chunked.process(c)).collect();
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-6));
    }
}
