//! The production timeline: MongoDB. `calls` holds one summary per call, `call_events` the
//! append-only events. Re-sending an event with the same (tenant_id, call_id, seq) is a no-op, so the
//! write buffer can replay after a crash without duplicates. Retention per tenant: both
//! collections carry `expire_at` under a TTL index.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{self, doc, Bson, DateTime, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, IndexModel};

use super::{CallSummary, TimelineEvent, TimelineStore};
use crate::{check_id, DataError, Result};

const STORE: &str = "mongodb";

/// How long each tenant's calls are kept.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    pub default_days: u32,
    pub per_tenant: HashMap<String, u32>,
}

impl Retention {
    fn days(&self, tenant_id: &str) -> u32 {
        self.per_tenant.get(tenant_id).copied().unwrap_or(if self.default_days == 0 { 90 } else { self.default_days })
    }
}

pub struct MongoTimeline {
    calls: Collection<Document>,
    events: Collection<Document>,
    retention: Retention,
}

fn err(e: impl std::fmt::Display) -> DataError {
    DataError::backend(STORE, e)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Insert errors that are only duplicate keys (the events were there already): how many.
fn duplicates_only(e: &mongodb::error::Error) -> Option<usize> {
    match e.kind.as_ref() {
        ErrorKind::InsertMany(m) if m.write_concern_error.is_none() => {
            let errs = m.write_errors.as_deref().unwrap_or_default();
            errs.iter().all(|w| w.code == 11000).then_some(errs.len())
        }
        ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == 11000 => Some(1),
        _ => None,
    }
}

impl MongoTimeline {
    /// Connects (the URI may set `serverSelectionTimeoutMS` etc.) and creates the indexes.
    pub async fn connect(uri: &str, database: &str, retention: Retention) -> Result<Self> {
        let client = Client::with_uri_str(uri).await.map_err(err)?;
        let db = client.database(database);
        let t = MongoTimeline { calls: db.collection("calls"), events: db.collection("call_events"), retention };
        let unique = || IndexOptions::builder().unique(true).build();
        let ttl = || IndexOptions::builder().expire_after(Duration::from_secs(0)).build();
        let idx = |keys: Document, o: Option<IndexOptions>| IndexModel::builder().keys(keys).options(o).build();
        t.calls.create_index(idx(doc! {"tenant_id": 1, "started_unix_ms": -1}, None)).await.map_err(err)?;
        t.calls.create_index(idx(doc! {"tenant_id": 1, "call_id": 1}, Some(unique()))).await.map_err(err)?;
        t.calls.create_index(idx(doc! {"expire_at": 1}, Some(ttl()))).await.map_err(err)?;
        // Unique per tenant: another tenant's call with the same id can never shadow events.
        t.events.create_index(idx(doc! {"tenant_id": 1, "call_id": 1, "seq": 1}, Some(unique()))).await.map_err(err)?;
        t.events.create_index(idx(doc! {"call_id": 1, "seq": 1}, None)).await.map_err(err)?;
        t.events.create_index(idx(doc! {"expire_at": 1}, Some(ttl()))).await.map_err(err)?;
        Ok(t)
    }

    /// The index names of both collections (for checks).
    pub async fn index_names(&self) -> Result<Vec<String>> {
        let mut out = self.calls.list_index_names().await.map_err(err)?;
        out.extend(self.events.list_index_names().await.map_err(err)?.into_iter().map(|n| format!("call_events.{n}")));
        Ok(out)
    }

    /// Days until the call's documents expire (retention checks).
    pub async fn expires_in_days(&self, tenant_id: &str, call_id: &str) -> Result<f64> {
        let d = self.calls.find_one(doc! {"tenant_id": tenant_id, "call_id": call_id}).await.map_err(err)?.ok_or_else(|| DataError::not_found("call", call_id))?;
        let at = d.get_datetime("expire_at").map_err(err)?.timestamp_millis();
        Ok((at - now_ms()) as f64 / 86_400_000.0)
    }

    /// Reserves `n` sequence numbers for events appended without one.
    async fn reserve(&self, tenant_id: &str, call_id: &str, n: u64) -> Result<u64> {
        let d = self
            .calls
            .find_one_and_update(doc! {"tenant_id": tenant_id, "call_id": call_id}, doc! {"$inc": {"next_seq": n as i64}})
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await
            .map_err(err)?
            .ok_or_else(|| err("no call document after upsert"))?;
        let next = d.get_i64("next_seq").or_else(|_| d.get_i32("next_seq").map(i64::from)).map_err(err)?;
        Ok(next as u64 - n + 1)
    }
}

fn to_doc(tenant_id: &str, call_id: &str, e: &TimelineEvent, expire_at: DateTime) -> Result<Document> {
    let data = bson::to_bson(&e.data).map_err(err)?;
    Ok(doc! {
        "tenant_id": tenant_id, "call_id": call_id, "seq": e.seq as i64, "at_ms": e.at_ms as i64,
        "unix_ms": e.unix_ms as i64, "kind": &e.kind, "data": data, "expire_at": expire_at,
    })
}

fn int(d: &Document, k: &str) -> u64 {
    match d.get(k) {
        Some(Bson::Int64(v)) => *v as u64,
        Some(Bson::Int32(v)) => *v as u64,
        Some(Bson::Double(v)) => *v as u64,
        _ => 0,
    }
}

fn from_doc(d: Document) -> TimelineEvent {
    let data = d.get("data").cloned().map(Bson::into_relaxed_extjson).unwrap_or(serde_json::Value::Null);
    TimelineEvent { seq: int(&d, "seq"), at_ms: int(&d, "at_ms"), unix_ms: int(&d, "unix_ms"), kind: d.get_str("kind").unwrap_or_default().to_string(), data }
}

#[async_trait]
impl TimelineStore for MongoTimeline {
    async fn append(&self, tenant_id: &str, call_id: &str, events: &[TimelineEvent]) -> Result<()> {
        check_id(tenant_id)?;
        check_id(call_id)?;
        if events.is_empty() {
            return Ok(());
        }
        let mut events = events.to_vec();
        let unnumbered = events.iter().filter(|e| e.seq == 0).count() as u64;
        if unnumbered > 0 {
            let mut next = self.reserve(tenant_id, call_id, unnumbered).await?;
            for e in events.iter_mut().filter(|e| e.seq == 0) {
                e.seq = next;
                next += 1;
            }
        }
        let days = self.retention.days(tenant_id) as i64;
        let expire_at = DateTime::from_millis(now_ms() + days * 86_400_000);
        let docs = events.iter().map(|e| to_doc(tenant_id, call_id, e, expire_at)).collect::<Result<Vec<_>>>()?;
        let inserted = match self.events.insert_many(docs).ordered(false).await {
            Ok(r) => r.inserted_ids.len(),
            Err(e) => match duplicates_only(&e) {
                Some(dups) => events.len() - dups.min(events.len()),
                None => return Err(err(e)),
            },
        };
        let first = events.iter().map(|e| e.unix_ms as i64).min().unwrap_or(0);
        let last = events.iter().map(|e| e.unix_ms as i64).max().unwrap_or(0);
        let mut set = doc! {"expire_at": expire_at};
        if let Some(e) = events.iter().find(|e| e.kind == "call_ended") {
            set.insert("ended", true);
            set.insert("end", e.data["end"].as_str().unwrap_or_default());
        }
        if let Some(e) = events.iter().find(|e| e.kind == "call_started") {
            set.insert("agent_id", e.data["agent_id"].as_str().unwrap_or_default());
            set.insert("caller", e.data["caller"].as_str().unwrap_or_default());
        }
        self.calls
            .update_one(
                doc! {"tenant_id": tenant_id, "call_id": call_id},
                doc! {"$min": {"started_unix_ms": first}, "$max": {"last_unix_ms": last}, "$inc": {"events": inserted as i64}, "$set": set},
            )
            .upsert(true)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn timeline(&self, tenant_id: &str, call_id: &str) -> Result<Vec<TimelineEvent>> {
        check_id(tenant_id)?;
        check_id(call_id)?;
        let cur = self.events.find(doc! {"tenant_id": tenant_id, "call_id": call_id}).sort(doc! {"seq": 1}).await.map_err(err)?;
        let docs: Vec<Document> = cur.try_collect().await.map_err(err)?;
        Ok(docs.into_iter().map(from_doc).collect())
    }

    async fn calls(&self, tenant_id: &str, limit: usize) -> Result<Vec<CallSummary>> {
        check_id(tenant_id)?;
        let cur = self
            .calls
            .find(doc! {"tenant_id": tenant_id, "events": {"$gt": 0}})
            .sort(doc! {"started_unix_ms": -1, "call_id": 1})
            .limit(limit.min(10_000) as i64)
            .await
            .map_err(err)?;
        let docs: Vec<Document> = cur.try_collect().await.map_err(err)?;
        Ok(docs
            .into_iter()
            .map(|d| CallSummary {
                call_id: d.get_str("call_id").unwrap_or_default().to_string(),
                events: int(&d, "events") as usize,
                started_unix_ms: int(&d, "started_unix_ms"),
                ended: d.get_bool("ended").unwrap_or(false),
                agent_id: d.get_str("agent_id").unwrap_or_default().to_string(),
                caller: d.get_str("caller").unwrap_or_default().to_string(),
                end: d.get_str("end").ok().map(str::to_string),
            })
            .collect())
    }
}
