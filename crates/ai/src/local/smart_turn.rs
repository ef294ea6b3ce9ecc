//! Smart Turn v3.2: an audio model that says whether the caller has finished their turn,
//! from Whisper-style log-mel features of the last 8 s. Run when VAD hears a pause, so a
//! pause mid-sentence ("I'd like to book an… appointment") does not end the turn.

use std::sync::Arc;

use async_trait::async_trait;
use ort::session::Session;
use ort::value::Tensor;
use parking_lot::Mutex;

use super::{mel, ort_env};
use crate::models::ModelPaths;
use crate::{AiError, Result, TurnDetector, TurnPrediction};

pub struct SmartTurn {
    sessions: Arc<Vec<Mutex<Session>>>,
}

impl SmartTurn {
    pub fn load(paths: &ModelPaths) -> Result<Self> {
        ort_env::init(paths)?;
        let model = paths.smart_turn()?;
        let sessions = (0..ort_env::pool_size().min(2)).map(|_| ort_env::session("smart-turn", &model, 1).map(Mutex::new)).collect::<Result<Vec<_>>>()?;
        Ok(SmartTurn { sessions: Arc::new(sessions) })
    }

    /// Probability that the turn is complete (blocking).
    pub fn probability(&self, audio_16k: &[f32]) -> Result<f32> {
        run(&self.sessions, audio_16k)
    }
}

fn run(sessions: &[Mutex<Session>], audio_16k: &[f32]) -> Result<f32> {
    let features = mel::log_mel(&mel::last_window(audio_16k));
    let err = |e: ort::Error| AiError::inference("smart-turn", e);
    let input = Tensor::from_array(([1usize, mel::N_MELS, mel::FRAMES], features)).map_err(err)?;
    let mut s = sessions.iter().find_map(|s| s.try_lock()).unwrap_or_else(|| sessions[0].lock());
    let out = s.run(ort::inputs!["input_features" => input]).map_err(err)?;
    let (_, p) = out[0].try_extract_tensor::<f32>().map_err(err)?;
    p.first().copied().ok_or_else(|| AiError::inference("smart-turn", "empty output"))
}

#[async_trait]
impl TurnDetector for SmartTurn {
    async fn predict(&self, audio_16k: Vec<f32>) -> Result<TurnPrediction> {
        let sessions = self.sessions.clone();
        let probability = tokio::task::spawn_blocking(move || run(&sessions, &audio_16k)).await.map_err(|e| AiError::inference("smart-turn", e))??;
        Ok(TurnPrediction { complete: probability > 0.5, probability })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn espeak_16k(text: &str) -> Vec<f32> {
        let out = std::process::Command::new("espeak-ng").args(["-v", "en-us", "--stdout", text]).output().expect("espeak-ng");
        let mut r = hound::WavReader::new(std::io::Cursor::new(out.stdout)).unwrap();
        let sr = r.spec().sample_rate;
        let x: Vec<f32> = r.samples::<i16>().map_while(|s| s.ok()).map(|s| s as f32 / 32768.0).collect();
        callfunnel_media_dsp::Resampler::oneshot(&x, sr, 16000)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn complete_sentences_score_higher_than_cut_off_ones() {
        let st = SmartTurn::load(&ModelPaths::default()).unwrap();
        let done = st.predict(espeak_16k("I would like to book an appointment for tomorrow.")).await.unwrap();
        let cut = st.predict(espeak_16k("I would like to book an")).await.unwrap();
        eprintln!("smart turn: complete {:.3}, cut off {:.3}", done.probability, cut.probability);
        assert!(done.probability > cut.probability, "{done:?} vs {cut:?}");
        assert!(done.complete);
    }
}
