//! Running calls: the `CallHandler` the Twilio transport hands streams to, and the registry
//! of active and recently ended calls (the after-stream TwiML needs to know about transfers).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use callfunnel_ai::{CallContext, SttConfig, TtsConfig};
use callfunnel_data::TimelineStore;
use callfunnel_media::engine::{self, CallEnd, CallSetup, CarrierIo};
use callfunnel_media::twilio::protocol::StartInfo;
use callfunnel_media::twilio::transport::CallHandler;
use parking_lot::Mutex;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::providers::ProviderHub;

const ENDED_KEPT: usize = 10_000;

#[derive(Debug, Clone, Serialize)]
pub struct ActiveCall {
    pub call_id: String,
    pub tenant_id: String,
    pub agent_id: String,
    pub started_unix_ms: u64,
}

#[derive(Default)]
pub struct CallRegistry {
    active: Mutex<HashMap<String, ActiveCall>>,
    ended: Mutex<(HashMap<String, CallEnd>, std::collections::VecDeque<String>)>,
}

impl CallRegistry {
    pub fn active(&self) -> Vec<ActiveCall> {
        self.active.lock().values().cloned().collect()
    }

    pub fn active_count(&self) -> usize {
        self.active.lock().len()
    }

    /// How a call ended, taken once (by the after-stream webhook).
    pub fn take_end(&self, call_id: &str) -> Option<CallEnd> {
        self.ended.lock().0.remove(call_id)
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
    }
}

pub struct Calls {
    pub config: Config,
    pub hub: Arc<ProviderHub>,
    pub store: Arc<dyn TimelineStore>,
    pub registry: Arc<CallRegistry>,
    pub shutdown: CancellationToken,
}

#[async_trait]
impl CallHandler for Calls {
    async fn run(&self, call_id: String, start: StartInfo, io: CarrierIo) -> CallEnd {
        let p = &start.custom_parameters;
        let get = |k: &str, d: &str| p.get(k).filter(|v| !v.is_empty()).cloned().unwrap_or_else(|| d.to_string());
        let agents = &self.config.agents;
        let ctx = CallContext {
            call_id: call_id.clone(),
            tenant_id: get("tenant_id", &agents.default_tenant),
            agent_id: get("agent_id", &agents.default_agent),
            caller: get("from", ""),
            language: agents.language.clone(),
        };
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        self.registry.active.lock().insert(call_id.clone(), ActiveCall { call_id: call_id.clone(), tenant_id: ctx.tenant_id.clone(), agent_id: ctx.agent_id.clone(), started_unix_ms: unix });
        tracing::info!(call_id, tenant_id = %ctx.tenant_id, agent_id = %ctx.agent_id, call_sid = %start.call_sid, "call started");
        let end = match self.hub.for_call(&ctx.tenant_id, &ctx.agent_id, &agents.voice, &agents.language).await {
            Ok(cp) => {
                let context = CallContext { language: cp.language.clone(), ..ctx.clone() };
                let setup = CallSetup {
                    call_id: call_id.clone(),
                    context,
                    turn: self.config.turn.clone(),
                    playout: self.config.playout.clone(),
                    stt: SttConfig { language: cp.language.clone(), sample_rate: 8000 },
                    tts: TtsConfig { voice: cp.voice, language: cp.language, sample_rate: 8000 },
                };
                engine::run_call(setup, cp.providers, io, self.store.clone(), self.shutdown.clone()).await
            }
            Err(e) => {
                tracing::error!(call_id, error = %e, "cannot start call");
                CallEnd::Failed { error: e.to_string() }
            }
        };
        tracing::info!(call_id, end = ?end, "call ended");
        self.registry.finish(&call_id, end.clone());
        end
    }
}
