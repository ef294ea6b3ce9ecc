//! BERT uncased WordPiece tokenization, from `vocab.txt`: lower-case, split on white space and
//! punctuation, greedy longest-match-first sub-words with `##` continuations.

use std::collections::HashMap;
use std::path::Path;

use crate::{AiError, Result};

pub struct WordPiece {
    vocab: HashMap<String, u32>,
    unk: u32,
    cls: u32,
    sep: u32,
    max_len: usize,
}

impl WordPiece {
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| AiError::Config(format!("{}: {e}", path.display())))?;
        let vocab: HashMap<String, u32> = text.lines().enumerate().map(|(i, l)| (l.to_string(), i as u32)).collect();
        let id = |t: &str| vocab.get(t).copied().ok_or_else(|| AiError::Config(format!("{}: no {t} token", path.display())));
        Ok(WordPiece { unk: id("[UNK]")?, cls: id("[CLS]")?, sep: id("[SEP]")?, vocab, max_len })
    }

    /// Token ids with `[CLS]` … `[SEP]`, at most `max_len`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = vec![self.cls];
        'words: for word in basic_tokens(text) {
            let chars: Vec<char> = word.chars().collect();
            if chars.len() > 100 {
                ids.push(self.unk);
                continue;
            }
            let mut pieces = Vec::new();
            let mut start = 0;
            while start < chars.len() {
                let mut end = chars.len();
                let mut found = None;
                while start < end {
                    let sub: String = chars[start..end].iter().collect();
                    let sub = if start > 0 { format!("##{sub}") } else { sub };
                    if let Some(&id) = self.vocab.get(&sub) {
                        found = Some(id);
                        break;
                    }
                    end -= 1;
                }
                match found {
                    Some(id) => pieces.push(id),
                    None => {
                        ids.push(self.unk);
                        continue 'words;
                    }
                }
                start = end;
            }
            ids.extend(pieces);
        }
        ids.truncate(self.max_len - 1);
        ids.push(self.sep);
        ids
    }
}

/// Lower-cased words and single punctuation characters; common accents folded.
fn basic_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.to_lowercase().chars().map(fold_accent) {
        if c.is_whitespace() || c.is_control() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if c.is_ascii_punctuation() || (!c.is_alphanumeric() && !c.is_whitespace()) {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            out.push(c.to_string());
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn fold_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelPaths;

    #[test]
    fn matches_the_reference_tokenizer() {
        let dir = ModelPaths::default().minilm_dir().unwrap();
        let wp = WordPiece::from_file(&dir.join("vocab.txt"), 256).unwrap();
        // Expected ids from the model's own tokenizer.json (HF tokenizers), computed once.
        assert_eq!(wp.encode("I want to cancel my order"), vec![101, 1045, 2215, 2000, 17542, 2026, 2344, 102]);
        assert_eq!(wp.encode("Hello, Café!"), vec![101, 7592, 1010, 7668, 999, 102]);
        assert_eq!(wp.encode("unaffordable"), vec![101, 14477, 4246, 8551, 3085, 102]);
        assert_eq!(wp.encode("x ".repeat(300).as_str()).len(), 256);
    }
}
