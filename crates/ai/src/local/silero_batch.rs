//! Dynamic batching of Silero VAD frames across calls. Calls queue their frame (context
//! included) and recurrent state; a worker thread takes the first frame, waits up to
//! [`LINGER`] for others (up to [`MAX_BATCH`]), runs the model once for all of them, and hands
//! each call its probability and new state.
//!
//! Measured on this machine (`batch_cost` in `silero.rs`): a run of one 8 kHz frame costs ~120 µs, of
//! which ~70 µs is the run's fixed overhead; in batches of 8 or more a frame costs ~55 µs.
//! The linger is what makes batches: 150 calls send ~1800 gated frames a second, about one
//! every 0.5 ms, so a 2 ms window gathers ~4. A frame's decision waits at most that long, and
//! only while the previous batch had company (a lone call never waits).

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use ort::session::Session;
use tokio::sync::oneshot;

use super::silero::{run_batch, STATE};
use crate::{AiError, Result};

/// The most frames in one model run.
pub(crate) const MAX_BATCH: usize = 64;
/// How long the first frame of a batch waits for others.
pub(crate) const LINGER: Duration = Duration::from_millis(2);
/// Frames that may wait (about half a second of frames from 600 calls); past it a frame is
/// refused and the call scores it as silence.
const QUEUE: usize = 4096;

type Reply = Result<(f32, Vec<f32>, Vec<f32>)>;

struct Job {
    rate: u32,
    /// Context + frame.
    input: Vec<f32>,
    /// This call's state, `[2, 1, 128]`.
    state: Vec<f32>,
    reply: oneshot::Sender<Reply>,
}

pub(crate) struct Batcher {
    queue: SyncSender<Job>,
}

impl Batcher {
    /// Starts the worker thread (one: it batches better than two, and runs a batch of 64 in
    /// under 4 ms).
    pub(crate) fn start(session: Session) -> Result<Batcher> {
        let (queue, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("silero-vad".into())
            .spawn(move || worker(session, &rx))
            .map_err(|e| AiError::inference("silero-vad", format!("cannot start the worker thread: {e}")))?;
        Ok(Batcher { queue })
    }

    /// Scores one frame; gives back the input buffer and the new state.
    pub(crate) async fn score(&self, rate: u32, input: Vec<f32>, state: Vec<f32>) -> Reply {
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send(Job { rate, input, state, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(AiError::inference("silero-vad", "overloaded: too many frames waiting")),
            Err(TrySendError::Disconnected(_)) => return Err(AiError::inference("silero-vad", "the VAD worker stopped")),
        }
        answer.await.map_err(|_| AiError::inference("silero-vad", "the VAD worker dropped a frame"))?
    }
}

/// Runs batches until every [`Batcher`] is dropped.
fn worker(mut session: Session, rx: &Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let (mut input, mut state, mut probs) = (Vec::new(), Vec::new(), Vec::new());
    // Linger only while frames come together: after a batch of one (a quiet server, or one
    // call catching up on queued frames) the next batch takes what is waiting and runs.
    let mut last_batch = 1;
    loop {
        let Ok(first) = rx.recv() else { return };
        jobs.push(first);
        let deadline = Instant::now() + if last_batch > 1 { LINGER } else { Duration::ZERO };
        while jobs.len() < MAX_BATCH {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(j) => jobs.push(j),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        last_batch = jobs.len();
        // A batch runs at one rate (the input rows must be the same length).
        jobs.sort_by_key(|j| j.rate);
        while !jobs.is_empty() {
            let rate = jobs[0].rate;
            let n = jobs.iter().take_while(|j| j.rate == rate).count();
            let group: Vec<Job> = jobs.drain(..n).collect();
            callfunnel_metrics::VAD_BATCHES.inc([if rate == 8000 { "8000" } else { "16000" }]);
            run_group(&mut session, rate, group, (&mut input, &mut state, &mut probs));
        }
    }
}

fn run_group(session: &mut Session, rate: u32, group: Vec<Job>, (input, state, probs): (&mut Vec<f32>, &mut Vec<f32>, &mut Vec<f32>)) {
    let b = group.len();
    input.clear();
    for j in &group {
        input.extend_from_slice(&j.input);
    }
    // [2, b, 128]: layer 0 of every call, then layer 1 of every call.
    state.clear();
    state.resize(STATE * b, 0.0);
    for (i, j) in group.iter().enumerate() {
        for layer in 0..2 {
            state[(layer * b + i) * 128..][..128].copy_from_slice(&j.state[layer * 128..][..128]);
        }
    }
    // The error's message only: each call gets its own error, prefixed once.
    let result = run_batch(session, rate, b, input, state, probs).map_err(|e| match e {
        AiError::Inference { message, .. } => message,
        e => e.to_string(),
    });
    for (i, mut j) in group.into_iter().enumerate() {
        let reply = match &result {
            Ok(()) => {
                for layer in 0..2 {
                    j.state[layer * 128..][..128].copy_from_slice(&state[(layer * b + i) * 128..][..128]);
                }
                Ok((probs[i], j.input, j.state))
            }
            Err(message) => Err(AiError::inference("silero-vad", message)),
        };
        let _ = j.reply.send(reply);
    }
}
