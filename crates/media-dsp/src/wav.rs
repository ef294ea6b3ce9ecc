//! WAV files: read any PCM WAV as mono at a chosen rate, write PCM16 mono.

use std::path::Path;

use crate::Resampler;

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot read WAV {path}: {source}")]
    Read { path: String, source: hound::Error },
    #[error("cannot write WAV {path}: {source}")]
    Write { path: String, source: hound::Error },
    #[error("unsupported WAV {path}: {what}")]
    Unsupported { path: String, what: String },
}

/// Reads a WAV file (8/16/24/32-bit int or 32-bit float, any channel count), mixes to mono
/// and resamples to `rate`. Returns f32 samples in [-1, 1].
pub fn read_mono(path: &Path, rate: u32) -> Result<Vec<f32>, WavError> {
    let p = path.display().to_string();
    let mut r = hound::WavReader::open(path).map_err(|source| WavError::Read { path: p.clone(), source })?;
    let spec = r.spec();
    let ch = spec.channels.max(1) as usize;
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float if spec.bits_per_sample == 32 => {
            r.samples::<f32>().collect::<Result<_, _>>().map_err(|source| WavError::Read { path: p.clone(), source })?
        }
        hound::SampleFormat::Int if (8..=32).contains(&spec.bits_per_sample) => {
            let scale = (1i64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>().map(|s| s.map(|v| v as f32 / scale)).collect::<Result<_, _>>().map_err(|source| WavError::Read { path: p.clone(), source })?
        }
        _ => return Err(WavError::Unsupported { path: p, what: format!("{:?} {} bits", spec.sample_format, spec.bits_per_sample) }),
    };
    let mono: Vec<f32> = samples.chunks(ch).map(|f| f.iter().sum::<f32>() / ch as f32).collect();
    Ok(if spec.sample_rate == rate { mono } else { Resampler::oneshot(&mono, spec.sample_rate, rate) })
}

/// Writes PCM16 mono.
pub fn write_i16(path: &Path, rate: u32, pcm: &[i16]) -> Result<(), WavError> {
    let p = path.display().to_string();
    let spec = hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).map_err(|source| WavError::Write { path: p.clone(), source })?;
    for &s in pcm {
        w.write_sample(s).map_err(|source| WavError::Write { path: p.clone(), source })?;
    }
    w.finalize().map_err(|source| WavError::Write { path: p, source })
}

/// Writes two PCM16 channels (left = caller, right = agent), padding the shorter one.
pub fn write_stereo_i16(path: &Path, rate: u32, left: &[i16], right: &[i16]) -> Result<(), WavError> {
    let p = path.display().to_string();
    let spec = hound::WavSpec { channels: 2, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).map_err(|source| WavError::Write { path: p.clone(), source })?;
    for i in 0..left.len().max(right.len()) {
        for s in [left.get(i).copied().unwrap_or(0), right.get(i).copied().unwrap_or(0)] {
            w.write_sample(s).map_err(|source| WavError::Write { path: p.clone(), source })?;
        }
    }
    w.finalize().map_err(|source| WavError::Write { path: p, source })
}
