//! Knowledge-base text: documents in several formats (text, Markdown, HTML, PDF) become plain
//! text, then overlapping, de-duplicated chunks with their provenance (which document, which
//! part, where).

pub mod chunk;
pub mod extract;
pub mod pdf;

pub use chunk::{Chunk, ChunkConfig, chunk};
pub use extract::{ExtractError, Extracted, Format, extract};

use async_trait::async_trait;

/// A retrieved piece of a knowledge base.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    pub text: String,
    /// Where it came from (document title or file), for citations.
    pub source: String,
    /// Cosine similarity to the question (higher is closer).
    pub score: f32,
}

/// A call's view of its agent's knowledge base: the closest passages to a question.
#[async_trait]
pub trait KnowledgeSearch: Send + Sync {
    async fn search(&self, query: &str, k: usize) -> crate::Result<Vec<Passage>>;
}

fn content_words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| w.len() > 2).map(|w| w.to_lowercase()).filter(|w| !["the", "and", "you", "your", "are", "for", "what", "when", "how", "can", "does", "with", "our", "have"].contains(&w.as_str())).collect()
}

/// The sentence of `passage` that answers `question` best (by shared content words), with the
/// next one when it is short: a spoken answer, not the whole chunk.
pub fn spoken_answer(question: &str, passage: &str) -> String {
    let q = content_words(question);
    // sentences, ignoring a heading line without punctuation
    let sents: Vec<&str> = passage.lines().filter(|l| l.trim().ends_with(['.', '?', '!']) || l.split_whitespace().count() > 6).flat_map(|l| l.split_inclusive(['.', '?', '!'])).map(str::trim).filter(|x| x.split_whitespace().count() >= 3).collect();
    if sents.is_empty() {
        return passage.trim().to_string();
    }
    let score = |s: &str| content_words(s).iter().filter(|w| q.iter().any(|x| x == *w || (x.len() > 4 && w.starts_with(&x[..x.len() - 1])))).count();
    let best = (0..sents.len()).max_by_key(|&i| (score(sents[i]), std::cmp::Reverse(i))).unwrap_or(0);
    let mut out = sents[best].to_string();
    if out.split_whitespace().count() < 12 && let Some(next) = sents.get(best + 1) {
        out = format!("{out} {next}");
    }
    out
}
