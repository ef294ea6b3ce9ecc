//! Exotel Voicebot applet (bidirectional AgentStream).

pub mod codec;
pub mod protocol;

pub use codec::ExotelCodec;
