//! Signal processing for the media plane: G.711 µ-law, sample-rate conversion, WAV files,
//! DTMF tones and detection, answering-machine beep detection.

pub mod beep;
pub mod dtmf;
pub mod g711;
pub mod goertzel;
pub mod resample;
pub mod wav;
pub mod wav_stream;

pub use resample::Resampler;

/// PCM16 → f32 in [-1, 1).
pub fn i16_to_f32(pcm: &[i16]) -> Vec<f32> {
    pcm.iter().map(|&s| s as f32 / 32768.0).collect()
}

/// f32 → PCM16 with clipping.
pub fn f32_to_i16(x: &[f32]) -> Vec<i16> {
    x.iter().map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).collect()
}

/// Root-mean-square level of PCM16 audio in dBFS (−∞ for digital silence).
pub fn rms_dbfs(pcm: &[i16]) -> f32 {
    if pcm.is_empty() {
        return f32::NEG_INFINITY;
    }
    let e: f64 = pcm.iter().map(|&s| (s as f64 / 32768.0).powi(2)).sum::<f64>() / pcm.len() as f64;
    10.0 * (e.max(1e-20)).log10() as f32
}
