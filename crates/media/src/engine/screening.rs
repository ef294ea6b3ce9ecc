//! Outbound-call screening: did a person or a voicemail answer? Two opinions are combined: the
//! carrier's answering-machine detection (Twilio `AnsweredBy`) and an on-box check — a person
//! says a short "hello?" and waits, a voicemail greeting is a long monologue that ends in a
//! beep. A voicemail gets the agent's message after the beep (or a hang-up); a person gets the
//! agent's greeting.

use serde::{Deserialize, Serialize};
use tokio::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum VoicemailAction {
    /// Speak `message` after the beep, then hang up.
    LeaveMessage { message: String },
    /// Hang up without a message.
    Hangup,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScreeningConfig {
    pub voicemail: VoicemailAction,
    /// Speech spanning this long from its first word is a recorded greeting, not a person.
    pub monologue_ms: u32,
    /// A short greeting followed by this much silence is a person waiting for us.
    pub human_silence_ms: u32,
    /// Nobody spoke this long after answering: greet anyway.
    pub no_speech_ms: u32,
    /// After a greeting ends, wait this long for its beep before leaving the message.
    pub beep_wait_ms: u32,
}

impl Default for ScreeningConfig {
    fn default() -> Self {
        ScreeningConfig { voicemail: VoicemailAction::Hangup, monologue_ms: 3500, human_silence_ms: 600, no_speech_ms: 4000, beep_wait_ms: 2500 }
    }
}

/// What to do, and what decided it (for the timeline).
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Human { by: &'static str },
    Voicemail { by: &'static str },
    /// A fax machine: nothing to say to it.
    Fax,
}

#[derive(Debug)]
pub struct Screener {
    cfg: ScreeningConfig,
    answered: Instant,
    /// When the callee first spoke; speech spans are measured from here.
    first_speech: Option<Instant>,
    speaking: bool,
    machine: bool,
    /// A short greeting ended here; a person if silence follows.
    human_candidate: Option<Instant>,
    greeting_over: Option<Instant>,
}

fn ms(v: u32) -> Duration {
    Duration::from_millis(v as u64)
}

impl Screener {
    pub fn new(cfg: ScreeningConfig, now: Instant) -> Self {
        Screener { cfg, answered: now, first_speech: None, speaking: false, machine: false, human_candidate: None, greeting_over: None }
    }

    pub fn config(&self) -> &ScreeningConfig {
        &self.cfg
    }

    /// The callee is a machine (but its greeting may still be playing).
    pub fn is_machine(&self) -> bool {
        self.machine
    }

    pub fn on_speech_started(&mut self, now: Instant) {
        self.first_speech.get_or_insert(now);
        self.speaking = true;
        self.human_candidate = None;
        self.greeting_over = None;
    }

    /// The callee's turn ended (a pause after speech).
    pub fn on_turn_ended(&mut self, now: Instant) -> Option<Verdict> {
        self.speaking = false;
        let span = self.first_speech.map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        if self.machine || span >= ms(self.cfg.monologue_ms) {
            self.machine = true;
            self.greeting_over = Some(now);
        } else {
            self.human_candidate = Some(now);
        }
        None
    }

    pub fn on_beep(&mut self) -> Option<Verdict> {
        // A beep only means voicemail once we have heard a greeting (or the carrier said so).
        (self.machine || self.first_speech.is_some()).then_some(Verdict::Voicemail { by: "beep" })
    }

    /// A carrier AMD result (Twilio's `AnsweredBy` values).
    pub fn on_answered_by(&mut self, answered_by: &str) -> Option<Verdict> {
        match answered_by {
            "human" => Some(Verdict::Human { by: "carrier_amd" }),
            "machine_end_beep" | "machine_end_silence" | "machine_end_other" => Some(Verdict::Voicemail { by: "carrier_amd" }),
            "machine_start" => {
                self.machine = true;
                self.human_candidate = None;
                None
            }
            "fax" => Some(Verdict::Fax),
            _ => None,
        }
    }

    /// Decisions that come from time passing.
    pub fn on_tick(&mut self, now: Instant) -> Option<Verdict> {
        if let (true, Some(t)) = (self.speaking, self.first_speech) {
            if now.saturating_duration_since(t) >= ms(self.cfg.monologue_ms) {
                self.machine = true;
            }
        }
        if let Some(t) = self.human_candidate {
            if now.saturating_duration_since(t) >= ms(self.cfg.human_silence_ms) {
                return Some(Verdict::Human { by: "short_greeting" });
            }
        }
        if let Some(t) = self.greeting_over {
            if now.saturating_duration_since(t) >= ms(self.cfg.beep_wait_ms) {
                return Some(Verdict::Voicemail { by: "greeting_ended" });
            }
        }
        if self.first_speech.is_none() && !self.machine && now.saturating_duration_since(self.answered) >= ms(self.cfg.no_speech_ms) {
            return Some(Verdict::Human { by: "silence" });
        }
        None
    }

    /// When [`Screener::on_tick`] should next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.first_speech.filter(|_| self.speaking && !self.machine).map(|t| t + ms(self.cfg.monologue_ms)),
            self.human_candidate.map(|t| t + ms(self.cfg.human_silence_ms)),
            self.greeting_over.map(|t| t + ms(self.cfg.beep_wait_ms)),
            (self.first_speech.is_none() && !self.machine).then(|| self.answered + ms(self.cfg.no_speech_ms)),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn a_short_hello_is_a_person() {
        let t0 = Instant::now();
        let mut s = Screener::new(ScreeningConfig::default(), t0);
        s.on_speech_started(at(t0, 300));
        assert_eq!(s.on_tick(at(t0, 1200)), None);
        assert_eq!(s.on_turn_ended(at(t0, 1900)), None);
        assert_eq!(s.next_deadline(), Some(at(t0, 2500)));
        assert_eq!(s.on_tick(at(t0, 2500)), Some(Verdict::Human { by: "short_greeting" }));
    }

    #[test]
    fn a_greeting_with_pauses_is_still_one_monologue() {
        let t0 = Instant::now();
        let mut s = Screener::new(ScreeningConfig::default(), t0);
        s.on_speech_started(at(t0, 200));
        assert_eq!(s.on_turn_ended(at(t0, 2000)), None, "\"Hi, you've reached Sam.\"");
        s.on_speech_started(at(t0, 2300));
        assert_eq!(s.on_tick(at(t0, 2700)), None, "speech resumed: not a person yet");
        assert_eq!(s.on_tick(at(t0, 3800)), None);
        assert!(s.is_machine());
        assert_eq!(s.on_turn_ended(at(t0, 6000)), None);
        assert_eq!(s.on_beep(), Some(Verdict::Voicemail { by: "beep" }));
    }

    #[test]
    fn a_long_greeting_then_beep_is_voicemail() {
        let t0 = Instant::now();
        let mut s = Screener::new(ScreeningConfig::default(), t0);
        s.on_speech_started(at(t0, 200));
        assert_eq!(s.next_deadline(), Some(at(t0, 3700)));
        assert_eq!(s.on_tick(at(t0, 3800)), None);
        assert!(s.is_machine());
        assert_eq!(s.on_turn_ended(at(t0, 6000)), None);
        assert_eq!(s.on_beep(), Some(Verdict::Voicemail { by: "beep" }));
    }

    #[test]
    fn a_greeting_without_a_beep_gets_the_message_after_a_wait() {
        let t0 = Instant::now();
        let mut s = Screener::new(ScreeningConfig::default(), t0);
        s.on_speech_started(at(t0, 100));
        assert_eq!(s.on_turn_ended(at(t0, 5000)), None);
        assert_eq!(s.on_tick(at(t0, 6000)), None);
        assert_eq!(s.on_tick(at(t0, 7600)), Some(Verdict::Voicemail { by: "greeting_ended" }));
    }

    #[test]
    fn silence_means_greet_and_carrier_amd_decides_too() {
        let t0 = Instant::now();
        let mut s = Screener::new(ScreeningConfig::default(), t0);
        assert_eq!(s.on_tick(at(t0, 4100)), Some(Verdict::Human { by: "silence" }));
        let mut s = Screener::new(ScreeningConfig::default(), t0);
        assert_eq!(s.on_answered_by("machine_start"), None);
        assert!(s.is_machine());
        assert_eq!(s.on_tick(at(t0, 9000)), None, "a machine is never greeted for silence");
        assert_eq!(s.on_answered_by("machine_end_beep"), Some(Verdict::Voicemail { by: "carrier_amd" }));
        assert_eq!(Screener::new(ScreeningConfig::default(), t0).on_answered_by("fax"), Some(Verdict::Fax));
        assert_eq!(Screener::new(ScreeningConfig::default(), t0).on_beep(), None, "a beep before any greeting proves nothing");
    }
}
