//! Twilio Programmable Voice + Media Streams.

pub mod codec;
pub mod protocol;
pub mod twiml;

pub use codec::TwilioCodec;
