//! Twilio Media Streams messages, exactly as Twilio sends and accepts them.
//! Inbound: `connected`, `start`, `media`, `dtmf`, `mark`, `stop`. Outbound: `media`, `mark`, `clear`.

use std::collections::HashMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

pub use crate::carrier::{ProtocolError, MAX_MESSAGE_BYTES};

/// Largest decoded media payload accepted in one message (1 s of 8 kHz µ-law).
pub const MAX_PAYLOAD_BYTES: usize = 8000;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Inbound {
    Connected {
        #[serde(default)]
        protocol: String,
        #[serde(default)]
        version: String,
    },
    Start {
        #[serde(rename = "sequenceNumber")]
        sequence_number: String,
        #[serde(rename = "streamSid")]
        stream_sid: String,
        start: StartInfo,
    },
    Media {
        #[serde(rename = "sequenceNumber")]
        sequence_number: String,
        #[serde(rename = "streamSid")]
        stream_sid: String,
        media: MediaInfo,
    },
    Dtmf {
        #[serde(rename = "sequenceNumber")]
        sequence_number: String,
        #[serde(rename = "streamSid")]
        stream_sid: String,
        dtmf: DtmfInfo,
    },
    Mark {
        #[serde(rename = "sequenceNumber")]
        sequence_number: String,
        #[serde(rename = "streamSid")]
        stream_sid: String,
        mark: MarkInfo,
    },
    Stop {
        #[serde(rename = "sequenceNumber")]
        sequence_number: String,
        #[serde(rename = "streamSid")]
        stream_sid: String,
        #[serde(default)]
        stop: Option<StopInfo>,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartInfo {
    pub account_sid: String,
    pub stream_sid: String,
    pub call_sid: String,
    #[serde(default)]
    pub tracks: Vec<String>,
    #[serde(default)]
    pub custom_parameters: HashMap<String, String>,
    pub media_format: MediaFormat,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    pub encoding: String,
    pub sample_rate: u32,
    pub channels: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct MediaInfo {
    #[serde(default)]
    pub track: String,
    #[serde(default)]
    pub chunk: String,
    #[serde(default)]
    pub timestamp: String,
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct DtmfInfo {
    #[serde(default)]
    pub track: String,
    pub digit: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct MarkInfo {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopInfo {
    #[serde(default)]
    pub account_sid: String,
    #[serde(default)]
    pub call_sid: String,
}

/// Messages we send to Twilio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Outbound {
    Media {
        #[serde(rename = "streamSid")]
        stream_sid: String,
        media: OutMedia,
    },
    Mark {
        #[serde(rename = "streamSid")]
        stream_sid: String,
        mark: MarkInfo,
    },
    Clear {
        #[serde(rename = "streamSid")]
        stream_sid: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutMedia {
    pub payload: String,
}

impl Inbound {
    pub fn name(&self) -> &'static str {
        match self {
            Inbound::Connected { .. } => "connected",
            Inbound::Start { .. } => "start",
            Inbound::Media { .. } => "media",
            Inbound::Dtmf { .. } => "dtmf",
            Inbound::Mark { .. } => "mark",
            Inbound::Stop { .. } => "stop",
        }
    }

    fn header(&self) -> Option<(&str, &str)> {
        match self {
            Inbound::Connected { .. } => None,
            Inbound::Start { sequence_number, stream_sid, .. }
            | Inbound::Media { sequence_number, stream_sid, .. }
            | Inbound::Dtmf { sequence_number, stream_sid, .. }
            | Inbound::Mark { sequence_number, stream_sid, .. }
            | Inbound::Stop { sequence_number, stream_sid, .. } => Some((sequence_number, stream_sid)),
        }
    }
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Inbound, ProtocolError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge(text.len()));
    }
    serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

/// Decodes a base64 µ-law media payload.
pub fn decode_payload(payload: &str) -> Result<Vec<u8>, ProtocolError> {
    if payload.len() > MAX_PAYLOAD_BYTES * 4 / 3 + 4 {
        return Err(ProtocolError::BadPayload(format!("{} base64 bytes is over the limit", payload.len())));
    }
    base64::engine::general_purpose::STANDARD.decode(payload).map_err(|e| ProtocolError::BadPayload(e.to_string()))
}

pub fn encode_payload(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Enforces the order of a stream: `connected`? → `start` → (`media`|`dtmf`|`mark`)* → `stop`,
/// one streamSid, increasing sequence numbers, µ-law 8 kHz mono.
#[derive(Debug, Default)]
pub struct StreamValidator {
    stream_sid: Option<String>,
    last_seq: u64,
}

impl StreamValidator {
    pub fn stream_sid(&self) -> Option<&str> {
        self.stream_sid.as_deref()
    }

    pub fn check(&mut self, msg: &Inbound) -> Result<(), ProtocolError> {
        let Some((seq, sid)) = msg.header() else { return Ok(()) };
        let seq: u64 = seq.parse().map_err(|_| ProtocolError::Malformed(format!("sequenceNumber `{seq}` is not a number")))?;
        match (msg, &self.stream_sid) {
            (Inbound::Start { start, .. }, None) => {
                let f = &start.media_format;
                if f.encoding != "audio/x-mulaw" || f.sample_rate != 8000 || f.channels != 1 {
                    return Err(ProtocolError::UnsupportedFormat(format!("{} {} Hz x{}", f.encoding, f.sample_rate, f.channels)));
                }
                self.stream_sid = Some(sid.to_string());
            }
            (Inbound::Start { .. }, Some(_)) => return Err(ProtocolError::DuplicateStart),
            (_, None) => return Err(ProtocolError::BeforeStart { got: msg.name() }),
            (_, Some(expected)) if expected != sid => {
                return Err(ProtocolError::WrongStream { expected: expected.clone(), got: sid.to_string() });
            }
            _ => {}
        }
        if seq <= self.last_seq {
            return Err(ProtocolError::OutOfOrder { last: self.last_seq, got: seq });
        }
        self.last_seq = seq;
        if let Inbound::Dtmf { dtmf, .. } = msg {
            crate::carrier::parse_digit(&dtmf.digit)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"customParameters":{"tenant_id":"t1"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#;

    #[test]
    fn parses_every_inbound_kind() {
        assert!(matches!(parse(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#).unwrap(), Inbound::Connected { .. }));
        let Inbound::Start { start, .. } = parse(START).unwrap() else { panic!() };
        assert_eq!(start.custom_parameters["tenant_id"], "t1");
        assert_eq!(start.call_sid, "CA1");
        let m = parse(r#"{"event":"media","sequenceNumber":"2","streamSid":"MZ1","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"//8="}}"#).unwrap();
        let Inbound::Media { media, .. } = m else { panic!() };
        assert_eq!(decode_payload(&media.payload).unwrap(), vec![0xFF, 0xFF]);
        assert!(matches!(parse(r#"{"event":"dtmf","sequenceNumber":"3","streamSid":"MZ1","dtmf":{"track":"inbound_track","digit":"1"}}"#).unwrap(), Inbound::Dtmf { .. }));
        assert!(matches!(parse(r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"a"}}"#).unwrap(), Inbound::Mark { .. }));
        assert!(matches!(parse(r#"{"event":"stop","sequenceNumber":"5","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}"#).unwrap(), Inbound::Stop { .. }));
    }

    #[test]
    fn outbound_is_twilio_shaped() {
        let m = serde_json::to_value(Outbound::Media { stream_sid: "MZ1".into(), media: OutMedia { payload: "AA==".into() } }).unwrap();
        assert_eq!(m, serde_json::json!({"event":"media","streamSid":"MZ1","media":{"payload":"AA=="}}));
        let c = serde_json::to_value(Outbound::Clear { stream_sid: "MZ1".into() }).unwrap();
        assert_eq!(c, serde_json::json!({"event":"clear","streamSid":"MZ1"}));
        let k = serde_json::to_value(Outbound::Mark { stream_sid: "MZ1".into(), mark: MarkInfo { name: "x".into() } }).unwrap();
        assert_eq!(k, serde_json::json!({"event":"mark","streamSid":"MZ1","mark":{"name":"x"}}));
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in ["", "nope", "{}", r#"{"event":"media"}"#, r#"{"event":"teleport","sequenceNumber":"1"}"#, r#"{"event":"media","sequenceNumber":"2","streamSid":"MZ1","media":{}}"#] {
            assert!(matches!(parse(bad), Err(ProtocolError::Malformed(_))), "{bad}");
        }
        assert!(matches!(parse(&"x".repeat(MAX_MESSAGE_BYTES + 1)), Err(ProtocolError::TooLarge(_))));
        assert!(matches!(decode_payload("not base64!"), Err(ProtocolError::BadPayload(_))));
        assert!(matches!(decode_payload(&"A".repeat(20_000)), Err(ProtocolError::BadPayload(_))));
    }

    fn media(seq: u64, sid: &str) -> Inbound {
        Inbound::Media { sequence_number: seq.to_string(), stream_sid: sid.into(), media: MediaInfo { track: "inbound".into(), chunk: "1".into(), timestamp: "0".into(), payload: String::new() } }
    }

    #[test]
    fn validator_enforces_order_and_identity() {
        let mut v = StreamValidator::default();
        assert_eq!(v.check(&media(1, "MZ1")), Err(ProtocolError::BeforeStart { got: "media" }));
        let start = parse(START).unwrap();
        v.check(&start).unwrap();
        assert_eq!(v.check(&start), Err(ProtocolError::DuplicateStart));
        v.check(&media(2, "MZ1")).unwrap();
        assert!(matches!(v.check(&media(2, "MZ1")), Err(ProtocolError::OutOfOrder { last: 2, got: 2 })));
        assert!(matches!(v.check(&media(3, "MZ9")), Err(ProtocolError::WrongStream { .. })));
        let dtmf = |d: &str| Inbound::Dtmf { sequence_number: "9".into(), stream_sid: "MZ1".into(), dtmf: DtmfInfo { track: String::new(), digit: d.into() } };
        assert!(matches!(v.check(&dtmf("12")), Err(ProtocolError::BadDigit(_))));
        let mut v2 = StreamValidator::default();
        let wrong = START.replace("audio/x-mulaw", "audio/x-l16");
        assert!(matches!(v2.check(&parse(&wrong).unwrap()), Err(ProtocolError::UnsupportedFormat(_))));
    }
}
