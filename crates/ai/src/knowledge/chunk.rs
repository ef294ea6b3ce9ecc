//! Chunks for retrieval: sentences packed up to a word budget, each chunk starting with the
//! last sentence(s) of the one before (overlap, so an answer spanning a boundary is whole in
//! one of them), duplicates within a document dropped, and each chunk's place in the text kept.

use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkConfig {
    /// Words per chunk at most (a word is ~1.3 tokens).
    pub max_words: usize,
    /// Sentences repeated from the end of the previous chunk.
    pub overlap_sentences: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig { max_words: 120, overlap_sentences: 1 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// 0, 1, … in document order (after duplicates are dropped).
    pub index: usize,
    pub text: String,
    /// Byte range of the chunk in the extracted text.
    pub start: usize,
    pub end: usize,
}

/// Sentence spans: split after `.`, `?`, `!` followed by whitespace, and at line breaks
/// (headings and list items are sentences of their own).
fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let end_here = match c {
            b'\n' => Some(i),
            b'.' | b'?' | b'!' if bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace()) => Some(i + 1),
            _ => None,
        };
        if let Some(e) = end_here {
            let s = text[start..e].trim();
            if !s.is_empty() {
                let lead = text[start..e].len() - text[start..e].trim_start().len();
                out.push((start + lead, start + lead + s.len()));
            }
            start = e;
        }
        i += 1;
    }
    let s = text[start..].trim();
    if !s.is_empty() {
        let lead = text[start..].len() - text[start..].trim_start().len();
        out.push((start + lead, start + lead + s.len()));
    }
    out
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Splits a sentence longer than the budget into word runs.
fn split_long(text: &str, (s, e): (usize, usize), max: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut run_start = None;
    let mut n = 0;
    let mut last_end = s;
    for (off, w) in text[s..e].split_whitespace().map(|w| (w.as_ptr() as usize - text.as_ptr() as usize, w)) {
        run_start.get_or_insert(off);
        n += 1;
        last_end = off + w.len();
        if n == max {
            out.push((run_start.take().unwrap_or(off), last_end));
            n = 0;
        }
    }
    if let Some(rs) = run_start {
        out.push((rs, last_end));
    }
    out
}

fn norm(s: &str) -> String {
    s.split_whitespace().map(|w| w.to_lowercase()).collect::<Vec<_>>().join(" ")
}

pub fn chunk(text: &str, cfg: &ChunkConfig) -> Vec<Chunk> {
    let max = cfg.max_words.max(8);
    let sents: Vec<(usize, usize)> = sentences(text).into_iter().flat_map(|sp| if words(&text[sp.0..sp.1]) > max { split_long(text, sp, max) } else { vec![sp] }).collect();
    let mut out: Vec<Chunk> = Vec::new();
    let mut seen = HashSet::new();
    let mut i = 0;
    while i < sents.len() {
        let mut j = i;
        let mut n = 0;
        while j < sents.len() && (j == i || n + words(&text[sents[j].0..sents[j].1]) <= max) {
            n += words(&text[sents[j].0..sents[j].1]);
            j += 1;
        }
        let (start, end) = (sents[i].0, sents[j - 1].1);
        let body = text[start..end].to_string();
        if seen.insert(norm(&body)) {
            out.push(Chunk { index: out.len(), text: body, start, end });
        }
        if j >= sents.len() {
            break;
        }
        // the next chunk starts `overlap` sentences back, but always moves forward
        i = j.saturating_sub(cfg.overlap_sentences).max(i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_pack_into_chunks_that_overlap_by_a_sentence() {
        let text = "We open at 8. We close at 6.\nSaturdays we open at 9! Are we open Sundays? No.";
        let c = chunk(text, &ChunkConfig { max_words: 10, overlap_sentences: 1 });
        let t: Vec<&str> = c.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(t, ["We open at 8. We close at 6.", "We close at 6.\nSaturdays we open at 9!", "Saturdays we open at 9! Are we open Sundays? No."]);
        for ch in &c {
            assert_eq!(&text[ch.start..ch.end], ch.text, "provenance points at the text");
        }
        assert_eq!(c.iter().map(|c| c.index).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn long_sentences_split_duplicates_drop_and_empty_text_gives_nothing() {
        let long = (0..25).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        let c = chunk(&long, &ChunkConfig { max_words: 10, overlap_sentences: 0 });
        assert_eq!(c.iter().map(|c| words(&c.text)).collect::<Vec<_>>(), [10, 10, 5]);
        let dup = "Parking is free for patients on level two.\n\nParking is free for patients on level two.\n\nParking  IS free for patients on level two.";
        assert_eq!(chunk(dup, &ChunkConfig { max_words: 8, overlap_sentences: 0 }).len(), 1);
        assert!(chunk("  \n ", &ChunkConfig::default()).is_empty());
        let one = chunk("Just one sentence without an end", &ChunkConfig::default());
        assert_eq!(one[0].text, "Just one sentence without an end");
    }
}
