//! Paced playout: sends agent audio to the carrier in 20 ms frames at real time (a small lead
//! ahead), with a mark every `mark_every_ms`, so the echoed marks say what the caller heard.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::config::PlayoutConfig;
use super::heard::HeardTracker;
use super::tap::Tap;
use super::CarrierOut;

/// 20 ms at 8 kHz: the turn's last message is padded to a whole number of these.
const FRAME_20MS: usize = 160;


#[derive(Debug)]
pub enum PlayoutCmd {
    /// More audio for agent turn `turn`; `text` starts a new spoken segment.
    Audio { turn: u64, text: Option<String>, pcm: Vec<i16> },
    /// No more audio for `turn`: send the end mark after what is queued.
    EndTurn { turn: u64 },
    /// Barge-in: stop `turn` now, `clear` the carrier's buffer, answer with what was heard.
    Interrupt { turn: u64, reply: oneshot::Sender<Heard> },
    /// The carrier echoed a mark.
    MarkEchoed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Heard {
    pub text: String,
    pub full_text: String,
    pub played_ms: u64,
    /// Whether a `clear` was sent (audio was still queued at the carrier).
    pub cleared: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlayoutEvent {
    /// The first frame of `turn` went to the carrier.
    FirstByte { turn: u64, at: Instant },
    /// The caller has heard all of `turn`.
    Finished { turn: u64, text: String },
}

struct Turn {
    id: u64,
    queue: VecDeque<i16>,
    heard: HeardTracker,
    sent: u64,
    played: u64,
    ended: bool,
    end_mark_sent: bool,
    since_mark: u64,
    /// Audio went out since the last `Flush`.
    unflushed: bool,
}

pub struct Playout {
    cfg: PlayoutConfig,
    out: mpsc::Sender<CarrierOut>,
    events: mpsc::Sender<PlayoutEvent>,
    turn: Option<Turn>,
    /// Turns up to this id are over (finished or interrupted): their late audio is dropped.
    retired: u64,
    /// When everything sent so far will have been played at the far end.
    playhead: Instant,
    /// The call's recording hears what the carrier is sent.
    tap: Option<Arc<Tap>>,
}

impl Playout {
    pub fn new(cfg: PlayoutConfig, out: mpsc::Sender<CarrierOut>, events: mpsc::Sender<PlayoutEvent>) -> Self {
        Playout { cfg, out, events, turn: None, retired: 0, playhead: Instant::now(), tap: None }
    }

    pub(crate) fn with_tap(mut self, tap: Option<Arc<Tap>>) -> Self {
        self.tap = tap;
        self
    }

    pub async fn run(mut self, mut cmds: mpsc::Receiver<PlayoutCmd>) {
        loop {
            let next_send = self.next_send_at();
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => if self.handle(cmd).await.is_err() { return },
                    None => return,
                },
                _ = sleep_until_opt(next_send) => if self.pump().await.is_err() { return },
            }
        }
    }

    fn next_send_at(&self) -> Option<Instant> {
        let t = self.turn.as_ref()?;
        let has_frame = t.queue.len() >= self.cfg.frame_samples() || (t.ended && (!t.queue.is_empty() || !t.end_mark_sent));
        has_frame.then(|| self.playhead.checked_sub(Duration::from_millis(self.cfg.lead_ms as u64)).unwrap_or(self.playhead))
    }

    async fn handle(&mut self, cmd: PlayoutCmd) -> Result<(), ()> {
        match cmd {
            PlayoutCmd::Audio { turn, text, pcm } => {
                if turn <= self.retired || self.turn.as_ref().is_some_and(|t| t.id > turn) {
                    return Ok(()); // late audio of a turn that is over
                }
                if self.turn.as_ref().is_none_or(|t| t.id != turn) {
                    self.turn = Some(Turn { id: turn, queue: VecDeque::new(), heard: HeardTracker::default(), sent: 0, played: 0, ended: false, end_mark_sent: false, since_mark: 0, unflushed: false });
                }
                if let Some(t) = self.turn.as_mut() {
                    t.heard.push(text.as_deref(), pcm.len() as u64);
                    t.queue.extend(pcm);
                }
                self.pump().await
            }
            PlayoutCmd::EndTurn { turn } => {
                match self.turn.as_mut() {
                    Some(t) if t.id == turn => t.ended = true,
                    Some(t) if t.id > turn => {}
                    _ if turn <= self.retired => {}
                    _ => {
                        // A turn with no audio at all: finish it at once.
                        self.retired = turn;
                        let _ = self.events.send(PlayoutEvent::Finished { turn, text: String::new() }).await;
                    }
                }
                self.pump().await
            }
            PlayoutCmd::Interrupt { turn, reply } => {
                self.retired = self.retired.max(turn);
                let heard = match self.turn.take() {
                    Some(t) if t.id == turn => {
                        let cleared = t.sent > t.played;
                        if cleared {
                            if let Some(tap) = &self.tap {
                                tap.clear();
                            }
                            self.out.send(CarrierOut::Clear).await.map_err(|_| ())?;
                        }
                        self.playhead = Instant::now();
                        Heard { text: t.heard.heard_text(t.played), full_text: t.heard.full_text(), played_ms: t.played / 8, cleared }
                    }
                    other => {
                        self.turn = other.filter(|t| t.id > turn);
                        Heard { text: String::new(), full_text: String::new(), played_ms: 0, cleared: false }
                    }
                };
                let _ = reply.send(heard);
                Ok(())
            }
            PlayoutCmd::MarkEchoed(name) => {
                let Some((id, pos)) = name.split_once(':') else { return Ok(()) };
                let Some(t) = self.turn.as_mut() else { return Ok(()) };
                if id.parse::<u64>().ok() != Some(t.id) {
                    return Ok(());
                }
                if pos == "end" {
                    let (turn, text) = (t.id, t.heard.full_text());
                    self.turn = None;
                    self.retired = self.retired.max(turn);
                    let _ = self.events.send(PlayoutEvent::Finished { turn, text }).await;
                } else if let Ok(p) = pos.parse::<u64>() {
                    t.played = t.played.max(p);
                }
                Ok(())
            }
        }
    }

    /// Sends every frame that is due (keeping at most `lead_ms` ahead of real time).
    async fn pump(&mut self) -> Result<(), ()> {
        let lead = Duration::from_millis(self.cfg.lead_ms as u64);
        let mark_every = self.cfg.mark_every_ms as u64 * 8;
        let frame_len = self.cfg.frame_samples();
        loop {
            let now = Instant::now();
            if self.playhead < now {
                self.playhead = now;
            }
            let Some(t) = self.turn.as_mut() else { return Ok(()) };
            if self.playhead > now + lead {
                return Ok(());
            }
            let frame: Vec<i16> = if t.queue.len() >= frame_len {
                t.queue.drain(..frame_len).collect()
            } else if t.ended && !t.queue.is_empty() {
                // The turn's last audio, padded to whole 20 ms frames.
                let mut f: Vec<i16> = t.queue.drain(..).collect();
                f.resize(f.len().div_ceil(FRAME_20MS) * FRAME_20MS, 0);
                f
            } else {
                // Out of audio (turn over, or TTS behind real time): chunking carriers send
                // what they hold now.
                if t.unflushed {
                    t.unflushed = false;
                    self.out.send(CarrierOut::Flush).await.map_err(|_| ())?;
                }
                if t.ended && !t.end_mark_sent {
                    t.end_mark_sent = true;
                    self.out.send(CarrierOut::Mark(format!("{}:end", t.id))).await.map_err(|_| ())?;
                }
                return Ok(());
            };
            t.unflushed = true;
            if t.sent == 0 {
                let _ = self.events.send(PlayoutEvent::FirstByte { turn: t.id, at: now }).await;
            }
            t.sent += frame.len() as u64;
            t.since_mark += frame.len() as u64;
            self.playhead += Duration::from_millis(frame.len() as u64 / 8);
            if let Some(tap) = &self.tap {
                tap.agent(&frame);
            }
            self.out.send(CarrierOut::Audio(frame)).await.map_err(|_| ())?;
            if t.since_mark >= mark_every {
                t.since_mark = 0;
                let sent = t.sent.min(t.heard.queued_samples());
                self.out.send(CarrierOut::Mark(format!("{}:{}", t.id, sent))).await.map_err(|_| ())?;
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn setup() -> (mpsc::Sender<PlayoutCmd>, mpsc::Receiver<CarrierOut>, mpsc::Receiver<PlayoutEvent>) {
        setup_with(PlayoutConfig::default()).await
    }

    async fn setup_with(cfg: PlayoutConfig) -> (mpsc::Sender<PlayoutCmd>, mpsc::Receiver<CarrierOut>, mpsc::Receiver<PlayoutEvent>) {
        let (out_tx, out_rx) = mpsc::channel(1024);
        let (ev_tx, ev_rx) = mpsc::channel(16);
        let (cmd_tx, cmd_rx) = mpsc::channel(16);
        tokio::spawn(Playout::new(cfg, out_tx, ev_tx).run(cmd_rx));
        (cmd_tx, out_rx, ev_rx)
    }

    /// One second of audio in `frame_ms` messages: paced, never more than the lead ahead, a
    /// mark at least every `mark_every_ms`, the end mark after the last message.
    async fn paces(frame_ms: u32, want_frames: usize, want_marks: usize) {
        let cfg = PlayoutConfig { frame_ms, ..PlayoutConfig::default() };
        let (cmd, mut out, mut ev) = setup_with(cfg.clone()).await;
        let start = Instant::now();
        // 1 s and 10 ms: the last message is padded to a whole 20 ms frame
        cmd.send(PlayoutCmd::Audio { turn: 1, text: Some("Hello there.".into()), pcm: vec![100; 8080] }).await.unwrap();
        cmd.send(PlayoutCmd::EndTurn { turn: 1 }).await.unwrap();
        let (mut frames, mut sent_ms) = (0, 0i64);
        let mut marks = Vec::new();
        while let Some(m) = out.recv().await {
            match m {
                CarrierOut::Audio(f) => {
                    frames += 1;
                    if frames < want_frames {
                        assert_eq!(f.len(), cfg.frame_samples());
                    } else {
                        assert_eq!(f.len() % 160, 0, "whole 20 ms frames: {}", f.len());
                    }
                    sent_ms += f.len() as i64 / 8;
                    // Never more than the lead ahead of real time.
                    let ahead = sent_ms - start.elapsed().as_millis() as i64;
                    assert!(ahead <= (cfg.lead_ms + frame_ms) as i64, "{ahead} ms ahead");
                }
                CarrierOut::Mark(n) => {
                    let end = n.ends_with(":end");
                    marks.push(n);
                    if end {
                        break;
                    }
                }
                CarrierOut::Flush => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((frames, sent_ms), (want_frames, 1020));
        assert_eq!(marks.len(), want_marks, "{marks:?}");
        assert!(start.elapsed() >= Duration::from_millis(900));
        assert!(matches!(ev.recv().await, Some(PlayoutEvent::FirstByte { turn: 1, .. })));
        cmd.send(PlayoutCmd::MarkEchoed("1:end".into())).await.unwrap();
        assert_eq!(ev.recv().await, Some(PlayoutEvent::Finished { turn: 1, text: "Hello there.".into() }));
    }

    #[tokio::test(start_paused = true)]
    async fn paces_in_real_time_with_marks_and_finishes_on_end_mark() {
        // 40 ms messages: marks after 120, 240, … 960 ms, then the end mark
        paces(40, 26, 9).await;
    }

    #[tokio::test(start_paused = true)]
    async fn paces_20_ms_frames_too() {
        paces(20, 51, 11).await;
    }

    #[tokio::test(start_paused = true)]
    async fn interrupt_clears_and_reports_what_was_heard() {
        let (cmd, mut out, _ev) = setup().await;
        cmd.send(PlayoutCmd::Audio { turn: 3, text: Some("one two three four".into()), pcm: vec![1; 16000] }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        // The carrier played up to 1 s (8000 samples) = half the segment.
        cmd.send(PlayoutCmd::MarkEchoed("3:8000".into())).await.unwrap();
        let (tx, rx) = oneshot::channel();
        cmd.send(PlayoutCmd::Interrupt { turn: 3, reply: tx }).await.unwrap();
        let heard = rx.await.unwrap();
        assert_eq!(heard.text, "one two");
        assert!(heard.cleared);
        assert_eq!(heard.played_ms, 1000);
        let mut saw_clear = false;
        while let Ok(m) = out.try_recv() {
            saw_clear |= matches!(m, CarrierOut::Clear);
        }
        assert!(saw_clear);
        // Late audio for the interrupted turn is dropped.
        cmd.send(PlayoutCmd::Audio { turn: 3, text: None, pcm: vec![1; 1600] }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(out.try_recv().is_err());
    }
}
