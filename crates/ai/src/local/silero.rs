//! Silero VAD v6 through ONNX Runtime, native at 8 kHz (256-sample frames) or 16 kHz (512).
//! Each frame is prefixed with the previous frame's last context samples (32 / 64): without
//! them v6 outputs ~0 on speech. The weights (a few ort sessions) are shared by every call;
//! a call's own state is the 2×1×128 recurrent state and the context.

use std::sync::Arc;

use ort::session::Session;
use ort::value::Tensor;
use parking_lot::Mutex;

use super::ort_env;
use crate::models::ModelPaths;
use crate::{AiError, Result, Vad, VadFactory};

const STATE: usize = 2 * 128;

pub struct SileroVadFactory {
    pool: Arc<Vec<Mutex<Session>>>,
}

impl SileroVadFactory {
    pub fn load(paths: &ModelPaths) -> Result<Self> {
        ort_env::init(paths)?;
        let model = paths.silero_vad()?;
        let pool = (0..ort_env::pool_size()).map(|_| ort_env::session("silero-vad", &model, 1).map(Mutex::new)).collect::<Result<Vec<_>>>()?;
        Ok(SileroVadFactory { pool: Arc::new(pool) })
    }
}

impl VadFactory for SileroVadFactory {
    fn create(&self, sample_rate: u32) -> Result<Box<dyn Vad>> {
        let (frame, context) = match sample_rate {
            8000 => (256, 32),
            16000 => (512, 64),
            r => return Err(AiError::Config(format!("Silero VAD runs at 8000 or 16000 Hz, not {r}"))),
        };
        Ok(Box::new(SileroVad { pool: self.pool.clone(), rate: sample_rate, frame, context: vec![0.0; context], state: vec![0.0; STATE], input: Vec::with_capacity(frame + context), next: 0 }))
    }
}

pub struct SileroVad {
    pool: Arc<Vec<Mutex<Session>>>,
    rate: u32,
    frame: usize,
    context: Vec<f32>,
    state: Vec<f32>,
    input: Vec<f32>,
    next: usize,
}

impl SileroVad {
    fn session(&mut self) -> parking_lot::MutexGuard<'_, Session> {
        // Take a free session if there is one, else wait on this call's usual one.
        let n = self.pool.len();
        for i in 0..n {
            if let Some(g) = self.pool[(self.next + i) % n].try_lock() {
                return g;
            }
        }
        self.pool[self.next % n].lock()
    }
}

impl Vad for SileroVad {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn frame_len(&self) -> usize {
        self.frame
    }

    fn process(&mut self, frame: &[f32]) -> Result<f32> {
        if frame.len() != self.frame {
            return Err(AiError::Config(format!("Silero frame must be {} samples, got {}", self.frame, frame.len())));
        }
        let err = |e: ort::Error| AiError::inference("silero-vad", e);
        self.input.clear();
        self.input.extend_from_slice(&self.context);
        self.input.extend_from_slice(frame);
        let ctx = self.context.len();
        self.context.copy_from_slice(&frame[self.frame - ctx..]);
        let input = Tensor::from_array(([1usize, self.input.len()], self.input.clone())).map_err(err)?;
        let state = Tensor::from_array(([2usize, 1, 128], self.state.clone())).map_err(err)?;
        let sr = Tensor::from_array(([1usize], vec![self.rate as i64])).map_err(err)?;
        let rate_inputs = ort::inputs!["input" => input, "state" => state, "sr" => sr];
        let (prob, new_state) = {
            let mut s = self.session();
            let out = s.run(rate_inputs).map_err(err)?;
            let (_, p) = out["output"].try_extract_tensor::<f32>().map_err(err)?;
            let (_, st) = out["stateN"].try_extract_tensor::<f32>().map_err(err)?;
            (p.first().copied().unwrap_or(0.0), st.to_vec())
        };
        if new_state.len() == STATE {
            self.state = new_state;
        }
        Ok(prob)
    }

    fn reset(&mut self) {
        self.state.iter_mut().for_each(|x| *x = 0.0);
        self.context.iter_mut().for_each(|x| *x = 0.0);
    }
}

/// Speech probability of every whole frame of `samples` (for `callfunnel vad`).
pub fn probabilities(vad: &mut dyn Vad, samples: &[f32]) -> Result<Vec<f32>> {
    samples.chunks_exact(vad.frame_len()).map(|f| vad.process(f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn espeak(text: &str, rate: u32) -> Vec<f32> {
        let out = std::process::Command::new("espeak-ng").args(["-v", "en-us", "--stdout", text]).output().expect("espeak-ng");
        let mut r = hound::WavReader::new(std::io::Cursor::new(out.stdout)).unwrap();
        let sr = r.spec().sample_rate;
        let x: Vec<f32> = r.samples::<i16>().map_while(|s| s.ok()).map(|s| s as f32 / 32768.0).collect();
        callfunnel_media_dsp::Resampler::oneshot(&x, sr, rate)
    }

    #[test]
    fn speech_scores_high_and_silence_low_at_both_rates() {
        let f = SileroVadFactory::load(&ModelPaths::default()).unwrap();
        for rate in [8000, 16000] {
            let mut speech = espeak("Hello, I would like to book an appointment for tomorrow morning please.", rate);
            speech.extend(vec![0.0; rate as usize]);
            let mut vad = f.create(rate).unwrap();
            let p = probabilities(vad.as_mut(), &speech).unwrap();
            let n = p.len();
            let speech_part = &p[..n - rate as usize / vad.frame_len()];
            let high = speech_part.iter().filter(|&&x| x > 0.5).count() as f32 / speech_part.len() as f32;
            assert!(high > 0.5, "{rate} Hz: only {high:.2} of speech frames above 0.5");
            let tail = &p[n - 10..];
            assert!(tail.iter().all(|&x| x < 0.2), "{rate} Hz: silence scored {tail:?}");
            // Reset forgets the state: the same frame scores the same afterwards.
            vad.reset();
            let a = vad.process(&speech[..vad.frame_len()]).unwrap();
            vad.reset();
            let b = vad.process(&speech[..vad.frame_len()]).unwrap();
            assert_eq!(a, b);
        }
        assert!(f.create(44100).is_err());
    }
}
