//! Knowledge bases and their documents, written once for both backends (`$N` placeholders).

macro_rules! sql_content {
    ($store:ty, $row:ty, $name:literal) => {
        impl $store {
            async fn exists(&self, sql: &'static str, tenant_id: &str, id: &str, what: &'static str) -> $crate::Result<()> {
                let found = sqlx::query(sql)
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                found.map(|_| ()).ok_or_else(|| $crate::DataError::not_found(what, id))
            }

            fn kb_row(r: &$row) -> $crate::Result<$crate::control::KnowledgeBase> {
                use sqlx::Row;
                let e = |e| $crate::DataError::backend($name, e);
                Ok($crate::control::KnowledgeBase {
                    tenant_id: r.try_get("tenant_id").map_err(e)?,
                    id: r.try_get("id").map_err(e)?,
                    name: r.try_get("name").map_err(e)?,
                    embed_model: r.try_get("embed_model").map_err(e)?,
                    dim: r.try_get("dim").map_err(e)?,
                    created_at: r.try_get("created_at").map_err(e)?,
                })
            }

            async fn create_kb(&self, tenant_id: &str, id: &str, name: &str, embed_model: &str, dim: i32) -> $crate::Result<$crate::control::KnowledgeBase> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(id)?;
                v::text("knowledge base name", name)?;
                v::text("embedding model", embed_model)?;
                if !(1..=65_536).contains(&dim) {
                    return Err($crate::DataError::invalid("dimension", "must be 1 to 65536"));
                }
                let row = sqlx::query(
                    "INSERT INTO knowledge_bases (tenant_id, id, name, embed_model, dim, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
                )
                .bind(tenant_id)
                .bind(id)
                .bind(name)
                .bind(embed_model)
                .bind(dim)
                .bind(v::now_ms())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| v::write_err($name, e, || format!("knowledge base `{id}` already exists"), ("tenant", tenant_id)))?;
                Self::kb_row(&row)
            }

            async fn kbs(&self, tenant_id: &str) -> $crate::Result<Vec<$crate::control::KnowledgeBase>> {
                $crate::control::validate::id(tenant_id)?;
                let rows = sqlx::query("SELECT * FROM knowledge_bases WHERE tenant_id = $1 ORDER BY id")
                    .bind(tenant_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::kb_row).collect()
            }

            fn doc_row(r: &$row) -> $crate::Result<$crate::control::Document> {
                use sqlx::Row;
                let e = |e| $crate::DataError::backend($name, e);
                let status: String = r.try_get("status").map_err(e)?;
                Ok($crate::control::Document {
                    tenant_id: r.try_get("tenant_id").map_err(e)?,
                    kb_id: r.try_get("kb_id").map_err(e)?,
                    id: r.try_get("id").map_err(e)?,
                    title: r.try_get("title").map_err(e)?,
                    source: r.try_get("source").map_err(e)?,
                    sha256: r.try_get("sha256").map_err(e)?,
                    chunks: r.try_get("chunks").map_err(e)?,
                    status: $crate::control::DocumentStatus::parse(&status)?,
                    created_at: r.try_get("created_at").map_err(e)?,
                    updated_at: r.try_get("updated_at").map_err(e)?,
                })
            }

            /// Stored with status `pending`.
            async fn add_document(&self, tenant_id: &str, kb_id: &str, d: $crate::control::NewDocument) -> $crate::Result<$crate::control::Document> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(kb_id)?;
                v::id(&d.id)?;
                v::text("document title", &d.title)?;
                if d.source.is_empty() || d.source.len() > 2048 || d.source.chars().any(char::is_control) {
                    return Err($crate::DataError::invalid("document source", "1 to 2048 bytes without control characters"));
                }
                if d.sha256.len() != 64 || !d.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                    return Err($crate::DataError::invalid("sha256", "64 lowercase hex digits"));
                }
                v::non_negative("chunks", i64::from(d.chunks))?;
                let now = v::now_ms();
                let row = sqlx::query(
                    "INSERT INTO documents (tenant_id, kb_id, id, title, source, sha256, chunks, status, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8) RETURNING *",
                )
                .bind(tenant_id)
                .bind(kb_id)
                .bind(&d.id)
                .bind(&d.title)
                .bind(&d.source)
                .bind(&d.sha256)
                .bind(d.chunks)
                .bind(now)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| v::write_err($name, e, || format!("document `{}` already exists", d.id), ("knowledge base", kb_id)))?;
                Self::doc_row(&row)
            }

            async fn set_document_status(
                &self,
                tenant_id: &str,
                kb_id: &str,
                doc_id: &str,
                status: $crate::control::DocumentStatus,
                chunks: i32,
            ) -> $crate::Result<()> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::non_negative("chunks", i64::from(chunks))?;
                let done = sqlx::query("UPDATE documents SET status = $4, chunks = $5, updated_at = $6 WHERE tenant_id = $1 AND kb_id = $2 AND id = $3")
                    .bind(tenant_id)
                    .bind(kb_id)
                    .bind(doc_id)
                    .bind(status.as_str())
                    .bind(chunks)
                    .bind(v::now_ms())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                if done.rows_affected() == 0 {
                    return Err($crate::DataError::not_found("document", doc_id));
                }
                Ok(())
            }

            async fn documents(&self, tenant_id: &str, kb_id: &str) -> $crate::Result<Vec<$crate::control::Document>> {
                $crate::control::validate::id(tenant_id)?;
                self.exists("SELECT id FROM knowledge_bases WHERE tenant_id = $1 AND id = $2", tenant_id, kb_id, "knowledge base").await?;
                let rows = sqlx::query("SELECT * FROM documents WHERE tenant_id = $1 AND kb_id = $2 ORDER BY id")
                    .bind(tenant_id)
                    .bind(kb_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::doc_row).collect()
            }

            async fn delete_document(&self, tenant_id: &str, kb_id: &str, doc_id: &str) -> $crate::Result<()> {
                $crate::control::validate::id(tenant_id)?;
                let done = sqlx::query("DELETE FROM documents WHERE tenant_id = $1 AND kb_id = $2 AND id = $3")
                    .bind(tenant_id)
                    .bind(kb_id)
                    .bind(doc_id)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                if done.rows_affected() == 0 {
                    return Err($crate::DataError::not_found("document", doc_id));
                }
                Ok(())
            }
        }
    };
}
pub(crate) use sql_content;
