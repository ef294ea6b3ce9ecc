//! Data plane: one trait per store, an embedded backend (no servers) and a production backend
//! each.
//!
//! | store | trait | production | embedded twin |
//! |---|---|---|---|
//! | control (tenants, agents, numbers, billing) | [`control`] | PostgreSQL | SQLite |
//! | call timelines | [`timeline`] | MongoDB (behind a durable buffer) | JSON-lines files |
//! | hot state (call routing, counters, queues) | [`hot`] | Redis | in-process |
//! | recordings | [`recordings`] | S3 / MinIO | local files |
//! | knowledge vectors | [`vectors`] | Qdrant | in-process index on disk |
//! | provider secrets | [`secrets`] | Vault KV v2 | encrypted local file |

pub mod control;
pub mod hot;
pub mod recordings;
pub mod secrets;
pub mod timeline;
pub mod vectors;

pub use timeline::{CallSummary, FileTimeline, MemoryTimeline, TimelineEvent, TimelineStore};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("invalid id `{0}`: use letters, digits, '-' and '_' only (at most 128)")]
    InvalidId(String),
    #[error("storage I/O error at {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("corrupt record in {path} line {line}: {message}")]
    Corrupt { path: String, line: usize, message: String },
    /// Input the store refuses (bad field, out of range): the caller's fault, nothing written.
    #[error("invalid {what}: {message}")]
    Invalid { what: &'static str, message: String },
    /// The thing asked for does not exist (or belongs to another tenant).
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },
    /// A uniqueness rule or a version check refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A limit (plan, rate) refused the request.
    #[error("limit reached: {0}")]
    Limit(String),
    /// The server or driver failed (unreachable, timeout, protocol error). Never carries secrets.
    #[error("{store} error: {message}")]
    Backend { store: &'static str, message: String },
}

impl DataError {
    pub fn backend(store: &'static str, e: impl std::fmt::Display) -> DataError {
        DataError::Backend { store, message: e.to_string() }
    }
    pub fn invalid(what: &'static str, message: impl Into<String>) -> DataError {
        DataError::Invalid { what, message: message.into() }
    }
    pub fn not_found(what: &'static str, id: impl Into<String>) -> DataError {
        DataError::NotFound { what, id: id.into() }
    }
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Ids become file names and keys: keep them to a safe alphabet.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(DataError::InvalidId(id.chars().take(64).collect())) }
}
