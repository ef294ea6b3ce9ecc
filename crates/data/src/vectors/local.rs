//! The embedded twin: exact cosine search in memory, kept on disk as one append-only JSON-lines
//! log per collection (`DIR/<collection>/log.jsonl`, replayed on open) and its `meta.json`.
//! Points are held per tenant, so a query only ever sees its own tenant's points.

use super::{VectorHit, VectorPoint, VectorStore, check_dim, check_points, check_query, check_vector, collection_name};
use crate::{DataError, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use uuid::Uuid;

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum LogOp {
    Upsert { tenant: String, point: VectorPoint },
    DeleteDoc { tenant: String, doc_id: String },
}

struct Collection {
    dim: usize,
    log: std::fs::File,
    /// tenant -> id -> (point, its vector's norm)
    tenants: HashMap<String, HashMap<Uuid, (VectorPoint, f32)>>,
}

impl Collection {
    fn apply(&mut self, op: LogOp) {
        match op {
            LogOp::Upsert { tenant, point } => {
                let norm = point.vector.iter().map(|x| x * x).sum::<f32>().sqrt();
                self.tenants.entry(tenant).or_default().insert(point.id, (point, norm));
            }
            LogOp::DeleteDoc { tenant, doc_id } => {
                if let Some(t) = self.tenants.get_mut(&tenant) {
                    t.retain(|_, (p, _)| p.doc_id != doc_id);
                }
            }
        }
    }
}

pub struct LocalVectors {
    dir: PathBuf,
    collections: Mutex<HashMap<String, Collection>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io { path: path.display().to_string(), source }
}

impl LocalVectors {
    /// Opens (creating) the store under `dir` and loads every collection in it.
    pub fn open(dir: impl Into<PathBuf>) -> Result<LocalVectors> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut collections = HashMap::new();
        for e in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let e = e.map_err(io(&dir))?;
            let name = e.file_name().to_string_lossy().to_string();
            if e.path().join("meta.json").exists() && crate::check_id(&name).is_ok() {
                collections.insert(name, Self::load(&e.path())?);
            }
        }
        Ok(LocalVectors { dir, collections: Mutex::new(collections) })
    }

    fn load(path: &Path) -> Result<Collection> {
        let meta_path = path.join("meta.json");
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta_path).map_err(io(&meta_path))?)
            .map_err(|e| DataError::Corrupt { path: meta_path.display().to_string(), line: 1, message: e.to_string() })?;
        let dim = meta.get("dim").and_then(|d| d.as_u64()).unwrap_or(0) as usize;
        let log_path = path.join("log.jsonl");
        let text = match std::fs::read_to_string(&log_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(&log_path)(e)),
        };
        let mut ops = Vec::new();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_str::<LogOp>(line) {
                Ok(op) => ops.push(op),
                // a crash mid-append leaves a torn last line without its newline: drop it
                Err(_) if i + 1 == lines.len() && !line.ends_with('\n') => {
                    let f = std::fs::OpenOptions::new().write(true).open(&log_path).map_err(io(&log_path))?;
                    f.set_len((text.len() - line.len()) as u64).map_err(io(&log_path))?;
                }
                Err(e) => return Err(DataError::Corrupt { path: log_path.display().to_string(), line: i + 1, message: e.to_string() }),
            }
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(io(&log_path))?;
        let mut c = Collection { dim, log, tenants: HashMap::new() };
        ops.into_iter().for_each(|op| c.apply(op));
        Ok(c)
    }

    /// Appends the ops durably, then applies them in memory.
    fn write(&self, collection: &str, ops: Vec<LogOp>) -> Result<()> {
        let mut cols = self.collections.lock();
        let c = cols.get_mut(collection).ok_or_else(|| DataError::not_found("collection", collection))?;
        let mut buf = Vec::new();
        for op in &ops {
            serde_json::to_writer(&mut buf, op).map_err(|e| DataError::invalid("point", e.to_string()))?;
            buf.push(b'\n');
        }
        let path = self.dir.join(collection).join("log.jsonl");
        c.log.write_all(&buf).and_then(|_| c.log.sync_data()).map_err(io(&path))?;
        ops.into_iter().for_each(|op| c.apply(op));
        Ok(())
    }

    fn dim_of(&self, collection: &str) -> Result<usize> {
        crate::check_id(collection)?;
        self.collections.lock().get(collection).map(|c| c.dim).ok_or_else(|| DataError::not_found("collection", collection))
    }
}

#[async_trait::async_trait]
impl VectorStore for LocalVectors {
    async fn ensure_collection(&self, model: &str, dim: usize) -> Result<String> {
        check_dim(dim)?;
        let name = collection_name(model, dim);
        let mut cols = self.collections.lock();
        if let Some(c) = cols.get(&name) {
            if c.dim != dim {
                return Err(DataError::invalid("dimension", format!("collection {name} exists with dimension {}, not {dim}", c.dim)));
            }
            return Ok(name);
        }
        let path = self.dir.join(&name);
        std::fs::create_dir_all(&path).map_err(io(&path))?;
        let meta = serde_json::json!({"model": model, "dim": dim, "distance": "cosine"});
        let tmp = path.join("meta.json.tmp");
        std::fs::write(&tmp, meta.to_string()).map_err(io(&tmp))?;
        std::fs::rename(&tmp, path.join("meta.json")).map_err(io(&path))?;
        let c = Self::load(&path)?;
        cols.insert(name.clone(), c);
        Ok(name)
    }

    async fn upsert(&self, tenant: &str, collection: &str, points: &[VectorPoint]) -> Result<()> {
        check_points(tenant, collection, points, self.dim_of(collection)?)?;
        let ops = points.iter().map(|p| LogOp::Upsert { tenant: tenant.to_string(), point: p.clone() }).collect();
        self.write(collection, ops)
    }

    async fn search(&self, tenant: &str, collection: &str, vector: &[f32], k: usize, kb_id: Option<&str>) -> Result<Vec<VectorHit>> {
        check_query(tenant, collection, k, kb_id)?;
        check_vector(vector, self.dim_of(collection)?)?;
        let qn = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cols = self.collections.lock();
        let Some(points) = cols.get(collection).and_then(|c| c.tenants.get(tenant)) else { return Ok(Vec::new()) };
        let mut hits: Vec<(f32, &VectorPoint)> = points
            .values()
            .filter(|(p, _)| kb_id.is_none_or(|kb| p.kb_id == kb))
            .map(|(p, n)| (p.vector.iter().zip(vector).map(|(a, b)| a * b).sum::<f32>() / (n * qn), p))
            .collect();
        hits.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
        Ok(hits
            .into_iter()
            .take(k)
            .map(|(score, p)| VectorHit { id: p.id, score, kb_id: p.kb_id.clone(), doc_id: p.doc_id.clone(), text: p.text.clone(), extra: p.extra.clone() })
            .collect())
    }

    async fn delete_document(&self, tenant: &str, collection: &str, doc_id: &str) -> Result<()> {
        crate::check_id(tenant)?;
        crate::check_id(doc_id)?;
        self.dim_of(collection)?;
        self.write(collection, vec![LogOp::DeleteDoc { tenant: tenant.to_string(), doc_id: doc_id.to_string() }])
    }

    async fn count(&self, tenant: &str, collection: &str) -> Result<u64> {
        crate::check_id(tenant)?;
        self.dim_of(collection)?;
        let cols = self.collections.lock();
        Ok(cols.get(collection).and_then(|c| c.tenants.get(tenant)).map_or(0, |t| t.len() as u64))
    }
}
