//! Qdrant over its REST API. Every read and delete carries a `tenant_id` filter built here from
//! the caller's tenant; the tenant field has a keyword index with `is_tenant: true`.

use super::{VectorHit, VectorPoint, VectorStore, check_dim, check_points, check_query, check_vector, collection_name};
use crate::{DataError, Result};
use parking_lot::Mutex;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

const STORE: &str = "qdrant";

pub struct QdrantVectors {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
    /// collection -> dimension, learnt from ensure_collection or the collection's info.
    dims: Mutex<HashMap<String, usize>>,
}

impl std::fmt::Debug for QdrantVectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantVectors").field("url", &self.base).field("api_key", &self.api_key.as_ref().map(|_| "<set>")).finish()
    }
}

impl QdrantVectors {
    /// `url` like `http://127.0.0.1:6333`; `api_key` is sent as the `api-key` header.
    pub fn new(url: &str, api_key: Option<&str>) -> Result<QdrantVectors> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(DataError::invalid("qdrant url", "must start with http:// or https://"));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| DataError::backend(STORE, e))?;
        Ok(QdrantVectors { http, base, api_key: api_key.map(str::to_string), dims: Mutex::new(HashMap::new()) })
    }

    /// One REST call; returns Qdrant's `result`. Errors carry Qdrant's message, never the key.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = &self.api_key {
            req = req.header("api-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| DataError::backend(STORE, e.without_url()))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(v.get("result").cloned().unwrap_or(Value::Null));
        }
        let msg = v.pointer("/status/error").and_then(Value::as_str).unwrap_or("no error message").to_string();
        Err(match status {
            StatusCode::NOT_FOUND => DataError::not_found("collection", msg),
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => DataError::invalid("request", msg),
            StatusCode::CONFLICT => DataError::Conflict(msg),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => DataError::backend(STORE, format!("refused ({status}): check the API key")),
            _ => DataError::backend(STORE, format!("{status}: {msg}")),
        })
    }

    async fn dim_of(&self, collection: &str) -> Result<usize> {
        crate::check_id(collection)?;
        if let Some(d) = self.dims.lock().get(collection) {
            return Ok(*d);
        }
        let info = self.call(Method::GET, &format!("/collections/{collection}"), None).await?;
        let dim = info
            .pointer("/config/params/vectors/size")
            .and_then(Value::as_u64)
            .ok_or_else(|| DataError::backend(STORE, format!("collection {collection} has no single dense vector")))?
            as usize;
        self.dims.lock().insert(collection.to_string(), dim);
        Ok(dim)
    }
}

/// `tenant_id == tenant` AND the extra conditions: the only way filters are built here.
fn tenant_filter(tenant: &str, extra: &[(&str, &str)]) -> Value {
    let mut must = vec![json!({"key": "tenant_id", "match": {"value": tenant}})];
    must.extend(extra.iter().map(|(k, v)| json!({"key": k, "match": {"value": v}})));
    json!({ "must": must })
}

#[async_trait::async_trait]
impl VectorStore for QdrantVectors {
    async fn ensure_collection(&self, model: &str, dim: usize) -> Result<String> {
        check_dim(dim)?;
        let name = collection_name(model, dim);
        match self.dim_of(&name).await {
            Ok(d) if d == dim => return Ok(name),
            Ok(d) => return Err(DataError::invalid("dimension", format!("collection {name} exists with dimension {d}, not {dim}"))),
            Err(DataError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let create = json!({"vectors": {"size": dim, "distance": "Cosine"}});
        match self.call(Method::PUT, &format!("/collections/{name}"), Some(create)).await {
            Ok(_) | Err(DataError::Conflict(_)) => {} // created, or by a concurrent caller
            Err(e) => return Err(e),
        }
        let index = json!({"field_name": "tenant_id", "field_schema": {"type": "keyword", "is_tenant": true}});
        self.call(Method::PUT, &format!("/collections/{name}/index?wait=true"), Some(index)).await?;
        self.dims.lock().insert(name.clone(), dim);
        Ok(name)
    }

    async fn upsert(&self, tenant: &str, collection: &str, points: &[VectorPoint]) -> Result<()> {
        let dim = self.dim_of(collection).await?;
        check_points(tenant, collection, points, dim)?;
        if points.is_empty() {
            return Ok(());
        }
        let pts: Vec<Value> = points
            .iter()
            .map(|p| {
                json!({"id": p.id.to_string(), "vector": p.vector, "payload": {
                    "tenant_id": tenant, "kb_id": p.kb_id, "doc_id": p.doc_id, "text": p.text, "extra": p.extra}})
            })
            .collect();
        self.call(Method::PUT, &format!("/collections/{collection}/points?wait=true"), Some(json!({"points": pts}))).await?;
        Ok(())
    }

    async fn search(&self, tenant: &str, collection: &str, vector: &[f32], k: usize, kb_id: Option<&str>) -> Result<Vec<VectorHit>> {
        check_query(tenant, collection, k, kb_id)?;
        check_vector(vector, self.dim_of(collection).await?)?;
        let extra: Vec<(&str, &str)> = kb_id.map(|kb| ("kb_id", kb)).into_iter().collect();
        let body = json!({"query": vector, "limit": k, "filter": tenant_filter(tenant, &extra), "with_payload": true});
        let result = self.call(Method::POST, &format!("/collections/{collection}/points/query"), Some(body)).await?;
        let points = result.get("points").and_then(Value::as_array).cloned().unwrap_or_default();
        points.iter().map(|p| hit_of(tenant, p)).collect()
    }

    async fn delete_document(&self, tenant: &str, collection: &str, doc_id: &str) -> Result<()> {
        crate::check_id(tenant)?;
        crate::check_id(collection)?;
        crate::check_id(doc_id)?;
        let body = json!({"filter": tenant_filter(tenant, &[("doc_id", doc_id)])});
        self.call(Method::POST, &format!("/collections/{collection}/points/delete?wait=true"), Some(body)).await?;
        Ok(())
    }

    async fn count(&self, tenant: &str, collection: &str) -> Result<u64> {
        crate::check_id(tenant)?;
        crate::check_id(collection)?;
        let body = json!({"filter": tenant_filter(tenant, &[]), "exact": true});
        let r = self.call(Method::POST, &format!("/collections/{collection}/points/count"), Some(body)).await?;
        r.get("count").and_then(Value::as_u64).ok_or_else(|| DataError::backend(STORE, "count answer without a count"))
    }
}

fn hit_of(tenant: &str, p: &Value) -> Result<VectorHit> {
    let bad = |what: &str| DataError::backend(STORE, format!("search answer without {what}"));
    let payload = p.get("payload").ok_or_else(|| bad("payload"))?;
    let field = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_string).ok_or_else(|| bad(k));
    // Defence in depth: the filter already restricts to the tenant.
    if field("tenant_id")? != tenant {
        return Err(DataError::backend(STORE, "search returned another tenant's point"));
    }
    let id = p.get("id").and_then(Value::as_str).and_then(|s| s.parse().ok()).ok_or_else(|| bad("a UUID id"))?;
    Ok(VectorHit {
        id,
        score: p.get("score").and_then(Value::as_f64).ok_or_else(|| bad("score"))? as f32,
        kb_id: field("kb_id")?,
        doc_id: field("doc_id")?,
        text: field("text")?,
        extra: payload.get("extra").cloned().unwrap_or(Value::Null),
    })
}
