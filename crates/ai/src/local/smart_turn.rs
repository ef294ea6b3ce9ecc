//! Smart Turn v3.2: an audio model that says whether the caller has finished their turn,
//! from Whisper-style log-mel features of the last 8 s. Run when VAD hears a pause, so a
//! pause mid-sentence ("I'd like to book an… appointment") does not end the turn.
//!
//! Decisions run on a few dedicated threads (one ort session each) fed by a bounded queue.
//! A queued request holds only its 8 kHz PCM (≤ 128 KB); the 16 kHz window and the features
//! are built by the worker, so a burst of pauses across many calls costs neither a blocking
//! thread nor a megabyte per waiting call. A request whose caller stopped waiting (it spoke
//! again, or hung up) is skipped; a full queue is an error the caller handles (it waits for
//! the maximum pause instead).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use async_trait::async_trait;
use ort::session::Session;
use ort::value::Tensor;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{mel, ort_env};
use crate::models::ModelPaths;
use crate::{AiError, Result, TurnDetector, TurnPrediction};

/// Requests waiting per worker before new ones are refused (one decision is ~50 ms of CPU).
const QUEUE_PER_WORKER: usize = 8;

struct Job {
    pcm_8k: Vec<i16>,
    reply: oneshot::Sender<Result<f32>>,
}

pub struct SmartTurn {
    sessions: Arc<Vec<Mutex<Session>>>,
    queue: SyncSender<Job>,
}

impl SmartTurn {
    pub fn load(paths: &ModelPaths) -> Result<Self> {
        ort_env::init(paths)?;
        let model = paths.smart_turn()?;
        let workers = ort_env::pool_size().min(2);
        let sessions = (0..workers).map(|_| ort_env::session("smart-turn", &model, 1).map(Mutex::new)).collect::<Result<Vec<_>>>()?;
        let sessions = Arc::new(sessions);
        let (queue, rx) = sync_channel::<Job>(QUEUE_PER_WORKER * workers);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let (sessions, rx) = (sessions.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("smart-turn-{i}"))
                .spawn(move || worker(&sessions[i], &rx))
                .map_err(|e| AiError::inference("smart-turn", format!("cannot start a worker thread: {e}")))?;
        }
        Ok(SmartTurn { sessions, queue })
    }

    /// Probability that the turn is complete, computed on the calling thread (blocking).
    pub fn probability(&self, audio_16k: &[f32]) -> Result<f32> {
        run(&mut ort_env::any_free(&self.sessions), &mel::last_window(audio_16k))
    }
}

/// Takes jobs until the queue's sender (the `SmartTurn`) is dropped.
fn worker(session: &Mutex<Session>, rx: &Mutex<Receiver<Job>>) {
    let mut f32_8k = Vec::new();
    loop {
        let Ok(job) = rx.lock().recv() else { return };
        if job.reply.is_closed() {
            continue;
        }
        // Only the last 8 s matter: resample just those (plus a little for the filter's edge).
        let keep = (mel::SAMPLES / 2 + 64).min(job.pcm_8k.len());
        f32_8k.clear();
        f32_8k.extend(job.pcm_8k[job.pcm_8k.len() - keep..].iter().map(|&s| s as f32 / 32768.0));
        let audio_16k = callfunnel_media_dsp::Resampler::oneshot(&f32_8k, 8000, 16000);
        let result = run(&mut session.lock(), &mel::last_window(&audio_16k));
        let _ = job.reply.send(result);
    }
}

fn run(session: &mut Session, window: &[f32]) -> Result<f32> {
    let features = mel::log_mel(window);
    let err = |e: ort::Error| AiError::inference("smart-turn", e);
    let input = Tensor::from_array(([1usize, mel::N_MELS, mel::FRAMES], features)).map_err(err)?;
    let out = session.run(ort::inputs!["input_features" => input]).map_err(err)?;
    let (_, p) = out[0].try_extract_tensor::<f32>().map_err(err)?;
    p.first().copied().ok_or_else(|| AiError::inference("smart-turn", "empty output"))
}

#[async_trait]
impl TurnDetector for SmartTurn {
    async fn predict(&self, pcm_8k: Vec<i16>) -> Result<TurnPrediction> {
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send(Job { pcm_8k, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(AiError::inference("smart-turn", "busy: too many decisions waiting")),
            Err(TrySendError::Disconnected(_)) => return Err(AiError::inference("smart-turn", "the workers stopped")),
        }
        let probability = answer.await.map_err(|_| AiError::inference("smart-turn", "the worker dropped the request"))??;
        Ok(TurnPrediction { complete: probability > 0.5, probability })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn espeak_8k(text: &str) -> Vec<i16> {
        let out = std::process::Command::new("espeak-ng").args(["-v", "en-us", "--stdout", text]).output().expect("espeak-ng");
        let mut r = hound::WavReader::new(std::io::Cursor::new(out.stdout)).unwrap();
        let sr = r.spec().sample_rate;
        let x: Vec<f32> = r.samples::<i16>().map_while(|s| s.ok()).map(|s| s as f32 / 32768.0).collect();
        callfunnel_media_dsp::Resampler::oneshot(&x, sr, 8000).iter().map(|&s| (s * 32767.0) as i16).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn complete_sentences_score_higher_than_cut_off_ones() {
        let st = SmartTurn::load(&ModelPaths::default()).unwrap();
        let done = st.predict(espeak_8k("I would like to book an appointment for tomorrow.")).await.unwrap();
        let cut = st.predict(espeak_8k("I would like to book an")).await.unwrap();
        eprintln!("smart turn: complete {:.3}, cut off {:.3}", done.probability, cut.probability);
        assert!(done.probability > cut.probability, "{done:?} vs {cut:?}");
        assert!(done.complete);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_beyond_the_queue_is_refused_not_buffered() {
        let st = Arc::new(SmartTurn::load(&ModelPaths::default()).unwrap());
        let pcm = espeak_8k("I would like to book an appointment for tomorrow.");
        let capacity = QUEUE_PER_WORKER * st.sessions.len();
        let asks: Vec<_> = (0..capacity * 3).map(|_| { let (st, pcm) = (st.clone(), pcm.clone()); tokio::spawn(async move { st.predict(pcm).await }) }).collect();
        let mut answered = 0;
        let mut refused = 0;
        for a in asks {
            match a.await.unwrap() {
                Ok(p) => { assert!(p.complete); answered += 1 }
                Err(e) => { assert!(e.to_string().contains("busy"), "{e}"); refused += 1 }
            }
        }
        // Everything the queue and the workers could hold was answered; the rest was refused.
        assert!(answered >= capacity, "answered {answered}, refused {refused}");
        assert!(refused > 0, "a burst of {} should overflow a queue of {capacity}", capacity * 3);
    }
}
