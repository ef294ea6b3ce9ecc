//! Vectors: knowledge-base embeddings, filtered by tenant on every query. Qdrant in production
//! ([`QdrantVectors`], REST), an in-process index on disk embedded ([`LocalVectors`]).
//!
//! One collection per embedding model and dimension ([`collection_name`]); every point carries
//! its `tenant_id`, and no method reads or deletes without the caller's tenant as a filter.

mod local;
mod qdrant;

pub use local::LocalVectors;
pub use qdrant::QdrantVectors;

use crate::{DataError, Result};
use uuid::Uuid;

/// One chunk of a knowledge-base document and its embedding.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VectorPoint {
    pub id: Uuid,
    pub kb_id: String,
    pub doc_id: String,
    /// The chunk's text, returned with search hits.
    pub text: String,
    pub vector: Vec<f32>,
    /// Free JSON kept with the chunk (title, page, offsets); `null` for none.
    #[serde(default)]
    pub extra: serde_json::Value,
}

/// A search result, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorHit {
    pub id: Uuid,
    /// Cosine similarity, 1.0 = same direction.
    pub score: f32,
    pub kb_id: String,
    pub doc_id: String,
    pub text: String,
    pub extra: serde_json::Value,
}

#[async_trait::async_trait]
pub trait VectorStore: Send + Sync {
    /// Creates (if missing) the cosine collection for `model` at `dim` dimensions, with a tenant
    /// index on `tenant_id`; returns its name. An existing one with another dimension is `Invalid`.
    async fn ensure_collection(&self, model: &str, dim: usize) -> Result<String>;
    /// Inserts or replaces points (by id) for `tenant`. A vector of the wrong dimension is
    /// `Invalid` and nothing is written.
    async fn upsert(&self, tenant: &str, collection: &str, points: &[VectorPoint]) -> Result<()>;
    /// The `k` nearest of `tenant`'s points (optionally only in `kb_id`), best first.
    async fn search(&self, tenant: &str, collection: &str, vector: &[f32], k: usize, kb_id: Option<&str>) -> Result<Vec<VectorHit>>;
    /// Removes every chunk of `doc_id` belonging to `tenant`.
    async fn delete_document(&self, tenant: &str, collection: &str, doc_id: &str) -> Result<()>;
    /// How many points `tenant` has in the collection.
    async fn count(&self, tenant: &str, collection: &str) -> Result<u64>;
}

/// `kb_<model>_<dim>`: the model name lower-cased, anything but letters and digits turned to `_`.
pub fn collection_name(model: &str, dim: usize) -> String {
    let mut m = String::new();
    for c in model.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if !(c == '_' && (m.is_empty() || m.ends_with('_'))) {
            m.push(c);
        }
    }
    let m = m.trim_end_matches('_');
    let m: String = m.chars().take(64).collect();
    format!("kb_{}_{dim}", if m.is_empty() { "model" } else { &m })
}

const MAX_DIM: usize = 65_536;
const MAX_K: usize = 1_000;

pub(crate) fn check_dim(dim: usize) -> Result<()> {
    if dim == 0 || dim > MAX_DIM {
        return Err(DataError::invalid("dimension", format!("{dim} (use 1..={MAX_DIM})")));
    }
    Ok(())
}

/// A vector must have the collection's dimension, finite values and a non-zero length.
pub(crate) fn check_vector(v: &[f32], dim: usize) -> Result<()> {
    if v.len() != dim {
        return Err(DataError::invalid("vector", format!("dimension {} but the collection has {dim}", v.len())));
    }
    if v.iter().any(|x| !x.is_finite()) || v.iter().all(|x| *x == 0.0) {
        return Err(DataError::invalid("vector", "values must be finite and not all zero"));
    }
    Ok(())
}

pub(crate) fn check_points(tenant: &str, collection: &str, points: &[VectorPoint], dim: usize) -> Result<()> {
    crate::check_id(tenant)?;
    crate::check_id(collection)?;
    for p in points {
        crate::check_id(&p.kb_id)?;
        crate::check_id(&p.doc_id)?;
        check_vector(&p.vector, dim)?;
        if !(p.extra.is_null() || p.extra.is_object()) {
            return Err(DataError::invalid("extra", "must be a JSON object or null"));
        }
    }
    Ok(())
}

pub(crate) fn check_query(tenant: &str, collection: &str, k: usize, kb_id: Option<&str>) -> Result<()> {
    crate::check_id(tenant)?;
    crate::check_id(collection)?;
    if let Some(kb) = kb_id {
        crate::check_id(kb)?;
    }
    if k == 0 || k > MAX_K {
        return Err(DataError::invalid("k", format!("{k} (use 1..={MAX_K})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names_are_sanitized() {
        assert_eq!(collection_name("voyage-3.5-lite", 512), "kb_voyage_3_5_lite_512");
        assert_eq!(collection_name("  Text/Embedding--3 ", 1536), "kb_text_embedding_3_1536");
        assert_eq!(collection_name("***", 8), "kb_model_8");
        assert!(crate::check_id(&collection_name(&"x".repeat(500), 3)).is_ok());
    }

    #[test]
    fn vectors_are_checked() {
        assert!(check_vector(&[1.0, 0.0], 2).is_ok());
        assert!(matches!(check_vector(&[1.0], 2), Err(DataError::Invalid { .. })));
        assert!(matches!(check_vector(&[0.0, 0.0], 2), Err(DataError::Invalid { .. })));
        assert!(matches!(check_vector(&[f32::NAN, 1.0], 2), Err(DataError::Invalid { .. })));
    }
}
