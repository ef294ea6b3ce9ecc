//! Data plane: one trait per store, an embedded backend (no servers) and a production backend
//! each. Each call is a timeline of events ([`TimelineStore`]).

pub mod timeline;

pub use timeline::{CallSummary, FileTimeline, MemoryTimeline, TimelineEvent, TimelineStore};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("invalid id `{0}`: use letters, digits, '-' and '_' only (at most 128)")]
    InvalidId(String),
    #[error("storage I/O error at {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("corrupt record in {path} line {line}: {message}")]
    Corrupt { path: String, line: usize, message: String },
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Ids become file names and keys: keep them to a safe alphabet.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(DataError::InvalidId(id.chars().take(64).collect())) }
}
