//! The controller: owns the conversation as the caller heard it, starts agent turns, and
//! performs barge-in. Everything slow runs in the other tasks; this loop only routes events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use callfunnel_ai::{BrainEvent, BrainSession, CallAction, Message, Role, SttEvent, TurnInput};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use callfunnel_media_dsp::beep::BeepDetector;

use super::latency::TurnTimes;
use super::listener::{Listener, ListenerEvent};
use super::playout::{Playout, PlayoutCmd, PlayoutEvent};
use super::screening::{Screener, Verdict, VoicemailAction};
use super::speaker::{Speaker, SpeakerEvent};
use super::turn::TurnTaker;
use super::usage::UsageMeter;
use super::{CallCommand, CallEnd, CallSetup, CarrierIo, CarrierOut, Providers, Recorder, AUDIO_QUEUE, EVENT_QUEUE};

struct AgentTurn {
    id: u64,
    cancel: CancellationToken,
    times: TurnTimes,
    actions: Vec<CallAction>,
    latency_recorded: bool,
}

struct PendingTranscript {
    /// Speech that started over the agent and never became a barge-in ("uh-huh").
    backchannel: bool,
    /// Heard while screening an outbound call (a greeting, not a request).
    screening: bool,
    times: TurnTimes,
}

pub struct Controller {
    setup: CallSetup,
    providers: Providers,
    brain: Box<dyn BrainSession>,
    rec: Recorder,
    cancel: CancellationToken,
    out: mpsc::Sender<CarrierOut>,
    playout: mpsc::Sender<PlayoutCmd>,
    speaker_tx: mpsc::Sender<SpeakerEvent>,
    history: Vec<Message>,
    agent: Option<AgentTurn>,
    next_turn: u64,
    /// The current caller speech began while the agent was talking.
    backchannel: bool,
    speech_started_at: Option<Instant>,
    pending: VecDeque<PendingTranscript>,
    /// Flushed transcripts not yet paired with their turn: STT may answer before the
    /// listener's turn-ended event is seen (they travel on different channels).
    finals: VecDeque<(String, Instant)>,
    parts: Vec<String>,
    /// Outbound call not yet known to be answered by a person.
    screener: Option<Screener>,
    /// Tells the listener to stop looking for beeps once screening is over.
    screening_flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The voicemail message is playing: nothing interrupts it.
    leaving_message: bool,
    /// Keys pressed so far and when the entry is complete.
    dtmf: String,
    dtmf_deadline: Option<Instant>,
    meter: Arc<UsageMeter>,
    /// STT interim results, on to the listener (a second opinion at pauses).
    hints: mpsc::Sender<String>,
    trace: Arc<super::trace::CallTrace>,
}

impl Controller {
    pub async fn run(setup: CallSetup, providers: Providers, io: CarrierIo, mut commands: mpsc::Receiver<CallCommand>, rec: Recorder, meter: Arc<UsageMeter>, trace: Arc<super::trace::CallTrace>, tap: Option<Arc<super::tap::Tap>>, cancel: CancellationToken) -> CallEnd {
        let ctx = &setup.context;
        rec.record("call_started", json!({"call_id": setup.call_id, "tenant_id": ctx.tenant_id, "agent_id": ctx.agent_id, "caller": ctx.caller,
            "stt": providers.stt.name(), "brain": providers.brain.name(), "tts": providers.tts.name(), "trace_id": trace.trace_id()}));
        let vad = match providers.vad.create(8000) {
            Ok(v) => v,
            Err(e) => return CallEnd::Failed { error: format!("VAD: {e}") },
        };
        let stt = match providers.stt.open(setup.stt.clone()).await {
            Ok(s) => s,
            Err(e) => return CallEnd::Failed { error: format!("STT: {e}") },
        };
        let brain = match providers.brain.session(setup.context.clone()).await {
            Ok(b) => b,
            Err(e) => return CallEnd::Failed { error: format!("brain: {e}") },
        };
        let (listen_tx, mut listen_rx) = mpsc::channel(EVENT_QUEUE);
        let (playout_tx, playout_rx) = mpsc::channel(AUDIO_QUEUE);
        let (pl_ev_tx, mut pl_ev_rx) = mpsc::channel(EVENT_QUEUE);
        let (speaker_tx, mut speaker_rx) = mpsc::channel(EVENT_QUEUE);
        let mut stt_events = stt.events;

        let screening_flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(setup.screening.is_some()));
        let (hints_tx, hints_rx) = mpsc::channel(4);
        let detector = providers.turn_detector.clone().filter(|_| setup.turn.end_of_turn_model);
        let listener = Listener {
            vad,
            taker: TurnTaker::new(setup.turn.clone(), detector.is_some()),
            cfg: setup.turn.clone(),
            detector,
            stt: stt.input,
            events: listen_tx,
            playout: playout_tx.clone(),
            beep: setup.screening.as_ref().map(|_| BeepDetector::new(8000)),
            screening: screening_flag.clone(),
            meter: meter.clone(),
            hints: Some(hints_rx),
            tap: tap.clone(),
        };
        tokio::spawn(listener.run(io.inbound, cancel.clone()));
        let playout = Playout::new(setup.playout.clone(), io.outbound.clone(), pl_ev_tx).with_tap(tap);
        let pc = cancel.clone();
        tokio::spawn(async move {
            tokio::select! { _ = pc.cancelled() => {}, _ = playout.run(playout_rx) => {} }
        });

        let screener = setup.screening.clone().map(|cfg| Screener::new(cfg, Instant::now()));
        let mut c = Controller {
            setup, providers, brain, rec, cancel: cancel.clone(), out: io.outbound, playout: playout_tx, speaker_tx,
            history: Vec::new(), agent: None, next_turn: 1, backchannel: false, speech_started_at: None,
            pending: VecDeque::new(), finals: VecDeque::new(), parts: Vec::new(),
            meter, screener, screening_flag, leaving_message: false, dtmf: String::new(), dtmf_deadline: None, hints: hints_tx, trace,
        };
        if c.screener.is_some() {
            c.rec.record("screening_started", json!({}));
        } else {
            c.start_turn(TurnInput::CallStarted, TurnTimes::default()).await;
        }
        let mut commands_open = true;
        loop {
            let deadline = [c.dtmf_deadline, c.screener.as_ref().and_then(Screener::next_deadline)].into_iter().flatten().min();
            let end = tokio::select! {
                _ = cancel.cancelled() => Some(CallEnd::Shutdown),
                Some(ev) = listen_rx.recv() => c.on_listener(ev).await,
                Some(ev) = stt_events.recv() => c.on_stt(ev).await,
                Some(ev) = speaker_rx.recv() => c.on_speaker(ev),
                Some(ev) = pl_ev_rx.recv() => c.on_playout(ev).await,
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(cmd) => c.on_command(cmd).await,
                    None => { commands_open = false; None }
                },
                _ = sleep_until_opt(deadline) => c.on_tick().await,
                else => Some(CallEnd::Failed { error: "all call tasks ended".into() }),
            };
            if let Some(end) = end {
                if let Some(a) = c.agent.take() {
                    a.cancel.cancel();
                }
                return end;
            }
        }
    }

    async fn on_listener(&mut self, ev: ListenerEvent) -> Option<CallEnd> {
        match ev {
            ListenerEvent::SpeechStarted => {
                if let Some(s) = self.screener.as_mut() {
                    s.on_speech_started(Instant::now());
                }
                self.backchannel = self.agent.is_some();
                self.speech_started_at = Some(Instant::now());
                self.rec.record("user_speech_started", json!({"over_agent": self.backchannel}));
            }
            ListenerEvent::SpeechSustained if self.backchannel && !self.leaving_message => {
                self.backchannel = false;
                self.barge_in().await;
            }
            ListenerEvent::SpeechSustained | ListenerEvent::Resumed => {}
            ListenerEvent::TurnEnded { speech_end, decided, by } => {
                let end_ms = decided.saturating_duration_since(speech_end).as_secs_f64() * 1000.0;
                self.rec.record("user_turn_ended", json!({"by": by.as_str(), "end_of_turn_ms": end_ms, "backchannel": self.backchannel}));
                let times = TurnTimes { speech_end: Some(speech_end), turn_decided: Some(decided), ..Default::default() };
                let screening = self.screener.is_some() || self.leaving_message;
                self.pending.push_back(PendingTranscript { backchannel: self.backchannel || self.leaving_message, screening, times });
                self.backchannel = false;
                let verdict = self.screener.as_mut().and_then(|s| s.on_turn_ended(decided));
                self.pair_transcripts().await;
                if let Some(v) = verdict {
                    return self.on_verdict(v).await;
                }
            }
            ListenerEvent::Beep { freq_hz } => {
                if let Some(s) = self.screener.as_mut() {
                    self.rec.record("beep_detected", json!({"freq_hz": freq_hz}));
                    if let Some(v) = s.on_beep() {
                        return self.on_verdict(v).await;
                    }
                }
            }
            ListenerEvent::Dtmf(d) => {
                self.rec.record("dtmf", json!({"digit": d.to_string()}));
                if self.screener.is_some() || self.leaving_message {
                    return None;
                }
                if self.dtmf.is_empty() {
                    self.interrupt_agent("dtmf").await;
                }
                self.dtmf.push(d);
                if d == '#' || self.dtmf.len() >= 32 {
                    self.flush_dtmf().await;
                } else {
                    self.dtmf_deadline = Some(Instant::now() + Duration::from_millis(self.setup.turn.dtmf_timeout_ms as u64));
                }
            }
            ListenerEvent::Hangup(why) => {
                self.rec.record("caller_hung_up", json!({"reason": why}));
                return Some(CallEnd::CallerHungUp);
            }
        }
        None
    }

    async fn on_stt(&mut self, ev: SttEvent) -> Option<CallEnd> {
        if let SttEvent::Interim { text } = &ev {
            // the listener weighs it when the caller pauses (a full queue just drops a hint)
            let _ = self.hints.try_send(text.clone());
            return None;
        }
        let SttEvent::Final { text, flushed, .. } = ev else { return None };
        if !text.trim().is_empty() {
            self.parts.push(text.trim().to_string());
        }
        if !flushed {
            return None;
        }
        let transcript = std::mem::take(&mut self.parts).join(" ");
        self.finals.push_back((transcript, Instant::now()));
        self.pair_transcripts().await;
        None
    }

    /// Pairs each ended caller turn with its flushed transcript, in order, and answers it.
    async fn pair_transcripts(&mut self) {
        while !self.pending.is_empty() && !self.finals.is_empty() {
            let (Some(mut p), Some((transcript, at))) = (self.pending.pop_front(), self.finals.pop_front()) else { return };
            let decided = p.times.turn_decided.unwrap_or(at);
            p.times.transcript = Some(at.max(decided));
            let stt_ms = at.saturating_duration_since(decided).as_secs_f64() * 1000.0;
            if p.screening {
                self.rec.record("screening_transcript", json!({"text": transcript}));
                continue;
            }
            if p.backchannel || transcript.is_empty() {
                self.rec.record("transcript_ignored", json!({"text": transcript, "backchannel": p.backchannel}));
                continue;
            }
            self.rec.record("transcript", json!({"text": transcript, "stt_ms": stt_ms}));
            self.history.push(Message { role: Role::User, text: transcript.clone(), interrupted: false });
            self.interrupt_agent("new caller turn").await;
            self.start_turn(TurnInput::UserSaid(transcript), p.times).await;
        }
    }

    fn on_speaker(&mut self, ev: SpeakerEvent) -> Option<CallEnd> {
        let current = |turn: u64, a: &Option<AgentTurn>| a.as_ref().is_some_and(|a| a.id == turn);
        match ev {
            SpeakerEvent::FirstToken { turn, at } if current(turn, &self.agent) => {
                self.agent.as_mut()?.times.first_token = Some(at);
            }
            SpeakerEvent::FirstAudio { turn, at } if current(turn, &self.agent) => {
                self.agent.as_mut()?.times.first_audio = Some(at);
                self.record_latency();
            }
            SpeakerEvent::Brain { turn, event } if current(turn, &self.agent) => match event {
                BrainEvent::Action(a) => {
                    self.rec.record("action_requested", serde_json::to_value(&a).unwrap_or_default());
                    self.agent.as_mut()?.actions.push(a);
                }
                BrainEvent::Intent { name, score } => self.rec.record("intent", json!({"turn": turn, "name": name, "score": score})),
                BrainEvent::ToolCalled { name, ok, detail } => self.rec.record("tool_called", json!({"turn": turn, "name": name, "ok": ok, "detail": detail})),
                BrainEvent::Usage(u) => self.rec.record("brain_usage", json!({"turn": turn, "usage": u})),
                BrainEvent::Failed(error) => {
                    tracing::warn!(call_id = %self.setup.call_id, turn, %error, "brain failed mid-turn");
                    self.rec.record("brain_failed", json!({"turn": turn, "error": error}));
                }
                BrainEvent::Text(_) => {}
            },
            SpeakerEvent::Synthesized { turn, text } => self.rec.record("agent_reply_synthesized", json!({"turn": turn, "text": text})),
            SpeakerEvent::Failed { turn, error } => {
                tracing::error!(call_id = %self.setup.call_id, turn, %error, "agent turn failed");
                self.rec.record("agent_turn_failed", json!({"turn": turn, "error": error}));
                if current(turn, &self.agent) {
                    self.agent = None;
                }
            }
            _ => {}
        }
        None
    }

    async fn on_playout(&mut self, ev: PlayoutEvent) -> Option<CallEnd> {
        match ev {
            PlayoutEvent::FirstByte { turn, at } => {
                self.agent.as_mut().filter(|a| a.id == turn)?.times.first_byte = Some(at);
                self.record_latency();
            }
            PlayoutEvent::Finished { turn, text } => {
                let a = self.agent.take_if(|a| a.id == turn)?;
                self.rec.record("agent_said", json!({"turn": turn, "text": text, "interrupted": false}));
                if !text.is_empty() {
                    self.history.push(Message { role: Role::Agent, text, interrupted: false });
                }
                let mut actions = a.actions.into_iter();
                while let Some(action) = actions.next() {
                    let end = match action {
                        CallAction::EndCall { reason } => CallEnd::AgentEnded { reason },
                        CallAction::Transfer { to, reason, warm, summary } => {
                            let brief = warm.then(|| self.brief(&reason, summary));
                            CallEnd::Transferred { to, reason, brief }
                        }
                        CallAction::SendDtmf { digits } => {
                            // The keys play as a turn of their own; later actions wait for it.
                            if self.send_dtmf(&digits, actions.by_ref().collect()).await {
                                return None;
                            }
                            continue;
                        }
                    };
                    let _ = self.out.send(CarrierOut::Close(end.clone())).await;
                    return Some(end);
                }
            }
        }
        None
    }

    /// Records the turn's latency once every stage has reported (stage events travel on
    /// different channels, so the last one to arrive records it).
    fn record_latency(&mut self) {
        let Some(a) = self.agent.as_mut() else { return };
        if let (false, Some(l)) = (a.latency_recorded, a.times.latency()) {
            a.latency_recorded = true;
            self.trace.turn(a.id, &a.times);
            self.rec.record("turn_latency", json!({"turn": a.id, "latency_ms": l, "engine_overhead_ms": l.engine_overhead()}));
        }
    }

    /// The caller talked over the agent long enough: stop speaking, keep only what was heard.
    async fn barge_in(&mut self) {
        let Some(turn) = self.agent.as_ref().map(|a| a.id) else { return };
        let since_speech = self.speech_started_at.map(|t| t.elapsed().as_secs_f64() * 1000.0);
        if let Some(heard) = self.interrupt_agent("barge-in").await {
            self.rec.record("barge_in", json!({"turn": turn, "heard": heard.text, "full_text": heard.full_text,
                "played_ms": heard.played_ms, "cleared": heard.cleared, "after_speech_start_ms": since_speech,
                "history_truncated": heard.text != heard.full_text}));
        }
    }

    /// Cancels the current agent turn (if any) and records the part the caller heard.
    async fn interrupt_agent(&mut self, why: &str) -> Option<super::playout::Heard> {
        let a = self.agent.take()?;
        a.cancel.cancel();
        let (tx, rx) = oneshot::channel();
        self.playout.send(PlayoutCmd::Interrupt { turn: a.id, reply: tx }).await.ok()?;
        let heard = tokio::time::timeout(Duration::from_secs(1), rx).await.ok()?.ok()?;
        self.rec.record("agent_said", json!({"turn": a.id, "text": heard.text, "interrupted": true, "why": why}));
        if !heard.text.is_empty() {
            self.history.push(Message { role: Role::Agent, text: heard.text.clone(), interrupted: true });
        }
        Some(heard)
    }

    async fn start_turn(&mut self, input: TurnInput, times: TurnTimes) {
        let id = self.next_turn;
        self.next_turn += 1;
        self.rec.record("agent_turn_started", json!({"turn": id, "input": format!("{input:?}")}));
        let rx = match self.brain.respond(input, &self.history).await {
            Ok(rx) => rx,
            Err(e) => {
                tracing::error!(call_id = %self.setup.call_id, error = %e, "brain failed");
                self.rec.record("agent_turn_failed", json!({"turn": id, "error": e.to_string()}));
                return;
            }
        };
        self.speak(id, rx, times);
    }

    /// Runs agent turn `id`: its brain events through TTS to playout.
    fn speak(&mut self, id: u64, rx: mpsc::Receiver<BrainEvent>, times: TurnTimes) {
        let cancel = self.cancel.child_token();
        let speaker = Speaker {
            turn: id,
            tts: self.providers.tts.clone(),
            tts_config: self.setup.tts.clone(),
            playout: self.playout.clone(),
            events: self.speaker_tx.clone(),
            meter: self.meter.clone(),
        };
        tokio::spawn(speaker.run(rx, cancel.clone()));
        self.agent = Some(AgentTurn { id, cancel, times, actions: Vec::new(), latency_recorded: false });
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Call control from outside, keypad entry, outbound screening.
impl Controller {
    async fn on_command(&mut self, cmd: CallCommand) -> Option<CallEnd> {
        match cmd {
            CallCommand::Hangup { reason } => {
                self.rec.record("hangup_requested", json!({"reason": reason}));
                self.interrupt_agent("hang-up").await;
                let end = CallEnd::AgentEnded { reason };
                let _ = self.out.send(CarrierOut::Close(end.clone())).await;
                Some(end)
            }
            CallCommand::AnsweredBy(by) => {
                self.rec.record("carrier_amd", json!({"answered_by": by}));
                let v = self.screener.as_mut().and_then(|s| s.on_answered_by(&by))?;
                self.on_verdict(v).await
            }
        }
    }

    async fn on_tick(&mut self) -> Option<CallEnd> {
        let now = Instant::now();
        if self.dtmf_deadline.is_some_and(|t| t <= now) {
            self.flush_dtmf().await;
        }
        let v = self.screener.as_mut().and_then(|s| s.on_tick(now))?;
        self.on_verdict(v).await
    }

    async fn on_verdict(&mut self, v: Verdict) -> Option<CallEnd> {
        let screener = self.screener.take()?;
        self.screening_flag.store(false, std::sync::atomic::Ordering::Relaxed);
        match v {
            Verdict::Human { by } => {
                self.rec.record("answered_by", json!({"answered_by": "human", "by": by}));
                self.start_turn(TurnInput::CallStarted, TurnTimes::default()).await;
                None
            }
            Verdict::Fax => {
                self.rec.record("answered_by", json!({"answered_by": "fax", "by": "carrier_amd"}));
                let end = CallEnd::AgentEnded { reason: "fax answered".into() };
                let _ = self.out.send(CarrierOut::Close(end.clone())).await;
                Some(end)
            }
            Verdict::Voicemail { by } => {
                self.rec.record("answered_by", json!({"answered_by": "machine", "by": by}));
                match &screener.config().voicemail {
                    VoicemailAction::Hangup => {
                        let end = CallEnd::AgentEnded { reason: "voicemail: hung up".into() };
                        let _ = self.out.send(CarrierOut::Close(end.clone())).await;
                        Some(end)
                    }
                    VoicemailAction::LeaveMessage { message } => {
                        self.rec.record("voicemail_message_started", json!({"text": message}));
                        self.leaving_message = true;
                        let (tx, rx) = mpsc::channel(4);
                        let _ = tx.try_send(BrainEvent::Text(message.clone()));
                        let _ = tx.try_send(BrainEvent::Action(CallAction::EndCall { reason: "voicemail left".into() }));
                        let id = self.next_turn;
                        self.next_turn += 1;
                        self.speak(id, rx, TurnTimes::default());
                        None
                    }
                }
            }
        }
    }

    /// The caller finished a keypad entry: the brain gets it as one input.
    async fn flush_dtmf(&mut self) {
        self.dtmf_deadline = None;
        let mut keys = std::mem::take(&mut self.dtmf);
        if keys.len() > 1 && keys.ends_with('#') {
            keys.pop();
        }
        if keys.is_empty() {
            return;
        }
        self.rec.record("dtmf_entry", json!({"digits": keys}));
        self.interrupt_agent("dtmf").await;
        self.start_turn(TurnInput::Dtmf(keys), TurnTimes::default()).await;
    }

    /// Plays `digits` as DTMF tones (a turn of their own); `then` runs after them. False if
    /// the digits cannot be played.
    async fn send_dtmf(&mut self, digits: &str, then: Vec<CallAction>) -> bool {
        let pcm = match callfunnel_media_dsp::dtmf::tones(digits, 8000) {
            Ok(p) => p,
            Err(e) => {
                self.rec.record("dtmf_send_failed", json!({"digits": digits, "error": e.to_string()}));
                return false;
            }
        };
        let id = self.next_turn;
        self.next_turn += 1;
        self.rec.record("dtmf_sent", json!({"turn": id, "digits": digits, "ms": pcm.len() / 8}));
        if self.playout.send(PlayoutCmd::Audio { turn: id, text: None, pcm }).await.is_err() || self.playout.send(PlayoutCmd::EndTurn { turn: id }).await.is_err() {
            return false;
        }
        self.agent = Some(AgentTurn { id, cancel: self.cancel.child_token(), times: TurnTimes::default(), actions: then, latency_recorded: true });
        true
    }

    /// What the human hears before a warm transfer: the brain's summary, or one made from
    /// the conversation.
    fn brief(&self, reason: &str, summary: Option<String>) -> String {
        let summary = summary.unwrap_or_else(|| {
            let said: Vec<&str> = self.history.iter().filter(|m| m.role == Role::User).map(|m| m.text.as_str()).collect();
            let last: Vec<&str> = said.iter().rev().take(3).rev().copied().collect();
            let caller = if self.setup.context.caller.is_empty() { String::new() } else { format!(" from {}", self.setup.context.caller) };
            if last.is_empty() { format!("A caller{caller} asked for a person.") } else { format!("A caller{caller} said: {}.", last.join(" … ")) }
        });
        format!("Incoming transfer. Reason: {reason}. {summary}")
    }
}

