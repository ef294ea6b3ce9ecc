//! `/v1/knowledge-bases`: a tenant's knowledge bases and their documents. An upload — JSON
//! (text, Markdown or HTML in `text`), or the file itself as the body (PDF, Markdown, HTML or
//! text, by `Content-Type` or its `%PDF-` start) — has its text extracted at once (a damaged,
//! password-protected or image-only PDF is refused with its own code, and nothing changes), is
//! kept under the data directory (`kb/TENANT/KB/DOC.txt`, as extracted text), registered
//! `pending`, and indexed in the background (chunk, embed, store vectors): its status becomes
//! `ready` with a chunk count, or `failed`. Replacing a document re-indexes it; deleting it
//! removes its chunks.

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::Json;
use callfunnel_ai::knowledge::{ExtractError, Format};
use callfunnel_data::control::{Document, KnowledgeBase, NewDocument};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::common::{Body, ErrorBody, Page, PageParams, store_err};
use crate::auth::{Caller, Role};
use crate::http::{ApiError, AppState};

/// Largest text accepted in one JSON upload.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Largest file accepted as a request body (a PDF).
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKb {
    pub id: String,
    pub name: String,
    /// Embedding model (default `minilm-l6-v2`, 384 dimensions, on-box).
    #[serde(default)]
    pub embed_model: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct KbView {
    pub id: String,
    pub name: String,
    pub embed_model: String,
    pub dim: i32,
    pub created_at: i64,
}

impl From<KnowledgeBase> for KbView {
    fn from(k: KnowledgeBase) -> Self {
        KbView { id: k.id, name: k.name, embed_model: k.embed_model, dim: k.dim, created_at: k.created_at }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDocumentBody {
    pub id: String,
    pub title: String,
    /// The document, at most 1 MiB.
    pub text: String,
    /// `text` (default), `markdown` or `html`.
    #[serde(default)]
    pub format: Option<String>,
    /// Where it came from (a URL or a file name), for citations.
    #[serde(default)]
    pub source: Option<String>,
}

/// A file sent as the request body: what JSON uploads carry in their fields.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileParams {
    /// The document id (required with a file body).
    pub id: Option<String>,
    /// Default: the title in the document (a PDF's metadata, the first heading), else its first line.
    pub title: Option<String>,
    /// Where it came from (a URL or a file name), for citations.
    pub source: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DocumentView {
    pub id: String,
    pub title: String,
    pub source: String,
    pub sha256: String,
    pub chunks: i32,
    /// `pending`, `indexing`, `ready` or `failed`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Document> for DocumentView {
    fn from(d: Document) -> Self {
        DocumentView { id: d.id, title: d.title, source: d.source, sha256: d.sha256, chunks: d.chunks, status: d.status.as_str().into(), created_at: d.created_at, updated_at: d.updated_at }
    }
}

fn model_dim(m: &str) -> Option<i32> {
    match m {
        "minilm-l6-v2" => Some(384),
        "voyage-3.5" | "voyage-3.5-lite" | "voyage-3-large" => Some(1024),
        _ => None,
    }
}

#[utoipa::path(post, path = "/v1/knowledge-bases", tag = "knowledge", request_body = NewKb, responses((status = 201, body = KbView), (status = 409, body = ErrorBody)))]
pub async fn create(c: Caller, State(s): State<AppState>, Body(b): Body<NewKb>) -> Result<(StatusCode, Json<KbView>), ApiError> {
    c.require(Role::Editor)?;
    let model = b.embed_model.unwrap_or_else(|| "minilm-l6-v2".into());
    let dim = model_dim(&model).ok_or_else(|| ApiError::bad_request("invalid_embed_model", "embed_model must be minilm-l6-v2, voyage-3.5, voyage-3.5-lite or voyage-3-large"))?;
    let kb = s.stores.control.create_kb(&c.tenant, &b.id, &b.name, &model, dim).await.map_err(store_err)?;
    Ok((StatusCode::CREATED, Json(kb.into())))
}

#[utoipa::path(get, path = "/v1/knowledge-bases", tag = "knowledge", params(PageParams), responses((status = 200, body = Page<KbView>)))]
pub async fn list(c: Caller, State(s): State<AppState>, Query(p): Query<PageParams>) -> Result<Json<Page<KbView>>, ApiError> {
    c.require(Role::Viewer)?;
    let all: Vec<KbView> = s.stores.control.kbs(&c.tenant).await.map_err(store_err)?.into_iter().map(Into::into).collect();
    Ok(Json(p.page(all, |k| k.id.clone())?))
}

#[utoipa::path(get, path = "/v1/knowledge-bases/{kb_id}/documents", tag = "knowledge", params(("kb_id" = String, Path)), responses((status = 200, body = Page<DocumentView>), (status = 404, body = ErrorBody)))]
pub async fn documents(c: Caller, State(s): State<AppState>, Path(kb): Path<String>) -> Result<Json<Page<DocumentView>>, ApiError> {
    c.require(Role::Viewer)?;
    kb_exists(&s, &c.tenant, &kb).await?;
    let data = s.stores.control.documents(&c.tenant, &kb).await.map_err(store_err)?.into_iter().map(Into::into).collect();
    Ok(Json(Page { data, next_cursor: None }))
}

async fn kb_get(s: &AppState, tenant: &str, kb: &str) -> Result<KnowledgeBase, ApiError> {
    s.stores.control.kbs(tenant).await.map_err(store_err)?.into_iter().find(|k| k.id == kb).ok_or_else(|| ApiError::not_found("knowledge_base_not_found", format!("knowledge base `{}` not found", kb.chars().take(128).collect::<String>())))
}

async fn kb_exists(s: &AppState, tenant: &str, kb: &str) -> Result<(), ApiError> {
    kb_get(s, tenant, kb).await.map(|_| ())
}

/// A document ready to store: its text extracted.
struct Incoming {
    id: String,
    title: String,
    source: String,
    sha256: String,
    text: String,
}

fn extract_err(e: ExtractError) -> ApiError {
    let status = if matches!(e, ExtractError::Encrypted | ExtractError::Damaged(_) | ExtractError::NoTextLayer) { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::BAD_REQUEST };
    ApiError::new(status, e.code(), e.to_string())
}

/// The format of a file body: a `%PDF-` start, else its `Content-Type`, else (for
/// `application/octet-stream` or none) the file name in `source`.
fn file_format(content_type: &str, source: Option<&str>, raw: &[u8]) -> Result<Format, ApiError> {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let unsupported = || ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", format!("`{}`: send application/json, application/pdf, text/markdown, text/html or text/plain", essence.chars().take(60).collect::<String>()));
    match essence.as_str() {
        "application/pdf" => Ok(Format::Pdf),
        _ if callfunnel_ai::knowledge::pdf::is_pdf(raw) => Ok(Format::Pdf),
        "text/markdown" | "text/x-markdown" => Ok(Format::Markdown),
        "text/html" => Ok(Format::Html),
        "text/plain" => Ok(Format::Text),
        "" | "application/octet-stream" => match source.map(|n| Format::guess(n.rsplit('/').next().unwrap_or(n))) {
            Some(Ok(f)) if source.is_some_and(|n| n.contains('.')) => Ok(f),
            _ => Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "say what the file is: a Content-Type, or a file name with its extension in `source`")),
        },
        _ => Err(unsupported()),
    }
}

/// Reads an upload (JSON or a file body) and extracts its text, off the async runtime.
async fn incoming(s: &AppState, q: FileParams, req: Request) -> Result<Incoming, ApiError> {
    let content_type = req.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let (id, title, source, raw, format) = if content_type.to_ascii_lowercase().starts_with("application/json") {
        let Body(b) = Body::<NewDocumentBody>::from_request(req, s).await?;
        if b.text.len() > MAX_DOCUMENT_BYTES {
            return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "document_too_large", format!("documents are limited to {MAX_DOCUMENT_BYTES} bytes")));
        }
        let format = match b.format.as_deref().unwrap_or("text") {
            "text" => Format::Text,
            "markdown" => Format::Markdown,
            "html" => Format::Html,
            "pdf" => return Err(ApiError::bad_request("invalid_format", "send a PDF as the request body itself (Content-Type: application/pdf, ?id=&title=&source=)")),
            other => return Err(ApiError::bad_request("invalid_format", format!("format `{}`: use text, markdown or html (or send a PDF as the body)", other.chars().take(20).collect::<String>()))),
        };
        (b.id, Some(b.title), b.source, b.text.into_bytes(), format)
    } else {
        let id = q.id.ok_or_else(|| ApiError::bad_request("missing_id", "a file body needs the document id: ?id=DOC_ID"))?;
        let raw = axum::body::to_bytes(req.into_body(), MAX_FILE_BYTES).await.map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "document_too_large", format!("files are limited to {MAX_FILE_BYTES} bytes")))?;
        let format = file_format(&content_type, q.source.as_deref(), &raw)?;
        (id, q.title, q.source, raw.to_vec(), format)
    };
    callfunnel_data::check_id(&id).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("empty_document", "the document has no text"));
    }
    let sha256: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &raw).as_ref().iter().map(|x| format!("{x:02x}")).collect();
    let doc = tokio::task::spawn_blocking(move || callfunnel_ai::knowledge::extract(&raw, format)).await.map_err(|_| ApiError::internal("the document could not be read"))?.map_err(extract_err)?;
    let title = title.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| doc.title_or_first_line());
    let source = source.filter(|x| !x.trim().is_empty()).unwrap_or_else(|| format!("upload:{id}"));
    Ok(Incoming { id, title, source, sha256, text: doc.text })
}

/// Stores an extracted document and starts indexing it.
async fn store(s: &AppState, tenant: &str, kbase: KnowledgeBase, d: Incoming) -> Result<(StatusCode, Json<DocumentView>), ApiError> {
    let path = s.config.data.dir.join("kb").join(tenant).join(&kbase.id).join(format!("{}.txt", d.id));
    let doc = s.stores.control.add_document(tenant, &kbase.id, NewDocument { id: d.id, title: d.title, source: d.source, sha256: d.sha256, chunks: 0 }).await.map_err(store_err)?;
    let write = async {
        tokio::fs::create_dir_all(path.parent().expect("a parent")).await?;
        tokio::fs::write(&path, d.text.as_bytes()).await
    };
    if let Err(e) = write.await {
        tracing::error!(path = %path.display(), error = %e, "document not stored");
        let _ = s.stores.control.delete_document(tenant, &kbase.id, &doc.id).await;
        return Err(ApiError::internal("the document could not be stored"));
    }
    let (k, tenant, id, title, source, text) = (s.knowledge.clone(), tenant.to_string(), doc.id.clone(), doc.title.clone(), doc.source.clone(), d.text);
    tokio::spawn(async move {
        let _ = k.index(&tenant, &kbase, crate::knowledge::DocMeta { id: &id, title: &title, source: &source }, &text).await;
    });
    Ok((StatusCode::CREATED, Json(doc.into())))
}

/// Uploads a document (replacing one with the same id is refused: use PUT). The body is JSON
/// (`NewDocumentBody`) or the file itself (`application/pdf`, `text/markdown`, `text/html`,
/// `text/plain`) with `?id=` (and optionally `title`, `source`).
#[utoipa::path(post, path = "/v1/knowledge-bases/{kb_id}/documents", tag = "knowledge", params(("kb_id" = String, Path), FileParams),
    request_body(content((NewDocumentBody = "application/json"), ("application/pdf"), ("text/markdown"), ("text/html"), ("text/plain"))),
    responses((status = 201, body = DocumentView), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody, description = "pdf_encrypted, pdf_unreadable or pdf_no_text")))]
pub async fn upload(c: Caller, State(s): State<AppState>, Path(kb): Path<String>, Query(q): Query<FileParams>, req: Request) -> Result<(StatusCode, Json<DocumentView>), ApiError> {
    c.require(Role::Editor)?;
    let kbase = kb_get(&s, &c.tenant, &kb).await?;
    let d = incoming(&s, q, req).await?;
    store(&s, &c.tenant, kbase, d).await
}

/// Replaces a document (same id): stored again and re-indexed. The new one is read first: if
/// it has no usable text the old one stays.
#[utoipa::path(put, path = "/v1/knowledge-bases/{kb_id}/documents/{doc_id}", tag = "knowledge", params(("kb_id" = String, Path), ("doc_id" = String, Path), FileParams),
    request_body(content((NewDocumentBody = "application/json"), ("application/pdf"), ("text/markdown"), ("text/html"), ("text/plain"))),
    responses((status = 201, body = DocumentView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(c: Caller, State(s): State<AppState>, Path((kb, doc)): Path<(String, String)>, Query(mut q): Query<FileParams>, req: Request) -> Result<(StatusCode, Json<DocumentView>), ApiError> {
    c.require(Role::Editor)?;
    let kbase = kb_get(&s, &c.tenant, &kb).await?;
    q.id.get_or_insert_with(|| doc.clone());
    let d = incoming(&s, q, req).await?;
    if d.id != doc {
        return Err(ApiError::bad_request("id_mismatch", "the body's id must be the document id in the path"));
    }
    match s.stores.control.delete_document(&c.tenant, &kb, &doc).await {
        Ok(()) | Err(callfunnel_data::DataError::NotFound { .. }) => {}
        Err(e) => return Err(store_err(e)),
    }
    store(&s, &c.tenant, kbase, d).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What to look for.
    pub q: String,
    /// How many chunks (1-20, default 3).
    pub k: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchHit {
    pub doc_id: String,
    pub text: String,
    pub score: f32,
    #[schema(value_type = Object)]
    pub provenance: serde_json::Value,
}

/// The chunks closest to a question (what an agent's retrieval sees).
#[utoipa::path(get, path = "/v1/knowledge-bases/{kb_id}/search", tag = "knowledge", params(("kb_id" = String, Path), SearchQuery), responses((status = 200, body = Page<SearchHit>), (status = 404, body = ErrorBody)))]
pub async fn search(c: Caller, State(s): State<AppState>, Path(kb): Path<String>, axum::extract::Query(q): axum::extract::Query<SearchQuery>) -> Result<Json<Page<SearchHit>>, ApiError> {
    c.require(Role::Viewer)?;
    let k = q.k.unwrap_or(3);
    if !(1..=20).contains(&k) || q.q.trim().is_empty() || q.q.len() > 2000 {
        return Err(ApiError::bad_request("invalid_query", "q must be 1-2000 characters and k 1-20"));
    }
    let kbase = kb_get(&s, &c.tenant, &kb).await?;
    let hits = s.knowledge.search(&c.tenant, &kbase, &q.q, k).await.map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "search_unavailable", e.to_string()))?;
    let data = hits.into_iter().map(|h| SearchHit { doc_id: h.doc_id, text: h.text, score: h.score, provenance: h.extra }).collect();
    Ok(Json(Page { data, next_cursor: None }))
}

#[utoipa::path(delete, path = "/v1/knowledge-bases/{kb_id}/documents/{doc_id}", tag = "knowledge", params(("kb_id" = String, Path), ("doc_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_document(c: Caller, State(s): State<AppState>, Path((kb, doc)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    c.require(Role::Editor)?;
    s.stores.control.delete_document(&c.tenant, &kb, &doc).await.map_err(store_err)?;
    if let Ok(kbase) = kb_get(&s, &c.tenant, &kb).await
        && let Err(e) = s.knowledge.remove(&c.tenant, &kbase, &doc).await
    {
        tracing::warn!(kb, doc, error = %e, "document chunks not removed");
    }
    let _ = tokio::fs::remove_file(s.config.data.dir.join("kb").join(&c.tenant).join(&kb).join(format!("{doc}.txt"))).await;
    Ok(StatusCode::NO_CONTENT)
}
