//! Agent files: `AGENTS_DIR/AGENT_ID.toml` holds either a rule-book (offline brain) or an LLM
//! agent (`system_prompt`, tools, model), plus an optional `[profile]` table: voice, language
//! and provider chains for this agent.

use std::path::Path;

use callfunnel_ai::cloud::anthropic::LlmAgent;
use callfunnel_ai::rulebook::RuleBook;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentProfile {
    pub voice: Option<String>,
    /// BCP-47, e.g. `en-US`, `hi-IN`.
    pub language: Option<String>,
    /// STT / TTS failover chains for this agent (override `[providers]`).
    pub stt: Option<Vec<String>>,
    pub tts: Option<Vec<String>>,
    /// What to do when an outbound call reaches voicemail.
    pub voicemail: Option<callfunnel_media::engine::VoicemailAction>,
}

pub enum AgentBrain {
    RuleBook(Box<RuleBook>),
    Llm(Box<LlmAgent>),
}

pub struct AgentFile {
    pub profile: AgentProfile,
    pub brain: AgentBrain,
}

impl AgentFile {
    pub fn load(path: &Path) -> anyhow::Result<AgentFile> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read agent file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("agent file {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<AgentFile> {
        let mut table: toml::Table = text.parse().map_err(|e| anyhow::anyhow!("invalid TOML: {e}"))?;
        let profile = match table.remove("profile") {
            Some(v) => AgentProfile::deserialize(v).map_err(|e| anyhow::anyhow!("[profile]: {e}"))?,
            None => AgentProfile::default(),
        };
        let brain = if table.contains_key("system_prompt") {
            AgentBrain::Llm(Box::new(LlmAgent::deserialize(toml::Value::Table(table)).map_err(|e| anyhow::anyhow!("LLM agent: {e}"))?))
        } else {
            AgentBrain::RuleBook(Box::new(RuleBook::from_toml_str(&toml::to_string(&table)?)?))
        };
        Ok(AgentFile { profile, brain })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llm_agent_with_profile() {
        let a = AgentFile::parse(
            "system_prompt = \"You are a clinic receptionist.\"\ngreeting = \"Hello!\"\n[profile]\nlanguage = \"hi-IN\"\nstt = [\"sarvam\"]\n[[tool]]\nkind = \"end_call\"\n",
        )
        .unwrap();
        assert_eq!(a.profile.language.as_deref(), Some("hi-IN"));
        let AgentBrain::Llm(l) = a.brain else { panic!("not an LLM agent") };
        assert_eq!(l.model, "claude-haiku-4-5");
        assert_eq!(l.tools.len(), 1);
    }

    #[test]
    fn rulebook_agents_still_parse_and_errors_are_clear() {
        let a = AgentFile::parse(include_str!("../../../agents/clinic.toml")).unwrap();
        assert!(matches!(a.brain, AgentBrain::RuleBook(_)));
        let e = AgentFile::parse("system_prompt = \"x\"\nmodle = \"typo\"\n").err().unwrap().to_string();
        assert!(e.contains("modle"), "{e}");
        let e = AgentFile::parse("[profile]\nvoise = \"x\"\n").err().unwrap().to_string();
        assert!(e.contains("voise"), "{e}");
    }
}
