//! Vectors: knowledge-base embeddings, filtered by tenant on every query. Qdrant in production, an in-process index on disk embedded.
