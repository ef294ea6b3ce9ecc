//! What every carrier's media WebSocket has in common: a call starts (`CallStart`), caller audio,
//! DTMF and echoed marks arrive, agent audio, marks and `clear` leave. Each carrier supplies a
//! [`MediaCodec`] (its JSON dialect, audio encoding and chunking); [`serve`] runs the socket.

mod serve;

use std::collections::HashMap;

use async_trait::async_trait;
use serde::Serialize;

pub use serve::{serve, StreamError};

use crate::engine::{CallEnd, CarrierIo, CarrierOut};

/// Largest text frame any carrier may send us. Twilio's 20 ms frames are ~300 bytes and
/// Exotel's 100 ms PCM frames ~2.2 KB; 24 kHz Exotel audio stays far below this.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// A media WebSocket's read buffer. tungstenite's default (128 KiB) is zero-filled on the first
/// read, so it is resident for the whole call; a carrier frame is a few hundred bytes, and a
/// larger message still grows the buffer to fit it.
pub const READ_BUFFER_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Carrier {
    Twilio,
    Exotel,
    /// The console's browser calls ([`crate::web`]).
    Web,
}

impl Carrier {
    pub fn as_str(self) -> &'static str {
        match self {
            Carrier::Twilio => "twilio",
            Carrier::Exotel => "exotel",
            Carrier::Web => "web",
        }
    }
}

/// The audio encoding on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WireAudio {
    /// G.711 µ-law.
    Mulaw,
    /// 16-bit signed little-endian PCM.
    Linear16,
}

/// A started media stream, in carrier-neutral terms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallStart {
    pub carrier: Carrier,
    pub account_sid: String,
    pub call_sid: String,
    pub stream_sid: String,
    /// Caller and callee numbers when the carrier sends them (Exotel does; on Twilio they come
    /// back from our own `<Parameter>`s).
    pub from: String,
    pub to: String,
    pub custom_parameters: HashMap<String, String>,
    pub audio: WireAudio,
    pub sample_rate: u32,
}

/// One inbound message, decoded. Audio is PCM16 mono at 8 kHz whatever the wire carried.
#[derive(Debug, Clone, PartialEq)]
pub enum WireIn {
    /// A greeting before `start` (Twilio's and Exotel's `connected`).
    Connected,
    Start(Box<CallStart>),
    Audio(Vec<i16>),
    Dtmf(char),
    Mark(String),
    Stop,
}

impl WireIn {
    pub fn name(&self) -> &'static str {
        match self {
            WireIn::Connected => "connected",
            WireIn::Start(_) => "start",
            WireIn::Audio(_) => "media",
            WireIn::Dtmf(_) => "dtmf",
            WireIn::Mark(_) => "mark",
            WireIn::Stop => "stop",
        }
    }
}

/// Why a stream was ended.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("`{got}` before `start`")]
    BeforeStart { got: &'static str },
    #[error("second `start` on one stream")]
    DuplicateStart,
    #[error("stream id `{got}` does not match this stream's `{expected}`")]
    WrongStream { expected: String, got: String },
    #[error("sequence number {got} after {last}: out of order")]
    OutOfOrder { last: u64, got: u64 },
    #[error("unsupported media format {0}")]
    UnsupportedFormat(String),
    #[error("bad media payload: {0}")]
    BadPayload(String),
    #[error("bad DTMF digit `{0}`")]
    BadDigit(String),
    #[error("more than {0} messages in one second: flood")]
    Flood(u32),
}

/// A carrier's wire dialect.
pub trait MediaCodec: Send + 'static {
    fn carrier(&self) -> Carrier;
    /// Decodes and validates one text frame (order, stream id, sizes, format).
    fn decode(&mut self, text: &str) -> Result<WireIn, ProtocolError>;
    /// Appends the text frames that carry `out` (none while a chunk is still filling).
    fn encode(&mut self, out: &CarrierOut, frames: &mut Vec<String>);
}

/// What the control plane does with a started stream.
#[async_trait]
pub trait CallHandler: Send + Sync {
    /// Runs the call to its end over `io`.
    async fn run(&self, call_id: String, start: CallStart, io: CarrierIo) -> CallEnd;
}

/// A DTMF key as carriers send it: one of 0-9 * # A-D.
pub fn parse_digit(d: &str) -> Result<char, ProtocolError> {
    let mut chars = d.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D') => Ok(c),
        _ => Err(ProtocolError::BadDigit(d.chars().take(8).collect())),
    }
}
