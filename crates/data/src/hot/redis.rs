//! Redis hot state: a `ConnectionManager` (reconnects by itself) for commands, Lua scripts
//! where a check and a write must be one step, and a dedicated connection per subscription.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::ConnectionManager;

use super::scripts::Scripts;
use super::{
    DialJob, EventStream, HotConfig, HotState, NewDialJob, RateDecision, check_duration, check_ids, check_rate_key,
    unix_ms,
};
use crate::{DataError, Result};

const STORE: &str = "redis";

fn err(e: redis::RedisError) -> DataError {
    // Redis errors name commands and keys, never the URL's password.
    DataError::backend(STORE, e)
}

pub struct RedisHotState {
    client: redis::Client,
    con: ConnectionManager,
    /// `{prefix}`: one hash tag, so every key of this state lives in one cluster slot.
    p: String,
    config: HotConfig,
    scripts: Scripts,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct JobBody {
    tenant_id: String,
    campaign_id: String,
    payload: serde_json::Value,
    not_before_ms: u64,
}

impl RedisHotState {
    /// Connects to `url` (`redis://host:port/db`); every key starts with `{key_prefix}:`.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self> {
        Self::connect_with(url, key_prefix, HotConfig::default()).await
    }

    pub async fn connect_with(url: &str, key_prefix: &str, config: HotConfig) -> Result<Self> {
        super::check_rate_key(key_prefix)?;
        check_duration("lease ttl", config.lease_ttl)?;
        // the URL may carry a password: say only that it is malformed
        let client = redis::Client::open(url).map_err(|e| DataError::invalid("redis url", format!("{:?}", e.kind())))?;
        let con = ConnectionManager::new(client.clone()).await.map_err(err)?;
        Ok(RedisHotState { client, con, p: format!("{{{key_prefix}}}"), config, scripts: Scripts::new() })
    }

    fn con(&self) -> ConnectionManager {
        self.con.clone()
    }

    async fn count_live(&self, key: String) -> Result<u64> {
        self.scripts.count_live.arg(key).invoke_async(&mut self.con()).await.map_err(err)
    }

    fn lease_ttl_ms(&self) -> u64 {
        self.config.lease_ttl.as_millis() as u64
    }
}

#[async_trait]
impl HotState for RedisHotState {
    async fn place_call(&self, call_id: &str, node_id: &str, ttl: Duration) -> Result<()> {
        check_ids(&[call_id, node_id])?;
        let ttl = check_duration("placement ttl", ttl)?;
        let key = format!("{}:place:{call_id}", self.p);
        redis::cmd("SET").arg(key).arg(node_id).arg("PX").arg(ttl).query_async(&mut self.con()).await.map_err(err)
    }

    async fn call_node(&self, call_id: &str) -> Result<Option<String>> {
        check_ids(&[call_id])?;
        redis::cmd("GET").arg(format!("{}:place:{call_id}", self.p)).query_async(&mut self.con()).await.map_err(err)
    }

    async fn forget_call(&self, call_id: &str) -> Result<()> {
        check_ids(&[call_id])?;
        redis::cmd("DEL").arg(format!("{}:place:{call_id}", self.p)).query_async(&mut self.con()).await.map_err(err)
    }

    async fn put_plan(&self, call_id: &str, plan: &serde_json::Value, ttl: Duration) -> Result<()> {
        check_ids(&[call_id])?;
        let ttl = check_duration("plan ttl", ttl)?;
        let body = serde_json::to_string(plan).map_err(|e| DataError::invalid("call plan", e.to_string()))?;
        redis::cmd("SET").arg(format!("{}:plan:{call_id}", self.p)).arg(body).arg("PX").arg(ttl).query_async(&mut self.con()).await.map_err(err)
    }

    async fn get_plan(&self, call_id: &str) -> Result<Option<serde_json::Value>> {
        check_ids(&[call_id])?;
        let body: Option<String> = redis::cmd("GET").arg(format!("{}:plan:{call_id}", self.p)).query_async(&mut self.con()).await.map_err(err)?;
        body.map(|b| serde_json::from_str(&b).map_err(|e| DataError::Corrupt { path: format!("{}:plan:{call_id}", self.p), line: 0, message: e.to_string() })).transpose()
    }

    async fn acquire_call(&self, tenant_id: &str, call_id: &str, node_id: &str, tenant_limit: Option<u32>) -> Result<()> {
        check_ids(&[tenant_id, call_id, node_id])?;
        let limit = tenant_limit.map_or(-1, i64::from);
        let code: i64 = self
            .scripts
            .acquire
            .arg(&self.p)
            .arg(tenant_id)
            .arg(call_id)
            .arg(node_id)
            .arg(limit)
            .arg(self.lease_ttl_ms())
            .invoke_async(&mut self.con())
            .await
            .map_err(err)?;
        match code {
            1 => Ok(()),
            -1 => Err(DataError::Limit(format!("tenant `{tenant_id}` has reached its limit of {limit} live calls"))),
            _ => Err(DataError::Conflict(format!("call `{call_id}` already holds a lease elsewhere"))),
        }
    }

    async fn heartbeat(&self, node_id: &str) -> Result<u64> {
        check_ids(&[node_id])?;
        let mut inv = self.scripts.heartbeat.prepare_invoke();
        inv.arg(&self.p).arg(node_id).arg(self.lease_ttl_ms());
        inv.invoke_async(&mut self.con()).await.map_err(err)
    }

    async fn release_call(&self, call_id: &str) -> Result<bool> {
        check_ids(&[call_id])?;
        let n: i64 = self.scripts.release.arg(&self.p).arg(call_id).invoke_async(&mut self.con()).await.map_err(err)?;
        Ok(n == 1)
    }

    async fn active_calls_node(&self, node_id: &str) -> Result<u64> {
        check_ids(&[node_id])?;
        self.count_live(format!("{}:lease:n:{node_id}", self.p)).await
    }

    async fn active_calls_tenant(&self, tenant_id: &str) -> Result<u64> {
        check_ids(&[tenant_id])?;
        self.count_live(format!("{}:lease:t:{tenant_id}", self.p)).await
    }

    async fn active_calls_total(&self) -> Result<u64> {
        self.count_live(format!("{}:lease:all", self.p)).await
    }

    async fn rate_check(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision> {
        check_rate_key(key)?;
        let window = check_duration("rate window", window)?;
        let (ok, n): (i64, i64) = self
            .scripts
            .rate
            .arg(format!("{}:rate:{key}", self.p))
            .arg(limit)
            .arg(window)
            .arg(format!("{}:rate-seq", self.p))
            .invoke_async(&mut self.con())
            .await
            .map_err(err)?;
        Ok(if ok == 1 {
            RateDecision::Allowed { remaining: n.max(0) as u32 }
        } else {
            RateDecision::Denied { retry_after: Duration::from_millis(n.max(1) as u64) }
        })
    }

    async fn enqueue(&self, job: NewDialJob) -> Result<String> {
        check_ids(&[&job.tenant_id, &job.campaign_id])?;
        let not_before_ms = job.not_before.map_or(0, unix_ms);
        let tenant = job.tenant_id.clone();
        let body = JobBody { tenant_id: job.tenant_id, campaign_id: job.campaign_id, payload: job.payload, not_before_ms };
        let body = serde_json::to_string(&body).map_err(|e| DataError::invalid("dial job", e.to_string()))?;
        let mut inv = self.scripts.enqueue.prepare_invoke();
        inv.arg(&self.p).arg(body).arg(not_before_ms).arg(tenant);
        inv.invoke_async(&mut self.con()).await.map_err(err)
    }

    async fn dequeue(&self, node_id: &str, visibility_timeout: Duration) -> Result<Option<DialJob>> {
        check_ids(&[node_id])?;
        let vis = check_duration("visibility timeout", visibility_timeout)?;
        let got: Option<(String, Option<String>, u32)> =
            self.scripts.dequeue.arg(&self.p).arg(vis).invoke_async(&mut self.con()).await.map_err(err)?;
        let Some((id, body, attempts)) = got else { return Ok(None) };
        let body = body.ok_or_else(|| DataError::backend(STORE, format!("queued job `{id}` has no body")))?;
        let b: JobBody = serde_json::from_str(&body)
            .map_err(|e| DataError::Corrupt { path: format!("{}:q:jobs", self.p), line: 0, message: e.to_string() })?;
        Ok(Some(DialJob {
            id,
            tenant_id: b.tenant_id,
            campaign_id: b.campaign_id,
            payload: b.payload,
            not_before_ms: b.not_before_ms,
            attempts,
        }))
    }

    async fn ack(&self, job_id: &str) -> Result<bool> {
        check_ids(&[job_id])?;
        let n: i64 = self.scripts.ack.arg(&self.p).arg(job_id).invoke_async(&mut self.con()).await.map_err(err)?;
        Ok(n == 1)
    }

    async fn nack(&self, job_id: &str, retry_at: Option<SystemTime>) -> Result<bool> {
        check_ids(&[job_id])?;
        let at = retry_at.map_or(0, unix_ms);
        let n: i64 = self.scripts.nack.arg(&self.p).arg(job_id).arg(at).invoke_async(&mut self.con()).await.map_err(err)?;
        Ok(n == 1)
    }

    async fn queue_depth(&self) -> Result<u64> {
        self.scripts.depth.arg(&self.p).invoke_async(&mut self.con()).await.map_err(err)
    }

    async fn set_flag(&self, name: &str, ttl: Duration) -> Result<()> {
        check_ids(&[name])?;
        let ttl = check_duration("flag ttl", ttl)?;
        redis::cmd("SET").arg(format!("{}:flag:{name}", self.p)).arg(1).arg("PX").arg(ttl).query_async(&mut self.con()).await.map_err(err)
    }

    async fn flag(&self, name: &str) -> Result<bool> {
        check_ids(&[name])?;
        let n: i64 = redis::cmd("EXISTS").arg(format!("{}:flag:{name}", self.p)).query_async(&mut self.con()).await.map_err(err)?;
        Ok(n > 0)
    }

    async fn publish(&self, call_id: &str, event: &serde_json::Value) -> Result<()> {
        check_ids(&[call_id])?;
        let channel = format!("{}:events:{call_id}", self.p);
        let _receivers: i64 =
            redis::cmd("PUBLISH").arg(channel).arg(event.to_string()).query_async(&mut self.con()).await.map_err(err)?;
        Ok(())
    }

    async fn subscribe(&self, call_id: &str) -> Result<EventStream> {
        check_ids(&[call_id])?;
        let mut pubsub = self.client.get_async_pubsub().await.map_err(err)?;
        pubsub.subscribe(format!("{}:events:{call_id}", self.p)).await.map_err(err)?;
        // the PubSub (and its connection) lives as long as the stream
        let stream = futures::stream::unfold(pubsub, |mut ps| async move {
            loop {
                let msg = ps.on_message().next().await?;
                match serde_json::from_slice(msg.get_payload_bytes()) {
                    Ok(v) => return Some((v, ps)),
                    Err(e) => tracing::warn!("skipping a call event that is not JSON: {e}"),
                }
            }
        });
        Ok(Box::pin(stream))
    }
}
