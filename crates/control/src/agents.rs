//! Agent files: `AGENTS_DIR/AGENT_ID.toml` holds either a rule-book (offline brain) or an LLM
//! agent (`system_prompt`, tools, model), plus an optional `[profile]` table: voice, language
//! and provider chains for this agent, and an optional `[analysis]` table: what post-call
//! analysis extracts and how success is judged.

use std::path::Path;

use callfunnel_ai::cloud::anthropic::LlmAgent;
use callfunnel_ai::analysis::AnalysisSpec;
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
    pub analysis: AnalysisSpec,
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
        let analysis = match table.remove("analysis") {
            Some(v) => AnalysisSpec::deserialize(v).map_err(|e| anyhow::anyhow!("[analysis]: {e}"))?,
            None => AnalysisSpec::default(),
        };
        analysis.validate().map_err(|e| anyhow::anyhow!(e))?;
        let brain = if table.contains_key("system_prompt") {
            AgentBrain::Llm(Box::new(LlmAgent::deserialize(toml::Value::Table(table)).map_err(|e| anyhow::anyhow!("LLM agent: {e}"))?))
        } else {
            AgentBrain::RuleBook(Box::new(RuleBook::from_toml_str(&toml::to_string(&table)?)?))
        };
        Ok(AgentFile { profile, brain, analysis })
    }

    /// An agent version published through the API: a rule-book (`body` is its TOML) or a
    /// prompt agent (`body` is the system prompt, `tools` its tools). The version's voice,
    /// language and `providers.stt`/`providers.tts` chains override the body's `[profile]`.
    pub fn from_version(v: &callfunnel_data::control::AgentVersionSpec) -> anyhow::Result<AgentFile> {
        use callfunnel_data::control::AgentKind;
        let mut file = match v.kind {
            AgentKind::Rulebook => Self::parse(&v.body)?,
            AgentKind::Prompt => {
                let mut agent = serde_json::json!({"system_prompt": v.body});
                if v.tools.as_array().is_some_and(|t| !t.is_empty()) {
                    agent["tool"] = v.tools.clone();
                }
                if let Some(m) = v.providers.get("model").and_then(|m| m.as_str()) {
                    agent["model"] = m.into();
                }
                Self::parse(&toml::to_string(&agent).map_err(|e| anyhow::anyhow!("prompt agent: {e}"))?)?
            }
        };
        if v.analysis.as_object().is_some_and(|o| !o.is_empty()) {
            let spec = AnalysisSpec::deserialize(&v.analysis).map_err(|e| anyhow::anyhow!("analysis: {e}"))?;
            spec.validate().map_err(|e| anyhow::anyhow!(e))?;
            file.analysis = spec;
        }
        let p = &mut file.profile;
        if !v.voice.is_empty() {
            p.voice = Some(v.voice.clone());
        }
        if !v.language.is_empty() {
            p.language = Some(v.language.clone());
        }
        let chain = |k: &str| v.providers.get(k).and_then(|c| serde_json::from_value::<Vec<String>>(c.clone()).ok());
        if let Some(c) = chain("stt") {
            p.stt = Some(c);
        }
        if let Some(c) = chain("tts") {
            p.tts = Some(c);
        }
        Ok(file)
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
    fn published_versions_become_agents() {
        use callfunnel_data::control::{AgentKind, AgentVersionSpec};
        let v = AgentVersionSpec { kind: AgentKind::Prompt, body: "You book appointments.".into(), voice: "sonic-en".into(), language: "hi-IN".into(), providers: serde_json::json!({"stt": ["sarvam"], "model": "claude-haiku-4-5"}), tools: serde_json::json!([{"kind": "end_call"}]), analysis: serde_json::json!({"provider": "local", "success": "booked"}) };
        let a = AgentFile::from_version(&v).unwrap();
        assert_eq!((a.profile.voice.as_deref(), a.profile.language.as_deref(), a.profile.stt.clone()), (Some("sonic-en"), Some("hi-IN"), Some(vec!["sarvam".to_string()])));
        let AgentBrain::Llm(l) = a.brain else { panic!("not an LLM agent") };
        assert_eq!((l.system_prompt.as_str(), l.tools.len()), ("You book appointments.", 1));
        assert_eq!((a.analysis.provider.as_deref(), a.analysis.success.as_deref()), (Some("local"), Some("booked")));
        let r = AgentVersionSpec { kind: AgentKind::Rulebook, body: include_str!("../../../agents/clinic.toml").into(), voice: String::new(), language: String::new(), providers: serde_json::json!({}), tools: serde_json::json!([]), analysis: serde_json::json!({}) };
        assert!(matches!(AgentFile::from_version(&r).unwrap().brain, AgentBrain::RuleBook(_)));
        let bad_analysis = AgentVersionSpec { analysis: serde_json::json!({"schema": {"type": "object", "properties": {"x": {"type": 5}}}}), ..r.clone() };
        assert!(AgentFile::from_version(&bad_analysis).err().unwrap().to_string().contains("analysis"));
        let bad = AgentVersionSpec { kind: AgentKind::Rulebook, body: "greeting = 3".into(), ..r };
        assert!(AgentFile::from_version(&bad).is_err());
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
