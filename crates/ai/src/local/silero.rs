//! Silero VAD v6 through ONNX Runtime, native at 8 kHz (256-sample frames) or 16 kHz (512).
//! Each frame is prefixed with the previous frame's last context samples (32 / 64): without
//! them v6 outputs ~0 on speech. The weights are shared by every call; a call's own state is
//! the 2×1×128 recurrent state and the context.
//!
//! In calls, frames are scored through [`Vad::score`], which hands them to the batcher
//! ([`super::silero_batch`]): one model run for every frame waiting across all calls. The
//! model's per-run overhead dominates a single 32 ms frame, so batching is what lets one core
//! run Silero for hundreds of calls. [`Vad::process`] runs one frame on the calling thread.

use std::sync::Arc;

use async_trait::async_trait;
use ort::session::Session;
use ort::value::TensorRef;
use parking_lot::Mutex;

use super::ort_env;
use super::silero_batch::Batcher;
use crate::models::ModelPaths;
use crate::{AiError, Result, Vad, VadFactory};

/// One call's recurrent state: 2 layers × 128.
pub(crate) const STATE: usize = 2 * 128;

pub struct SileroVadFactory {
    pool: Arc<Vec<Mutex<Session>>>,
    batcher: Arc<Batcher>,
}

impl SileroVadFactory {
    pub fn load(paths: &ModelPaths) -> Result<Self> {
        ort_env::init(paths)?;
        let model = paths.silero_vad()?;
        let session = || ort_env::session("silero-vad", &model, 1);
        let pool = (0..ort_env::pool_size()).map(|_| session().map(Mutex::new)).collect::<Result<Vec<_>>>()?;
        Ok(SileroVadFactory { pool: Arc::new(pool), batcher: Arc::new(Batcher::start(session()?)?) })
    }
}

impl VadFactory for SileroVadFactory {
    fn create(&self, sample_rate: u32) -> Result<Box<dyn Vad>> {
        let (frame, context) = match sample_rate {
            8000 => (256, 32),
            16000 => (512, 64),
            r => return Err(AiError::Config(format!("Silero VAD runs at 8000 or 16000 Hz, not {r}"))),
        };
        Ok(Box::new(SileroVad {
            pool: self.pool.clone(),
            batcher: self.batcher.clone(),
            rate: sample_rate,
            frame,
            context: vec![0.0; context],
            state: vec![0.0; STATE],
            input: Vec::with_capacity(frame + context),
        }))
    }
}

pub struct SileroVad {
    pool: Arc<Vec<Mutex<Session>>>,
    batcher: Arc<Batcher>,
    rate: u32,
    frame: usize,
    context: Vec<f32>,
    state: Vec<f32>,
    input: Vec<f32>,
}

/// Runs Silero on `batch` frames at once. `input` is `batch` rows of context + frame;
/// `state` is the batch's recurrent state laid out as the model wants it, `[2, batch, 128]`,
/// and is replaced by the new state. The probabilities go to `probs`, one per row.
pub(crate) fn run_batch(session: &mut Session, rate: u32, batch: usize, input: &[f32], state: &mut [f32], probs: &mut Vec<f32>) -> Result<()> {
    let err = |e: ort::Error| AiError::inference("silero-vad", e);
    let sr = [rate as i64];
    let x = TensorRef::from_array_view(([batch, input.len() / batch], input)).map_err(err)?;
    let h = TensorRef::from_array_view(([2usize, batch, 128], &*state)).map_err(err)?;
    let sr = TensorRef::from_array_view(([1usize], &sr[..])).map_err(err)?;
    let out = session.run(ort::inputs!["input" => x, "state" => h, "sr" => sr]).map_err(err)?;
    let (_, p) = out["output"].try_extract_tensor::<f32>().map_err(err)?;
    let (_, st) = out["stateN"].try_extract_tensor::<f32>().map_err(err)?;
    if p.len() != batch || st.len() != state.len() {
        return Err(AiError::inference("silero-vad", format!("unexpected output sizes {} and {} for a batch of {batch}", p.len(), st.len())));
    }
    probs.clear();
    probs.extend_from_slice(p);
    state.copy_from_slice(st);
    Ok(())
}

impl SileroVad {
    /// Puts context + `frame` in `input` and keeps the frame's tail as the next context.
    fn stage(&mut self, frame: &[f32]) -> Result<()> {
        if frame.len() != self.frame {
            return Err(AiError::Config(format!("Silero frame must be {} samples, got {}", self.frame, frame.len())));
        }
        self.input.clear();
        self.input.extend_from_slice(&self.context);
        self.input.extend_from_slice(frame);
        let ctx = self.context.len();
        self.context.copy_from_slice(&frame[self.frame - ctx..]);
        Ok(())
    }
}

#[async_trait]
impl Vad for SileroVad {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn frame_len(&self) -> usize {
        self.frame
    }

    fn process(&mut self, frame: &[f32]) -> Result<f32> {
        self.stage(frame)?;
        let mut probs = Vec::with_capacity(1);
        run_batch(&mut ort_env::any_free(&self.pool), self.rate, 1, &self.input, &mut self.state, &mut probs)?;
        Ok(probs[0])
    }

    async fn score(&mut self, frame: &[f32]) -> Result<f32> {
        self.stage(frame)?;
        let (input, state) = (std::mem::take(&mut self.input), std::mem::take(&mut self.state));
        match self.batcher.score(self.rate, input, state).await {
            Ok((prob, input, state)) => {
                (self.input, self.state) = (input, state);
                Ok(prob)
            }
            Err(e) => {
                // The frame's state went with the failed run: start this stream afresh.
                (self.input, self.state) = (Vec::with_capacity(self.frame + self.context.len()), vec![0.0; STATE]);
                Err(e)
            }
        }
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

    fn stream(text: &str, rate: u32, offset: usize) -> Vec<f32> {
        let mut x = vec![0.0; offset];
        x.extend(espeak(text, rate));
        x
    }

    /// One run over a batch gives each row what it would get alone: the same probabilities
    /// and, frame after frame, the same recurrent state.
    #[test]
    fn a_batch_scores_each_stream_as_if_alone() {
        let f = SileroVadFactory::load(&ModelPaths::default()).unwrap();
        let streams = [stream("Good morning, this is the clinic.", 8000, 0), stream("Yes, tomorrow at nine works.", 8000, 1200), vec![0.0; 24000]];
        let frames = 60;
        let alone: Vec<Vec<f32>> = streams.iter().map(|s| {
            let mut v = f.create(8000).unwrap();
            s.chunks_exact(256).take(frames).map(|c| v.process(c).unwrap()).collect()
        }).collect();
        let mut session = ort_env::any_free(&f.pool);
        let mut state = vec![0.0; STATE * 3];
        let mut context = vec![vec![0.0; 32]; 3];
        let (mut input, mut probs) = (Vec::new(), Vec::new());
        for k in 0..frames {
            input.clear();
            for (i, s) in streams.iter().enumerate() {
                let frame = &s[k * 256..][..256];
                input.extend_from_slice(&context[i]);
                input.extend_from_slice(frame);
                context[i].copy_from_slice(&frame[224..]);
            }
            run_batch(&mut session, 8000, 3, &input, &mut state, &mut probs).unwrap();
            for i in 0..3 {
                assert!((probs[i] - alone[i][k]).abs() < 1e-4, "stream {i} frame {k}: batched {} alone {}", probs[i], alone[i][k]);
            }
        }
        assert!(alone[0].iter().any(|&p| p > 0.5) && alone[2].iter().all(|&p| p < 0.2), "the streams should differ");
    }

    /// Many calls scoring at once through the batcher get what each would get alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_scoring_together_get_their_own_results() {
        let f = Arc::new(SileroVadFactory::load(&ModelPaths::default()).unwrap());
        let calls: Vec<_> = (0..12).map(|i| {
            let (f, audio) = (f.clone(), stream("I would like to book an appointment.", 8000, i * 700));
            tokio::spawn(async move {
                let (mut batched, mut alone) = (f.create(8000).unwrap(), f.create(8000).unwrap());
                for c in audio.chunks_exact(256).take(50) {
                    let (b, a) = (batched.score(c).await.unwrap(), alone.process(c).unwrap());
                    assert!((a - b).abs() < 1e-4, "call {i}: batched {b} alone {a}");
                    tokio::task::yield_now().await;
                }
            })
        }).collect();
        for c in calls {
            c.await.unwrap();
        }
    }
}

#[cfg(test)]
mod batch_cost {
    use super::*;

    /// Not a test: `cargo test --release --workspace --lib batch_cost -- --ignored --nocapture`
    /// prints what a frame costs in batches of different sizes.
    #[test]
    #[ignore]
    fn per_frame_cost_by_batch_size() {
        let f = SileroVadFactory::load(&ModelPaths::default()).unwrap();
        let mut s = ort_env::any_free(&f.pool);
        for b in [1usize, 2, 4, 8, 16, 32, 64] {
            let input: Vec<f32> = (0..b * 288).map(|i| ((i * 7919) % 1000) as f32 / 5000.0 - 0.1).collect();
            let mut state = vec![0.0; STATE * b];
            let mut probs = Vec::new();
            let n = 2000 / b + 20;
            let t = std::time::Instant::now();
            for _ in 0..n {
                run_batch(&mut s, 8000, b, &input, &mut state, &mut probs).unwrap();
            }
            eprintln!("batch {b:>2}: {:.1} µs per frame", t.elapsed().as_secs_f64() * 1e6 / (n * b) as f64);
        }
    }
}
