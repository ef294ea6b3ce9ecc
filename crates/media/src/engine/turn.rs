//! Turn-taking from VAD probabilities: when the caller starts, holds, pauses and ends a turn.
//! Pure logic over audio time, so it is driven by synthetic frames in tests.

use super::config::TurnConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndBy {
    /// The end-of-turn model said the caller finished.
    Model,
    /// Silence reached the maximum pause.
    Timeout,
    /// The model was unsure, but the transcript of the pause so far is a finished sentence.
    Transcript,
}

impl EndBy {
    pub fn as_str(self) -> &'static str {
        match self {
            EndBy::Model => "model",
            EndBy::Timeout => "timeout",
            EndBy::Transcript => "transcript",
        }
    }
}

/// Words a finished sentence does not end with: a transcript ending in one is mid-sentence
/// whatever its punctuation ("I'd like to book an appointment for.").
const CONTINUES: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "so", "because", "if", "to", "for", "of", "with", "at", "on", "in", "from", "by", "about", "my",
    "your", "our", "their", "his", "her", "is", "are", "was", "were", "be", "am", "i", "i'm", "we", "you", "it's", "that", "which", "who",
    "um", "uh", "er", "like", "then", "than", "as", "into", "onto", "until", "before", "after", "since", "while", "when", "where", "what",
    "how", "why", "can", "could", "would", "will", "should", "may", "might", "do", "does", "did", "have", "has", "had", "not", "just",
];

/// Whether a transcript reads as a finished turn: it ends with `.`, `?` or `!` and not with a
/// word that leads on. A second opinion when the end-of-turn model is unsure.
pub fn reads_complete(text: &str) -> bool {
    let t = text.trim();
    if !t.ends_with(['.', '?', '!']) || t.ends_with("...") {
        return false;
    }
    let last = t.split_whitespace().last().unwrap_or_default().trim_matches(|c: char| !c.is_alphanumeric() && c != '\'').to_lowercase();
    !last.is_empty() && !CONTINUES.contains(&last.as_str())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnSignal {
    /// Speech began at audio time `at_ms`.
    SpeechStarted { at_ms: u64 },
    /// Speech has been held long enough to interrupt the agent.
    SpeechSustained { at_ms: u64 },
    /// Silence after speech: ask the end-of-turn model (answer with `on_prediction(seq, ..)`).
    Paused { seq: u64, speech_end_ms: u64 },
    /// Speech came back before the turn ended.
    Resumed,
    /// The caller's turn is over; speech ended at `speech_end_ms`.
    TurnEnded { speech_end_ms: u64, by: EndBy },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Idle { run_ms: u64 },
    Speaking { started_ms: u64, last_speech_ms: u64, silence_ms: u64 },
    Paused { started_ms: u64, speech_end_ms: u64, silence_ms: u64, run_ms: u64 },
}

#[derive(Debug)]
pub struct TurnTaker {
    cfg: TurnConfig,
    has_model: bool,
    state: State,
    now_ms: u64,
    sustained_sent: bool,
    pause_seq: u64,
}

impl TurnTaker {
    pub fn new(cfg: TurnConfig, has_model: bool) -> Self {
        TurnTaker { cfg, has_model, state: State::Idle { run_ms: 0 }, now_ms: 0, sustained_sent: false, pause_seq: 0 }
    }

    /// True while the caller is in a turn (speaking or pausing within it).
    pub fn in_turn(&self) -> bool {
        !matches!(self.state, State::Idle { .. })
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Feeds one VAD frame of `frame_ms` with speech probability `prob`.
    pub fn on_frame(&mut self, prob: f32, frame_ms: u64) -> Vec<TurnSignal> {
        self.now_ms += frame_ms;
        let now = self.now_ms;
        let c = &self.cfg;
        let mut out = Vec::new();
        self.state = match self.state {
            State::Idle { run_ms } => {
                if prob >= c.vad_start {
                    let run = run_ms + frame_ms;
                    if run >= c.min_speech_ms as u64 {
                        self.sustained_sent = false;
                        out.push(TurnSignal::SpeechStarted { at_ms: now - run });
                        State::Speaking { started_ms: now - run, last_speech_ms: now, silence_ms: 0 }
                    } else {
                        State::Idle { run_ms: run }
                    }
                } else {
                    State::Idle { run_ms: 0 }
                }
            }
            State::Speaking { started_ms, last_speech_ms, silence_ms } => {
                if prob >= c.vad_stop {
                    State::Speaking { started_ms, last_speech_ms: now, silence_ms: 0 }
                } else {
                    let silence = silence_ms + frame_ms;
                    let wait = if self.has_model { c.pause_ms } else { c.no_model_pause_ms };
                    if silence >= wait as u64 {
                        if self.has_model {
                            self.pause_seq += 1;
                            out.push(TurnSignal::Paused { seq: self.pause_seq, speech_end_ms: last_speech_ms });
                            State::Paused { started_ms, speech_end_ms: last_speech_ms, silence_ms: silence, run_ms: 0 }
                        } else {
                            out.push(TurnSignal::TurnEnded { speech_end_ms: last_speech_ms, by: EndBy::Timeout });
                            State::Idle { run_ms: 0 }
                        }
                    } else {
                        State::Speaking { started_ms, last_speech_ms, silence_ms: silence }
                    }
                }
            }
            State::Paused { started_ms, speech_end_ms, silence_ms, run_ms } => {
                if prob >= c.vad_start {
                    let run = run_ms + frame_ms;
                    if run >= c.min_speech_ms as u64 {
                        out.push(TurnSignal::Resumed);
                        State::Speaking { started_ms, last_speech_ms: now, silence_ms: 0 }
                    } else {
                        State::Paused { started_ms, speech_end_ms, silence_ms: silence_ms + frame_ms, run_ms: run }
                    }
                } else {
                    let silence = silence_ms + frame_ms;
                    if silence >= c.max_pause_ms as u64 {
                        out.push(TurnSignal::TurnEnded { speech_end_ms, by: EndBy::Timeout });
                        State::Idle { run_ms: 0 }
                    } else {
                        State::Paused { started_ms, speech_end_ms, silence_ms: silence, run_ms: 0 }
                    }
                }
            }
        };
        if let State::Speaking { started_ms, last_speech_ms, .. } = self.state {
            if !self.sustained_sent && last_speech_ms - started_ms >= c.min_barge_in_ms as u64 {
                self.sustained_sent = true;
                out.push(TurnSignal::SpeechSustained { at_ms: now });
            }
        }
        out
    }

    /// A transcript of the speech so far that reads as finished (see [`reads_complete`]): ends a
    /// pause still waiting (the model was unsure or has not answered). Outside a pause it
    /// changes nothing.
    pub fn on_transcript_complete(&mut self) -> Option<TurnSignal> {
        match self.state {
            State::Paused { speech_end_ms, .. } => {
                self.state = State::Idle { run_ms: 0 };
                Some(TurnSignal::TurnEnded { speech_end_ms, by: EndBy::Transcript })
            }
            _ => None,
        }
    }

    /// The end-of-turn model's answer to `Paused { seq }`. Stale answers (speech resumed since)
    /// are ignored.
    pub fn on_prediction(&mut self, seq: u64, complete: bool) -> Option<TurnSignal> {
        match self.state {
            State::Paused { speech_end_ms, .. } if seq == self.pause_seq && complete => {
                self.state = State::Idle { run_ms: 0 };
                Some(TurnSignal::TurnEnded { speech_end_ms, by: EndBy::Model })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: u64 = 32; // Silero frame at 8 kHz

    fn feed(t: &mut TurnTaker, prob: f32, ms: u64) -> Vec<TurnSignal> {
        (0..ms / F).flat_map(|_| t.on_frame(prob, F)).collect()
    }

    #[test]
    fn a_click_is_not_speech() {
        let mut t = TurnTaker::new(TurnConfig::default(), true);
        assert!(feed(&mut t, 0.9, 32).is_empty());
        assert!(feed(&mut t, 0.0, 500).is_empty());
        assert!(!t.in_turn());
    }

    #[test]
    fn model_ends_the_turn_after_a_pause() {
        let mut t = TurnTaker::new(TurnConfig::default(), true);
        let s = feed(&mut t, 0.9, 640);
        assert_eq!(s[0], TurnSignal::SpeechStarted { at_ms: 0 });
        assert!(matches!(s[1], TurnSignal::SpeechSustained { .. }));
        let s = feed(&mut t, 0.1, 512);
        let TurnSignal::Paused { seq, speech_end_ms } = s[0] else { panic!("{s:?}") };
        assert_eq!(speech_end_ms, 640);
        assert_eq!(t.on_prediction(seq, true), Some(TurnSignal::TurnEnded { speech_end_ms: 640, by: EndBy::Model }));
        assert!(!t.in_turn());
    }

    #[test]
    fn a_finished_transcript_ends_a_pause_the_model_was_unsure_of() {
        let mut t = TurnTaker::new(TurnConfig::default(), true);
        feed(&mut t, 0.9, 640);
        assert_eq!(t.on_transcript_complete(), None, "not while speaking");
        let s = feed(&mut t, 0.0, 512);
        let TurnSignal::Paused { seq, speech_end_ms } = s[0] else { panic!("{s:?}") };
        assert_eq!(t.on_prediction(seq, false), None);
        assert_eq!(t.on_transcript_complete(), Some(TurnSignal::TurnEnded { speech_end_ms, by: EndBy::Transcript }));
        assert!(!t.in_turn());
        assert_eq!(t.on_transcript_complete(), None, "once");
    }

    #[test]
    fn transcripts_read_as_finished_or_not() {
        for done in ["My name is Priya Shah.", "What are your opening hours on Saturday?", "Yes, please.", "No, that's all. Goodbye!", "Tomorrow at 3 p.m."] {
            assert!(reads_complete(done), "{done}");
        }
        for not in ["I'd like to book an appointment for.", "My name is", "Tomorrow at three and", "Well, um.", "So I was thinking...", "", "   ", "I want to."] {
            assert!(!reads_complete(not), "{not}");
        }
    }

    #[test]
    fn incomplete_pause_waits_and_resumes() {
        let mut t = TurnTaker::new(TurnConfig::default(), true);
        feed(&mut t, 0.9, 320);
        let s = feed(&mut t, 0.0, 512);
        let TurnSignal::Paused { seq, .. } = s[0] else { panic!() };
        assert_eq!(t.on_prediction(seq, false), None);
        assert_eq!(feed(&mut t, 0.9, 96), vec![TurnSignal::Resumed]);
        // The stale prediction cannot end the new stretch of speech.
        assert_eq!(t.on_prediction(seq, true), None);
        assert!(t.in_turn());
    }

    #[test]
    fn max_pause_ends_the_turn_without_the_model() {
        let mut t = TurnTaker::new(TurnConfig::default(), true);
        feed(&mut t, 0.9, 320);
        let s = feed(&mut t, 0.0, 1300);
        assert!(matches!(s.last(), Some(TurnSignal::TurnEnded { speech_end_ms: 320, by: EndBy::Timeout })), "{s:?}");
    }

    #[test]
    fn no_model_uses_fixed_silence() {
        let mut t = TurnTaker::new(TurnConfig::default(), false);
        feed(&mut t, 0.9, 320);
        assert!(feed(&mut t, 0.0, 640).is_empty());
        assert!(matches!(feed(&mut t, 0.0, 64).as_slice(), [TurnSignal::TurnEnded { by: EndBy::Timeout, .. }]));
    }

    #[test]
    fn hysteresis_keeps_speech_through_dips() {
        let mut t = TurnTaker::new(TurnConfig::default(), true);
        feed(&mut t, 0.9, 128);
        // 0.4 is below start but above stop: still speech.
        assert!(feed(&mut t, 0.4, 640).iter().all(|s| !matches!(s, TurnSignal::Paused { .. })));
    }

    #[test]
    fn short_backchannel_is_never_sustained() {
        let mut t = TurnTaker::new(TurnConfig::default(), true);
        let s = feed(&mut t, 0.9, 192); // "uh-huh"
        assert!(matches!(s.as_slice(), [TurnSignal::SpeechStarted { .. }]));
        let s = feed(&mut t, 0.0, 1400);
        assert!(s.iter().all(|x| !matches!(x, TurnSignal::SpeechSustained { .. })));
    }
}
