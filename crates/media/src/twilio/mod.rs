//! Twilio Programmable Voice + Media Streams.

pub mod protocol;
pub mod transport;
pub mod twiml;
