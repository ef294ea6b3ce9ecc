//! The browser dialect (see the module docs): JSON text frames, PCM16 8 kHz in base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::carrier::{parse_digit, CallStart, Carrier, MediaCodec, ProtocolError, WireAudio, WireIn};
use crate::engine::CarrierOut;

/// At most half a second of audio in one message.
const MAX_SAMPLES: usize = 4000;

#[derive(Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum In {
    Start {
        #[serde(default)]
        call_id: String,
    },
    Media {
        payload: String,
    },
    Mark {
        name: String,
    },
    Dtmf {
        digit: String,
    },
    Stop,
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum Out<'a> {
    Media { payload: String },
    Mark { name: &'a str },
    Clear,
}

#[derive(Default)]
pub struct WebCodec {
    started: bool,
}

impl MediaCodec for WebCodec {
    fn carrier(&self) -> Carrier {
        Carrier::Web
    }

    fn decode(&mut self, text: &str) -> Result<WireIn, ProtocolError> {
        let msg: In = serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string().chars().take(200).collect()))?;
        let got = match &msg {
            In::Start { .. } => "start",
            In::Media { .. } => "media",
            In::Mark { .. } => "mark",
            In::Dtmf { .. } => "dtmf",
            In::Stop => "stop",
        };
        match (&msg, self.started) {
            (In::Start { .. }, true) => return Err(ProtocolError::DuplicateStart),
            (In::Start { .. }, false) => {}
            (_, false) => return Err(ProtocolError::BeforeStart { got }),
            _ => {}
        }
        Ok(match msg {
            In::Start { call_id } => {
                self.started = true;
                WireIn::Start(Box::new(CallStart {
                    carrier: Carrier::Web,
                    account_sid: String::new(),
                    call_sid: call_id.chars().take(64).collect(),
                    stream_sid: String::new(),
                    from: "browser".into(),
                    to: String::new(),
                    custom_parameters: Default::default(),
                    audio: WireAudio::Linear16,
                    sample_rate: 8000,
                }))
            }
            In::Media { payload } => {
                let bytes = B64.decode(payload.as_bytes()).map_err(|e| ProtocolError::BadPayload(e.to_string()))?;
                if bytes.len() % 2 != 0 || bytes.len() / 2 > MAX_SAMPLES {
                    return Err(ProtocolError::BadPayload(format!("{} bytes: PCM16 of at most {MAX_SAMPLES} samples", bytes.len())));
                }
                WireIn::Audio(bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect())
            }
            In::Mark { name } => WireIn::Mark(name),
            In::Dtmf { digit } => WireIn::Dtmf(parse_digit(&digit)?),
            In::Stop => WireIn::Stop,
        })
    }

    fn encode(&mut self, out: &CarrierOut, frames: &mut Vec<String>) {
        let msg = match out {
            CarrierOut::Audio(pcm) => {
                let mut bytes = Vec::with_capacity(pcm.len() * 2);
                for s in pcm {
                    bytes.extend_from_slice(&s.to_le_bytes());
                }
                Out::Media { payload: B64.encode(bytes) }
            }
            CarrierOut::Mark(name) => Out::Mark { name },
            CarrierOut::Clear => Out::Clear,
            CarrierOut::Flush | CarrierOut::Close(_) => return,
        };
        if let Ok(t) = serde_json::to_string(&msg) {
            frames.push(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_browser_frames_and_encodes_agent_audio() {
        let mut c = WebCodec::default();
        assert!(matches!(c.decode(r#"{"event":"media","payload":"AAA="}"#), Err(ProtocolError::BeforeStart { got: "media" })));
        let WireIn::Start(s) = c.decode(r#"{"event":"start","call_id":"w1"}"#).unwrap() else { panic!() };
        assert_eq!((s.carrier, s.call_sid.as_str(), s.audio, s.sample_rate), (Carrier::Web, "w1", WireAudio::Linear16, 8000));
        assert_eq!(c.decode(r#"{"event":"start"}"#), Err(ProtocolError::DuplicateStart));
        // two samples: 1 and -2, little-endian
        assert_eq!(c.decode(r#"{"event":"media","payload":"AQD+/w=="}"#).unwrap(), WireIn::Audio(vec![1, -2]));
        assert!(matches!(c.decode(r#"{"event":"media","payload":"AQD+"}"#), Err(ProtocolError::BadPayload(_))));
        let big = B64.encode(vec![0u8; 2 * (MAX_SAMPLES + 1)]);
        assert!(matches!(c.decode(&format!(r#"{{"event":"media","payload":"{big}"}}"#)), Err(ProtocolError::BadPayload(_))));
        assert_eq!(c.decode(r#"{"event":"mark","name":"m3"}"#).unwrap(), WireIn::Mark("m3".into()));
        assert_eq!(c.decode(r##"{"event":"dtmf","digit":"#"}"##).unwrap(), WireIn::Dtmf('#'));
        assert!(matches!(c.decode(r#"{"event":"dtmf","digit":"x"}"#), Err(ProtocolError::BadDigit(_))));
        assert!(matches!(c.decode(r#"{"event":"shout"}"#), Err(ProtocolError::Malformed(_))));
        assert_eq!(c.decode(r#"{"event":"stop"}"#).unwrap(), WireIn::Stop);
        let mut frames = Vec::new();
        c.encode(&CarrierOut::Audio(vec![1, -2]), &mut frames);
        c.encode(&CarrierOut::Mark("m4".into()), &mut frames);
        c.encode(&CarrierOut::Clear, &mut frames);
        c.encode(&CarrierOut::Flush, &mut frames);
        assert_eq!(frames, [r#"{"event":"media","payload":"AQD+/w=="}"#, r#"{"event":"mark","name":"m4"}"#, r#"{"event":"clear"}"#]);
    }
}
