//! What the caller actually heard of an agent turn, from the audio segments queued and the
//! playback position confirmed by the carrier's marks.

#[derive(Debug, Clone, PartialEq)]
struct Segment {
    start: u64,
    end: u64,
    text: String,
}

#[derive(Debug, Default, Clone)]
pub struct HeardTracker {
    segments: Vec<Segment>,
    queued: u64,
}

impl HeardTracker {
    /// Records `samples` more audio; `text` starts a new segment (a sentence or a word).
    pub fn push(&mut self, text: Option<&str>, samples: u64) {
        match (text, self.segments.last_mut()) {
            (Some(t), _) => self.segments.push(Segment { start: self.queued, end: self.queued + samples, text: t.to_string() }),
            (None, Some(last)) => last.end = self.queued + samples,
            (None, None) => self.segments.push(Segment { start: self.queued, end: self.queued + samples, text: String::new() }),
        }
        self.queued += samples;
    }

    pub fn queued_samples(&self) -> u64 {
        self.queued
    }

    /// Everything queued, as text.
    pub fn full_text(&self) -> String {
        join(self.segments.iter().map(|s| s.text.as_str()))
    }

    /// The text heard when playback reached `played` samples: whole segments before it, and the
    /// share of the words of the segment in progress that its played fraction covers.
    pub fn heard_text(&self, played: u64) -> String {
        let mut parts = Vec::new();
        for s in &self.segments {
            if played >= s.end {
                parts.push(s.text.clone());
            } else if played > s.start {
                let words: Vec<&str> = s.text.split_whitespace().collect();
                let frac = (played - s.start) as f64 / (s.end - s.start).max(1) as f64;
                let n = (words.len() as f64 * frac).floor() as usize;
                if n > 0 {
                    parts.push(words[..n].join(" "));
                }
                break;
            } else {
                break;
            }
        }
        join(parts.iter().map(String::as_str))
    }
}

fn join<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    parts.filter(|p| !p.trim().is_empty()).map(str::trim).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heard_covers_whole_and_partial_segments() {
        let mut h = HeardTracker::default();
        h.push(Some("We are open weekdays."), 800);
        h.push(None, 800);
        h.push(Some("On Saturday we open nine to one."), 2800);
        assert_eq!(h.full_text(), "We are open weekdays. On Saturday we open nine to one.");
        assert_eq!(h.heard_text(0), "");
        assert_eq!(h.heard_text(800), "We are");
        assert_eq!(h.heard_text(1600), "We are open weekdays.");
        // Half of a 7-word segment: 3 words (rounded down: only what surely played).
        assert_eq!(h.heard_text(1600 + 1400), "We are open weekdays. On Saturday we");
        assert_eq!(h.heard_text(10_000), h.full_text());
    }
}
