//! Intent matching: cosine similarity of embeddings (when an embedder is configured) combined
//! with a lexical score (content-word overlap with the examples, keywords), so matching works
//! without a model and catches keyword hits that a sentence embedding blurs.

use std::collections::HashSet;
use std::sync::Arc;

use super::schema::RuleBook;
use super::slots::words;
use crate::{EmbedKind, Embedder, Result};

const STOP: [&str; 38] = ["i", "a", "an", "the", "to", "is", "are", "you", "your", "my", "me", "do", "does", "can", "could", "would", "like", "want", "please", "what", "for", "of", "on", "in", "at", "it", "and", "be", "we", "have", "has", "i'd", "i'm", "hi", "hello", "um", "uh", "just"];

/// Content words, lightly stemmed ("hours" → "hour").
pub fn content_words(text: &str) -> HashSet<String> {
    words(text)
        .into_iter()
        .filter(|w| !STOP.contains(&w.as_str()))
        .map(|w| if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") { w[..w.len() - 1].to_string() } else { w })
        .collect()
}

pub struct Matcher {
    examples: Vec<(usize, HashSet<String>)>,
    vectors: Option<Vec<Vec<f32>>>,
    embedder: Option<Arc<dyn Embedder>>,
    keywords: Vec<HashSet<String>>,
    intents: usize,
}

impl Matcher {
    pub fn new(book: &RuleBook, examples: Vec<(usize, String)>, vectors: Option<Vec<Vec<f32>>>, embedder: Option<Arc<dyn Embedder>>) -> Self {
        Matcher {
            examples: examples.iter().map(|(i, t)| (*i, content_words(t))).collect(),
            vectors,
            embedder,
            keywords: book.intents.iter().map(|i| i.keywords.iter().flat_map(|k| content_words(k)).collect()).collect(),
            intents: book.intents.len(),
        }
    }

    fn lexical(&self, text: &str) -> Vec<f32> {
        let u = content_words(text);
        let mut score = vec![0f32; self.intents];
        for (i, ex) in &self.examples {
            if ex.is_empty() {
                continue;
            }
            let overlap = ex.intersection(&u).count() as f32 / ex.len() as f32;
            score[*i] = score[*i].max(overlap);
        }
        for (i, kw) in self.keywords.iter().enumerate() {
            let hits = kw.intersection(&u).count();
            if hits > 0 {
                score[i] = score[i].max(0.55 + 0.1 * (hits as f32 - 1.0)).min(1.0);
            }
        }
        score
    }

    /// The combined score of each intent for `text`.
    pub async fn scores(&self, text: &str) -> Result<Vec<f32>> {
        let mut s = self.lexical(text);
        if let (Some(e), Some(vecs)) = (&self.embedder, &self.vectors) {
            let q = e.embed(vec![text.to_string()], EmbedKind::Query).await?;
            if let Some(q) = q.first() {
                for ((i, _), v) in self.examples.iter().zip(vecs) {
                    let cos: f32 = q.iter().zip(v).map(|(a, b)| a * b).sum();
                    s[*i] = s[*i].max(cos);
                }
            }
        }
        Ok(s)
    }

    /// The best intent and its score.
    pub async fn best(&self, text: &str) -> Result<Option<(usize, f32)>> {
        let s = self.scores(text).await?;
        Ok(s.iter().copied().enumerate().fold(None, |best: Option<(usize, f32)>, (i, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((i, v)),
        }))
    }
}
