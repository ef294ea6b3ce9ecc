//! Running calls: the `CallHandler` every carrier's media stream is handed to, and the registry
//! of planned, active and recently ended calls (webhooks after the stream need to know how a
//! call ended; the API needs to reach a live call).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use callfunnel_ai::{CallContext, SttConfig, TextToSpeech, TtsConfig, TtsEvent, TtsInput};
use callfunnel_data::{TimelineEvent, TimelineStore};
use callfunnel_media::carrier::{CallHandler, CallStart, Carrier};
use callfunnel_media::engine::{self, CallCommand, CallEnd, CallSetup, CarrierIo, CarrierOut, ScreeningConfig, VoicemailAction};
use callfunnel_media::exotel::codec::chunk_ms;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::call_data::CallData;
use crate::config::Config;
use crate::providers::ProviderHub;
use crate::routing::{CallPlan, Direction, Plans};
use crate::telephony_config::{NumberTable, Route};

const ENDED_KEPT: usize = 10_000;

#[derive(Debug, Clone, Serialize)]
pub struct ActiveCall {
    pub call_id: String,
    pub tenant_id: String,
    pub agent_id: String,
    pub carrier: Carrier,
    pub carrier_sid: String,
    pub direction: Direction,
    pub started_unix_ms: u64,
    #[serde(skip)]
    commands: Option<mpsc::Sender<CallCommand>>,
}

#[derive(Default)]
pub struct CallRegistry {
    active: Mutex<HashMap<String, ActiveCall>>,
    ended: Mutex<(HashMap<String, CallEnd>, VecDeque<String>)>,
    pub plans: Plans,
    /// Carrier status per call: the highest sequence number applied and whether it was final.
    statuses: Mutex<HashMap<String, (Option<u64>, bool)>>,
    /// Carrier call id → our call id (Exotel's callbacks name only their own id).
    by_sid: Mutex<HashMap<String, String>>,
    /// Woken whenever a call ends.
    ended_notify: tokio::sync::Notify,
}

/// A carrier status after which nothing changes.
pub fn is_final_status(status: &str) -> bool {
    matches!(status, "completed" | "busy" | "failed" | "no-answer" | "canceled")
}

impl CallRegistry {
    pub fn active(&self) -> Vec<ActiveCall> {
        self.active.lock().values().cloned().collect()
    }

    pub fn active_count(&self) -> usize {
        self.active.lock().len()
    }

    pub fn get_active(&self, call_id: &str) -> Option<ActiveCall> {
        self.active.lock().get(call_id).cloned()
    }

    /// Sends a command to a live call. False if the call is not running here.
    pub async fn command(&self, call_id: &str, cmd: CallCommand) -> bool {
        let tx = self.active.lock().get(call_id).and_then(|c| c.commands.clone());
        match tx {
            Some(tx) => tx.send(cmd).await.is_ok(),
            None => false,
        }
    }

    /// Orders carrier status callbacks: true if this one applies, false if it is stale (a
    /// lower sequence number than one already applied, or anything after a final status).
    pub fn observe_status(&self, call_id: &str, seq: Option<u64>, status: &str) -> bool {
        let mut g = self.statuses.lock();
        if g.len() > 4 * ENDED_KEPT {
            g.clear();
        }
        let (last, done) = g.entry(call_id.to_string()).or_insert((None, false));
        if *done {
            return false;
        }
        if let (Some(n), Some(l)) = (seq, *last) {
            if n <= l {
                return false;
            }
        }
        if seq.is_some() {
            *last = seq;
        }
        *done = is_final_status(status);
        true
    }

    /// Our call id for a carrier's call id, if a call with it ran here.
    pub fn call_for_sid(&self, carrier_sid: &str) -> Option<String> {
        self.by_sid.lock().get(carrier_sid).cloned()
    }

    pub fn note_sid(&self, carrier_sid: &str, call_id: &str) {
        if carrier_sid.is_empty() {
            return;
        }
        let mut g = self.by_sid.lock();
        if g.len() > 4 * ENDED_KEPT {
            g.clear();
        }
        g.insert(carrier_sid.to_string(), call_id.to_string());
    }

    /// How a call ended, taken once (by the webhook that follows the stream).
    pub fn take_end(&self, call_id: &str) -> Option<CallEnd> {
        self.ended.lock().0.remove(call_id)
    }

    /// How a call ended, left in place.
    pub fn end_of(&self, call_id: &str) -> Option<CallEnd> {
        self.ended.lock().0.get(call_id).cloned()
    }

    /// How a call ended, waiting up to `limit` while it is still winding down: the carrier
    /// asks what next (transfer or hang up) as soon as the stream closes, a moment before the
    /// call's last records are written.
    pub async fn wait_end(&self, call_id: &str, limit: std::time::Duration) -> Option<CallEnd> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.ended_notify.notified();
            if let Some(e) = self.end_of(call_id) {
                return Some(e);
            }
            if self.get_active(call_id).is_none() {
                return None;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.end_of(call_id);
            }
        }
    }

    fn finish(&self, call_id: &str, end: CallEnd) {
        self.active.lock().remove(call_id);
        let mut g = self.ended.lock();
        let (map, order) = &mut *g;
        map.insert(call_id.to_string(), end);
        order.push_back(call_id.to_string());
        while order.len() > ENDED_KEPT {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
        drop(g);
        self.ended_notify.notify_waiters();
    }
}

pub struct Calls {
    pub config: Config,
    pub hub: Arc<ProviderHub>,
    pub store: Arc<dyn TimelineStore>,
    /// Leases, recordings and usage: the call's side of the data plane.
    pub data: CallData,
    pub registry: Arc<CallRegistry>,
    pub numbers: NumberTable,
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// Post-call analysis, queued when a call that ran ends.
    pub post_call: Arc<crate::analysis::PostCall>,
    pub shutdown: CancellationToken,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Calls {
    /// Appends an event to a call's timeline from outside the call (carrier callbacks): in the
    /// timeline of the tenant the call was planned for, else of the default tenant.
    pub async fn record(&self, call_id: &str, kind: &str, data: serde_json::Value) {
        let tenant = self.tenant_of(call_id).await;
        let e = TimelineEvent::new(0, unix_ms(), kind, data);
        if let Err(err) = self.store.append(&tenant, call_id, &[e]).await {
            tracing::error!(tenant, call_id, kind, error = %err, "timeline write failed");
        }
    }

    /// Whose call this is, as far as this node knows.
    pub async fn tenant_of(&self, call_id: &str) -> String {
        if let Some(t) = self.registry.plans.owner(call_id).or_else(|| self.registry.get_active(call_id).map(|a| a.tenant_id)) {
            return t;
        }
        self.registry.plans.owner_shared(call_id).await.unwrap_or_else(|| self.config.agents.default_tenant.clone())
    }

    /// Which tenant and agent answer calls to `to`: the `[[numbers]]` table, then the numbers
    /// registered in the control store; with neither knowing the number, the default agent
    /// when no `[[numbers]]` table is configured (embedded use), else `Unknown` (refused).
    /// `by_default` tells the last case from a real match.
    pub async fn route(&self, to: &str) -> (Route, bool) {
        let a = &self.config.agents;
        if !self.numbers.is_empty() {
            if let r @ Route::Agent { .. } = self.numbers.route(to, &a.default_tenant, &a.default_agent) {
                return (r, false);
            }
        }
        let n = crate::telephony_config::normalize_number(to);
        let alt = n.strip_prefix('0').map(|rest| format!("+91{rest}"));
        for candidate in std::iter::once(n.clone()).chain(alt) {
            if !candidate.starts_with('+') {
                continue;
            }
            match self.data.stores.control.route_number(&candidate).await {
                Ok(Some(r)) => return (Route::Agent { tenant_id: r.tenant_id, agent_id: r.agent_id }, false),
                Ok(None) => {}
                Err(e) => tracing::error!(to, error = %e, "control store: number lookup failed"),
            }
        }
        if self.numbers.is_empty() {
            (Route::Agent { tenant_id: a.default_tenant.clone(), agent_id: a.default_agent.clone() }, true)
        } else {
            (Route::Unknown, false)
        }
    }

    /// The plan for a stream that arrived: ours if a webhook or the API made one, else routed
    /// by the number called.
    async fn plan_for(&self, call_id: &str, start: &CallStart) -> Option<CallPlan> {
        if let Some(p) = self.registry.plans.lookup(call_id).await {
            // a browser call takes only the plan made for it, and a phone call never takes one
            return ((p.carrier == Carrier::Web) == (start.carrier == Carrier::Web)).then_some(p);
        }
        if start.carrier == Carrier::Web {
            return None; // browser calls exist only as planned by POST /v1/calls/web
        }
        match self.route(&start.to).await {
            (Route::Unknown, _) => None,
            (Route::Agent { tenant_id, agent_id }, by_default) => {
                // Routed by default (the embedded demo): a stream may name its agent.
                let (tenant_id, agent_id) = if by_default {
                    let p = &start.custom_parameters;
                    let get = |k: &str, d: String| p.get(k).filter(|v| !v.is_empty()).cloned().unwrap_or(d);
                    (get("tenant_id", tenant_id), get("agent_id", agent_id))
                } else {
                    (tenant_id, agent_id)
                };
                Some(CallPlan { tenant_id, agent_id, from: start.from.clone(), to: start.to.clone(), direction: Direction::Inbound, carrier: start.carrier, carrier_sid: start.call_sid.clone(), screening: None })
            }
        }
    }

    /// A call we do not take: say `text` politely, then hang up.
    async fn refuse(&self, call_id: &str, start: &CallStart, io: CarrierIo, text: &str, reason: &str, code: &str) -> CallEnd {
        tracing::warn!(call_id, to = %start.to, reason, "call refused");
        self.record(call_id, "call_refused", serde_json::json!({"to": start.to, "reason": reason, "code": code})).await;
        let a = &self.config.agents;
        if let Ok(cp) = self.hub.for_call(&a.default_tenant, &a.default_agent, &a.voice, &a.language).await {
            let text = text.to_string();
            let cfg = TtsConfig { voice: cp.voice, language: cp.language, sample_rate: 8000 };
            if let Ok(pcm) = synthesize(cp.providers.tts.as_ref(), cfg, &text).await {
                for frame in pcm.chunks(160) {
                    if io.outbound.send(CarrierOut::Audio(frame.to_vec())).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let _ = io.outbound.send(CarrierOut::Flush).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        let end = CallEnd::AgentEnded { reason: reason.into() };
        let _ = io.outbound.send(CarrierOut::Close(end.clone())).await;
        end
    }
}

/// Speaks `text` to PCM16 at the config's rate (refusals, transfer briefs).
pub async fn synthesize(tts: &dyn TextToSpeech, cfg: TtsConfig, text: &str) -> anyhow::Result<Vec<i16>> {
    let mut s = tts.open(cfg).await?;
    s.input.send(TtsInput::Text(text.to_string())).await.map_err(|_| anyhow::anyhow!("TTS closed"))?;
    s.input.send(TtsInput::Flush).await.map_err(|_| anyhow::anyhow!("TTS closed"))?;
    let mut pcm = Vec::new();
    let collect = async {
        while let Some(ev) = s.events.recv().await {
            match ev {
                TtsEvent::Audio(c) => pcm.extend(c.pcm),
                TtsEvent::Done => break,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), collect).await.map_err(|_| anyhow::anyhow!("TTS timed out"))?;
    Ok(pcm)
}

#[async_trait]
impl CallHandler for Calls {
    async fn run(&self, call_id: String, start: CallStart, io: CarrierIo) -> CallEnd {
        self.registry.note_sid(&start.call_sid, &call_id);
        let Some(plan) = self.plan_for(&call_id, &start).await else {
            callfunnel_metrics::call_refused("unknown_number");
            let end = self.refuse(&call_id, &start, io, &self.config.telephony.unknown_number_message.clone(), "unknown number", "unknown_number").await;
            self.registry.finish(&call_id, end.clone());
            return end;
        };
        // admission (again, for calls a webhook already admitted: the lease is refreshed)
        if let Err(r) = crate::admission::admit(&self.data.stores, &self.config, &plan.tenant_id, &plan.agent_id, &call_id).await {
            self.registry.plans.remove(&call_id);
            self.registry.plans.note_owner(&call_id, &plan.tenant_id);
            let end = self.refuse(&call_id, &start, io, &self.config.telephony.plan_limit_message.clone(), &r.to_string(), r.code()).await;
            crate::admission::release(&self.data.stores, &call_id).await;
            self.registry.finish(&call_id, end.clone());
            return end;
        }
        self.registry.plans.remove(&call_id);
        self.registry.plans.note_owner(&call_id, &plan.tenant_id);
        let agents = &self.config.agents;
        let ctx = CallContext {
            call_id: call_id.clone(),
            tenant_id: plan.tenant_id.clone(),
            agent_id: plan.agent_id.clone(),
            caller: if plan.direction == Direction::Inbound { plan.from.clone() } else { plan.to.clone() },
            language: agents.language.clone(),
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let carrier_sid = if start.call_sid.is_empty() { plan.carrier_sid.clone() } else { start.call_sid.clone() };
        self.registry.active.lock().insert(call_id.clone(), ActiveCall {
            call_id: call_id.clone(), tenant_id: ctx.tenant_id.clone(), agent_id: ctx.agent_id.clone(), carrier: start.carrier,
            carrier_sid: carrier_sid.clone(), direction: plan.direction, started_unix_ms: unix_ms(), commands: Some(cmd_tx),
        });
        self.registry.note_sid(&carrier_sid, &call_id);
        self.data.started(&ctx.tenant_id, &call_id).await;
        tracing::info!(call_id, tenant_id = %ctx.tenant_id, agent_id = %ctx.agent_id, carrier = start.carrier.as_str(), %carrier_sid, direction = ?plan.direction, "call started");
        self.record(&call_id, "carrier_stream_started", serde_json::json!({"carrier": start.carrier, "carrier_sid": carrier_sid, "stream_sid": start.stream_sid,
            "audio": start.audio, "sample_rate": start.sample_rate, "direction": plan.direction, "from": plan.from, "to": plan.to})).await;
        let hook = serde_json::json!({"call_id": call_id, "agent_id": ctx.agent_id, "direction": plan.direction, "carrier": start.carrier, "from": plan.from, "to": plan.to});
        self.webhooks.emit_later(&ctx.tenant_id, "call.started", hook.clone());
        let started_ms = unix_ms();
        let mut ran = false;
        let end = match self.hub.for_call(&ctx.tenant_id, &ctx.agent_id, &agents.voice, &agents.language).await {
            Ok(cp) => {
                let context = CallContext { language: cp.language.clone(), ..ctx.clone() };
                let mut playout = self.config.playout.clone();
                if start.carrier == Carrier::Exotel {
                    // Exotel plays whole chunks: run far enough ahead that the next is there in time.
                    playout.lead_ms = playout.lead_ms.max(chunk_ms(start.audio, start.sample_rate) + 100);
                }
                let screening = plan.screening.clone().map(|mut s| {
                    if let Some(v) = cp.voicemail.clone() {
                        s.voicemail = v;
                    } else if let (VoicemailAction::Hangup, Some(m)) = (&s.voicemail, &self.config.telephony.voicemail_message) {
                        s.voicemail = VoicemailAction::LeaveMessage { message: m.clone() };
                    }
                    s
                });
                let recording = if self.config.telephony.record { self.data.recording(&ctx.tenant_id, &call_id) } else { None };
                let setup = CallSetup {
                    call_id: call_id.clone(),
                    context,
                    turn: self.config.turn.clone(),
                    playout,
                    stt: SttConfig { language: cp.language.clone(), sample_rate: 8000 },
                    tts: TtsConfig { voice: cp.voice, language: cp.language, sample_rate: 8000 },
                    recording: recording.as_ref().map(|r| r.path.clone()),
                    screening,
                };
                ran = true;
                let (end, usage) = engine::run_call_metered(setup, cp.providers, io, cmd_rx, self.store.clone(), self.shutdown.clone()).await;
                self.data.bill(&ctx.tenant_id, &call_id, &usage);
                if let Some(ended) = recording.and_then(|r| r.ended) {
                    let _ = ended.send(());
                }
                end
            }
            Err(e) => {
                tracing::error!(call_id, error = %e, "cannot start call");
                CallEnd::Failed { error: e.to_string() }
            }
        };
        tracing::info!(call_id, end = ?end, "call ended");
        self.data.ended(&call_id).await;
        let mut hook = hook;
        hook["end"] = serde_json::to_value(&end).unwrap_or_default();
        hook["duration_ms"] = serde_json::json!(unix_ms().saturating_sub(started_ms));
        self.webhooks.emit_later(&ctx.tenant_id, "call.ended", hook);
        if ran {
            self.post_call.enqueue(&ctx.tenant_id, &call_id, &ctx.agent_id).await;
        }
        self.registry.finish(&call_id, end.clone());
        end
    }
}

/// Default screening for an outbound call (the agent's voicemail answer is applied at start).
pub fn outbound_screening() -> ScreeningConfig {
    ScreeningConfig::default()
}
