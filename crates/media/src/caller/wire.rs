//! The simulated caller's side of each carrier's protocol: Twilio (camelCase, µ-law, 20 ms
//! frames) or Exotel (snake_case, 16-bit PCM or µ-law, 100 ms frames), at 8 kHz.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::json;

use crate::dsp::g711;
use crate::twilio::protocol;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerCarrier {
    Twilio,
    /// Exotel with 16-bit PCM (`mulaw: false`, the default) or µ-law.
    Exotel { mulaw: bool },
}

impl CallerCarrier {
    /// Caller audio per media message.
    pub fn frame_ms(self) -> u64 {
        match self {
            CallerCarrier::Twilio => 20,
            CallerCarrier::Exotel { .. } => 100,
        }
    }
}

/// What the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMsg {
    Media(Vec<i16>),
    Mark(String),
    Clear,
}

pub struct Wire {
    carrier: CallerCarrier,
    pub call_sid: String,
    pub stream_sid: String,
    account_sid: String,
    seq: u64,
    chunk: u64,
}

impl Wire {
    pub fn new(carrier: CallerCarrier, call_sid: String, stream_sid: String, account_sid: String) -> Self {
        Wire { carrier, call_sid, stream_sid, account_sid, seq: 0, chunk: 0 }
    }

    fn next(&mut self) -> String {
        self.seq += 1;
        self.seq.to_string()
    }

    pub fn connected(&self) -> String {
        match self.carrier {
            CallerCarrier::Twilio => json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
            CallerCarrier::Exotel { .. } => json!({"event": "connected"}),
        }
        .to_string()
    }

    pub fn start(&mut self, from: &str, to: &str, params: &HashMap<String, String>) -> String {
        let seq = self.next();
        match self.carrier {
            CallerCarrier::Twilio => json!({"event": "start", "sequenceNumber": seq, "streamSid": self.stream_sid, "start": {
                "accountSid": self.account_sid, "streamSid": self.stream_sid, "callSid": self.call_sid, "tracks": ["inbound"],
                "customParameters": params, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}),
            CallerCarrier::Exotel { mulaw } => json!({"event": "start", "sequence_number": seq, "stream_sid": self.stream_sid, "start": {
                "stream_sid": self.stream_sid, "call_sid": self.call_sid, "account_sid": self.account_sid, "from": from, "to": to,
                "custom_parameters": params,
                "media_format": if mulaw { json!({"encoding": "audio/x-mulaw", "sample_rate": "8000", "bit_rate": "8"}) }
                                else { json!({"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"}) }}}),
        }
        .to_string()
    }

    /// One media message of caller audio (8 kHz PCM16) that started at `timestamp_ms`.
    pub fn media(&mut self, pcm: &[i16], timestamp_ms: u64) -> String {
        let seq = self.next();
        self.chunk += 1;
        match self.carrier {
            CallerCarrier::Twilio => json!({"event": "media", "sequenceNumber": seq, "streamSid": self.stream_sid, "media": {
                "track": "inbound", "chunk": self.chunk.to_string(), "timestamp": timestamp_ms.to_string(),
                "payload": protocol::encode_payload(&g711::mulaw_encode_all(pcm))}}),
            CallerCarrier::Exotel { mulaw } => {
                let bytes: Vec<u8> = if mulaw { g711::mulaw_encode_all(pcm) } else { pcm.iter().flat_map(|s| s.to_le_bytes()).collect() };
                json!({"event": "media", "sequence_number": seq, "stream_sid": self.stream_sid, "media": {
                    "chunk": self.chunk.to_string(), "timestamp": timestamp_ms.to_string(),
                    "payload": base64::engine::general_purpose::STANDARD.encode(bytes)}})
            }
        }
        .to_string()
    }

    pub fn dtmf(&mut self, digit: char) -> String {
        let seq = self.next();
        match self.carrier {
            CallerCarrier::Twilio => json!({"event": "dtmf", "sequenceNumber": seq, "streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": digit.to_string()}}),
            CallerCarrier::Exotel { .. } => json!({"event": "dtmf", "sequence_number": seq, "stream_sid": self.stream_sid, "dtmf": {"digit": digit.to_string(), "duration": "100"}}),
        }
        .to_string()
    }

    pub fn mark(&mut self, name: &str) -> String {
        let seq = self.next();
        match self.carrier {
            CallerCarrier::Twilio => json!({"event": "mark", "sequenceNumber": seq, "streamSid": self.stream_sid, "mark": {"name": name}}),
            CallerCarrier::Exotel { .. } => json!({"event": "mark", "sequence_number": seq, "stream_sid": self.stream_sid, "mark": {"name": name}}),
        }
        .to_string()
    }

    pub fn stop(&mut self) -> String {
        let seq = self.next();
        match self.carrier {
            CallerCarrier::Twilio => json!({"event": "stop", "sequenceNumber": seq, "streamSid": self.stream_sid, "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}}),
            CallerCarrier::Exotel { .. } => json!({"event": "stop", "sequence_number": seq, "stream_sid": self.stream_sid, "stop": {"call_sid": self.call_sid, "account_sid": self.account_sid, "reason": "callended"}}),
        }
        .to_string()
    }

    /// Parses what the server sent, checking it is in this carrier's dialect.
    pub fn parse(&self, text: &str) -> Result<ServerMsg, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("bad message from server: {e}"))?;
        let sid_key = match self.carrier {
            CallerCarrier::Twilio => "streamSid",
            CallerCarrier::Exotel { .. } => "stream_sid",
        };
        if v[sid_key].as_str() != Some(self.stream_sid.as_str()) {
            return Err(format!("server message without this stream's `{sid_key}`: {}", text.chars().take(200).collect::<String>()));
        }
        match v["event"].as_str() {
            Some("media") => {
                let payload = v["media"]["payload"].as_str().ok_or("media without payload")?;
                let bytes = base64::engine::general_purpose::STANDARD.decode(payload).map_err(|e| e.to_string())?;
                Ok(ServerMsg::Media(match self.carrier {
                    CallerCarrier::Twilio | CallerCarrier::Exotel { mulaw: true } => g711::mulaw_decode_all(&bytes),
                    CallerCarrier::Exotel { mulaw: false } => {
                        if bytes.len() % 320 != 0 || bytes.len() < 3200 || bytes.len() > 100 * 1024 {
                            return Err(format!("Exotel media chunk of {} bytes breaks the 3.2 KB/320-byte/100 KB rule", bytes.len()));
                        }
                        bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
                    }
                }))
            }
            Some("mark") => Ok(ServerMsg::Mark(v["mark"]["name"].as_str().unwrap_or_default().to_string())),
            Some("clear") => Ok(ServerMsg::Clear),
            other => Err(format!("unexpected event {other:?} from server")),
        }
    }
}
