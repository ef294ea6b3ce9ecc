//! Exotel Voicebot applet messages (snake_case), as Exotel sends and accepts them.
//! Inbound: `connected`, `start`, `media`, `dtmf`, `mark`, `stop`. Outbound: `media`, `mark`, `clear`.
//! Exotel's own docs and SDK-less integrations disagree on whether numbers are strings, so every
//! numeric field accepts both.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::carrier::{ProtocolError, WireAudio, MAX_MESSAGE_BYTES};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Inbound {
    Connected {},
    Start {
        #[serde(default, deserialize_with = "num_or_str")]
        sequence_number: Option<u64>,
        #[serde(default)]
        stream_sid: String,
        start: StartInfo,
    },
    Media {
        #[serde(default, deserialize_with = "num_or_str")]
        sequence_number: Option<u64>,
        #[serde(default)]
        stream_sid: String,
        media: MediaInfo,
    },
    Dtmf {
        #[serde(default, deserialize_with = "num_or_str")]
        sequence_number: Option<u64>,
        #[serde(default)]
        stream_sid: String,
        dtmf: DtmfInfo,
    },
    Mark {
        #[serde(default, deserialize_with = "num_or_str")]
        sequence_number: Option<u64>,
        #[serde(default)]
        stream_sid: String,
        mark: MarkInfo,
    },
    Stop {
        #[serde(default, deserialize_with = "num_or_str")]
        sequence_number: Option<u64>,
        #[serde(default)]
        stream_sid: String,
        #[serde(default)]
        stop: Option<StopInfo>,
    },
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct StartInfo {
    #[serde(default)]
    pub stream_sid: String,
    #[serde(default)]
    pub call_sid: String,
    #[serde(default)]
    pub account_sid: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub custom_parameters: HashMap<String, String>,
    #[serde(default)]
    pub media_format: Option<MediaFormat>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct MediaFormat {
    #[serde(default)]
    pub encoding: String,
    #[serde(default, deserialize_with = "num_or_str")]
    pub sample_rate: Option<u64>,
    #[serde(default, deserialize_with = "num_or_str")]
    pub bit_rate: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct MediaInfo {
    #[serde(default, deserialize_with = "num_or_str")]
    pub chunk: Option<u64>,
    #[serde(default, deserialize_with = "num_or_str")]
    pub timestamp: Option<u64>,
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct DtmfInfo {
    pub digit: String,
    #[serde(default, deserialize_with = "num_or_str")]
    pub duration: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct MarkInfo {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct StopInfo {
    #[serde(default)]
    pub call_sid: String,
    #[serde(default)]
    pub account_sid: String,
    #[serde(default)]
    pub reason: String,
}

/// Messages we send to Exotel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Outbound {
    Media { stream_sid: String, media: OutMedia },
    Mark { stream_sid: String, mark: MarkInfo },
    Clear { stream_sid: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutMedia {
    pub payload: String,
}

fn num_or_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Num(u64),
        Str(String),
        Null,
    }
    match N::deserialize(d)? {
        N::Num(n) => Ok(Some(n)),
        N::Str(s) if s.trim().is_empty() => Ok(None),
        N::Str(s) => s.trim().parse().map(Some).map_err(|_| serde::de::Error::custom(format!("`{s}` is not a number"))),
        N::Null => Ok(None),
    }
}

impl Inbound {
    pub fn name(&self) -> &'static str {
        match self {
            Inbound::Connected {} => "connected",
            Inbound::Start { .. } => "start",
            Inbound::Media { .. } => "media",
            Inbound::Dtmf { .. } => "dtmf",
            Inbound::Mark { .. } => "mark",
            Inbound::Stop { .. } => "stop",
        }
    }

    /// Sequence number and stream id (not on `connected`).
    pub fn header(&self) -> Option<(Option<u64>, &str)> {
        match self {
            Inbound::Connected {} => None,
            Inbound::Start { sequence_number, stream_sid, .. }
            | Inbound::Media { sequence_number, stream_sid, .. }
            | Inbound::Dtmf { sequence_number, stream_sid, .. }
            | Inbound::Mark { sequence_number, stream_sid, .. }
            | Inbound::Stop { sequence_number, stream_sid, .. } => Some((*sequence_number, stream_sid)),
        }
    }
}

pub fn parse(text: &str) -> Result<Inbound, ProtocolError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge(text.len()));
    }
    serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

/// The wire format a `start` announces. Exotel's default is 16-bit PCM at 8 kHz; its newer
/// "extension" mode sends µ-law. `sample_rate` may be 8000, 16000 or 24000.
pub fn media_format(f: Option<&MediaFormat>) -> Result<(WireAudio, u32), ProtocolError> {
    let Some(f) = f else { return Ok((WireAudio::Linear16, 8000)) };
    let enc = f.encoding.to_ascii_lowercase();
    let rate = f.sample_rate.unwrap_or(8000);
    let audio = if enc.is_empty() || enc.contains("raw") || enc.contains("slin") || enc.contains("l16") || enc.contains("pcm") || enc.contains("linear") {
        WireAudio::Linear16
    } else if enc.contains("mulaw") || enc.contains("ulaw") || enc.contains("pcmu") {
        WireAudio::Mulaw
    } else {
        return Err(ProtocolError::UnsupportedFormat(f.encoding.chars().take(40).collect()));
    };
    if !matches!(rate, 8000 | 16000 | 24000) || (audio == WireAudio::Mulaw && rate != 8000) {
        return Err(ProtocolError::UnsupportedFormat(format!("{} at {rate} Hz", f.encoding.chars().take(40).collect::<String>())));
    }
    if let Some(bits) = f.bit_rate {
        if audio == WireAudio::Linear16 && bits != 16 {
            return Err(ProtocolError::UnsupportedFormat(format!("{bits}-bit PCM")));
        }
    }
    Ok((audio, rate as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_inbound_kind_with_strings_or_numbers() {
        assert_eq!(parse(r#"{"event":"connected"}"#).unwrap(), Inbound::Connected {});
        let s = r#"{"event":"start","sequence_number":"1","stream_sid":"S1","start":{"stream_sid":"S1","call_sid":"C1","account_sid":"A1","from":"+9198","to":"+9180","custom_parameters":{"k":"v"},"media_format":{"encoding":"audio/x-raw","sample_rate":"8000","bit_rate":"16"}}}"#;
        let Inbound::Start { start, sequence_number, .. } = parse(s).unwrap() else { panic!() };
        assert_eq!((sequence_number, start.to.as_str()), (Some(1), "+9180"));
        assert_eq!(media_format(start.media_format.as_ref()).unwrap(), (WireAudio::Linear16, 8000));
        let m = parse(r#"{"event":"media","sequence_number":3,"stream_sid":"S1","media":{"chunk":2,"timestamp":"200","payload":"AAA="}}"#).unwrap();
        assert_eq!(m.header(), Some((Some(3), "S1")));
        assert!(matches!(parse(r#"{"event":"dtmf","sequence_number":"7","stream_sid":"S1","dtmf":{"digit":"5","duration":"100"}}"#).unwrap(), Inbound::Dtmf { .. }));
        assert!(matches!(parse(r#"{"event":"stop","sequence_number":"9","stream_sid":"S1","stop":{"call_sid":"C1","account_sid":"A1","reason":"callended"}}"#).unwrap(), Inbound::Stop { .. }));
    }

    #[test]
    fn formats_follow_start() {
        let f = |e: &str, r: u64| MediaFormat { encoding: e.into(), sample_rate: Some(r), bit_rate: None };
        assert_eq!(media_format(Some(&f("audio/x-mulaw", 8000))).unwrap(), (WireAudio::Mulaw, 8000));
        assert_eq!(media_format(Some(&f("audio/L16", 16000))).unwrap(), (WireAudio::Linear16, 16000));
        assert!(media_format(Some(&f("audio/opus", 8000))).is_err());
        assert!(media_format(Some(&f("audio/x-raw", 44100))).is_err());
        assert_eq!(media_format(None).unwrap(), (WireAudio::Linear16, 8000));
    }

    #[test]
    fn outbound_is_snake_case() {
        let m = serde_json::to_value(Outbound::Media { stream_sid: "S1".into(), media: OutMedia { payload: "AA==".into() } }).unwrap();
        assert_eq!(m, serde_json::json!({"event":"media","stream_sid":"S1","media":{"payload":"AA=="}}));
        assert_eq!(serde_json::to_value(Outbound::Clear { stream_sid: "S1".into() }).unwrap(), serde_json::json!({"event":"clear","stream_sid":"S1"}));
    }
}
