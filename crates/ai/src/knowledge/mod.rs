//! Knowledge-base text: documents in several formats become plain text, then overlapping,
//! de-duplicated chunks with their provenance (which document, which part, where).

pub mod chunk;
pub mod extract;

pub use chunk::{Chunk, ChunkConfig, chunk};
pub use extract::{Format, extract};
