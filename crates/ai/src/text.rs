//! Text helpers shared by the speech providers.

/// Splits a stream of text pieces into sentences as soon as each one is complete, so TTS can
/// start speaking the first sentence while the brain is still writing the rest.
#[derive(Debug, Default)]
pub struct SentenceSplitter {
    buf: String,
}

impl SentenceSplitter {
    /// Add text; returns every sentence completed by it.
    pub fn push(&mut self, piece: &str) -> Vec<String> {
        self.buf.push_str(piece);
        let mut out = Vec::new();
        loop {
            let Some(end) = find_sentence_end(&self.buf) else { break };
            let sentence = self.buf[..end].trim().to_string();
            self.buf.drain(..end);
            if !sentence.is_empty() {
                out.push(sentence);
            }
        }
        out
    }

    /// The rest of the text (end of turn).
    pub fn finish(&mut self) -> Option<String> {
        let s = std::mem::take(&mut self.buf).trim().to_string();
        (!s.is_empty()).then_some(s)
    }
}

/// Byte index just past a sentence terminator that is followed by white space, if any.
/// "3.5" does not split (no white space after the dot), nor do common abbreviations ("Dr.").
fn find_sentence_end(s: &str) -> Option<usize> {
    for (i, c) in s.char_indices() {
        if !matches!(c, '.' | '!' | '?' | '।') {
            continue;
        }
        let after = i + c.len_utf8();
        let Some(next) = s[after..].chars().next() else { return None };
        if !next.is_whitespace() {
            continue;
        }
        if c == '.' {
            let start = s[..i].rfind(|ch: char| !ch.is_alphanumeric()).map_or(0, |j| j + 1);
            let word = &s[start..i];
            let abbrev = matches!(word, "Dr" | "Mr" | "Mrs" | "Ms" | "St" | "Jr" | "Sr" | "vs" | "etc")
                || (word.len() == 1 && word.chars().all(|ch| ch.is_ascii_uppercase()));
            if abbrev {
                continue;
            }
        }
        return Some(after);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_streamed_sentences() {
        let mut s = SentenceSplitter::default();
        assert!(s.push("Hello the").is_empty());
        assert_eq!(s.push("re. How are"), vec!["Hello there."]);
        assert_eq!(s.push(" you? Dr. Smith is in at 3.5 pm. ok"), vec!["How are you?", "Dr. Smith is in at 3.5 pm."]);
        assert_eq!(s.finish().as_deref(), Some("ok"));
        assert_eq!(s.finish(), None);
    }
}
