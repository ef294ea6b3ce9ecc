//! Knowledge bases: a document's text becomes chunks (with provenance), embedded with the
//! knowledge base's model (MiniLM on the box, Voyage in production) into the vector store
//! (Qdrant, or the embedded index), tenant-filtered. Re-indexing a document replaces its chunks;
//! deleting it removes them. Indexing runs off the request path; the document's status tells
//! how far it got (`indexing`, `ready` with its chunk count, or `failed`).

use std::sync::Arc;

use callfunnel_ai::EmbedKind;
use callfunnel_ai::knowledge::{ChunkConfig, chunk};
use callfunnel_data::control::{DocumentStatus, KnowledgeBase};
use callfunnel_data::vectors::{VectorHit, VectorPoint};
use serde_json::json;

use crate::providers::ProviderHub;
use crate::stores::Stores;

/// Texts per embedding request.
const EMBED_BATCH: usize = 32;

#[derive(Clone)]
pub struct Knowledge {
    pub stores: Stores,
    pub hub: Arc<ProviderHub>,
    pub chunking: ChunkConfig,
}

/// What is known about a document besides its text.
pub struct DocMeta<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub source: &'a str,
}

impl Knowledge {
    pub fn new(stores: Stores, hub: Arc<ProviderHub>) -> Knowledge {
        Knowledge { stores, hub, chunking: ChunkConfig::default() }
    }

    /// Chunks, embeds and stores `text` as document `doc.id` of `kb`, replacing its earlier
    /// chunks; marks the document ready (or failed, and says why). Returns the chunk count.
    pub async fn index(&self, tenant: &str, kb: &KnowledgeBase, doc: DocMeta<'_>, text: &str) -> anyhow::Result<usize> {
        let control = &self.stores.control;
        control.set_document_status(tenant, &kb.id, doc.id, DocumentStatus::Indexing, 0).await?;
        match self.index_inner(tenant, kb, &doc, text).await {
            Ok(n) => {
                control.set_document_status(tenant, &kb.id, doc.id, DocumentStatus::Ready, n as i32).await?;
                Ok(n)
            }
            Err(e) => {
                tracing::warn!(tenant, kb = kb.id, doc = doc.id, error = %e, "document not indexed");
                let _ = control.set_document_status(tenant, &kb.id, doc.id, DocumentStatus::Failed, 0).await;
                Err(e)
            }
        }
    }

    async fn index_inner(&self, tenant: &str, kb: &KnowledgeBase, doc: &DocMeta<'_>, text: &str) -> anyhow::Result<usize> {
        let chunks = chunk(text, &self.chunking);
        let embedder = self.hub.embedder(tenant, &kb.embed_model, kb.dim as usize).await?;
        if embedder.dim() != kb.dim as usize {
            anyhow::bail!("the embedder gives {} dimensions, the knowledge base has {}", embedder.dim(), kb.dim);
        }
        let mut vectors = Vec::with_capacity(chunks.len());
        for batch in chunks.chunks(EMBED_BATCH) {
            // the title goes with each chunk: "Parking" + "Level 2 is free" answers "where do I park"
            let texts = batch.iter().map(|c| format!("{}\n{}", doc.title, c.text)).collect();
            vectors.extend(embedder.embed(texts, EmbedKind::Document).await?);
        }
        let vs = &self.stores.vectors;
        let collection = vs.ensure_collection(&kb.embed_model, kb.dim as usize).await?;
        vs.delete_document(tenant, &collection, doc.id).await?;
        let points: Vec<VectorPoint> = chunks
            .iter()
            .zip(vectors)
            .map(|(c, v)| VectorPoint {
                id: uuid::Uuid::new_v4(),
                kb_id: kb.id.clone(),
                doc_id: doc.id.to_string(),
                text: c.text.clone(),
                vector: v,
                extra: json!({"chunk": c.index, "start": c.start, "end": c.end, "title": doc.title, "source": doc.source}),
            })
            .collect();
        for part in points.chunks(256) {
            vs.upsert(tenant, &collection, part).await?;
        }
        Ok(points.len())
    }

    /// The `k` chunks of `kb` closest to `query`, best first.
    pub async fn search(&self, tenant: &str, kb: &KnowledgeBase, query: &str, k: usize) -> anyhow::Result<Vec<VectorHit>> {
        let embedder = self.hub.embedder(tenant, &kb.embed_model, kb.dim as usize).await?;
        let q = embedder.embed(vec![query.to_string()], EmbedKind::Query).await?.pop().ok_or_else(|| anyhow::anyhow!("no query embedding"))?;
        let collection = self.stores.vectors.ensure_collection(&kb.embed_model, kb.dim as usize).await?;
        Ok(self.stores.vectors.search(tenant, &collection, &q, k, Some(&kb.id)).await?)
    }

    /// Removes a document's chunks.
    pub async fn remove(&self, tenant: &str, kb: &KnowledgeBase, doc_id: &str) -> anyhow::Result<()> {
        let collection = self.stores.vectors.ensure_collection(&kb.embed_model, kb.dim as usize).await?;
        Ok(self.stores.vectors.delete_document(tenant, &collection, doc_id).await?)
    }
}

/// An agent's knowledge base as its brain sees it during calls.
pub struct KbSearch {
    pub vectors: Arc<dyn callfunnel_data::vectors::VectorStore>,
    pub embedder: Arc<dyn callfunnel_ai::Embedder>,
    pub tenant: String,
    pub kb: KnowledgeBase,
}

#[async_trait::async_trait]
impl callfunnel_ai::knowledge::KnowledgeSearch for KbSearch {
    async fn search(&self, query: &str, k: usize) -> callfunnel_ai::Result<Vec<callfunnel_ai::knowledge::Passage>> {
        let err = |e: callfunnel_data::DataError| callfunnel_ai::AiError::Provider { provider: "knowledge", message: e.to_string() };
        let q = self.embedder.embed(vec![query.to_string()], EmbedKind::Query).await?.pop().unwrap_or_default();
        let collection = self.vectors.ensure_collection(&self.kb.embed_model, self.kb.dim as usize).await.map_err(err)?;
        let hits = self.vectors.search(&self.tenant, &collection, &q, k, Some(&self.kb.id)).await.map_err(err)?;
        Ok(hits
            .into_iter()
            .map(|h| callfunnel_ai::knowledge::Passage { source: h.extra.get("title").and_then(|t| t.as_str()).map_or_else(|| h.doc_id.clone(), str::to_string), text: h.text, score: h.score })
            .collect())
    }
}
