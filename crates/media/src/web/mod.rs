//! The browser transport: the console's "talk to this agent" page streams the microphone into
//! the same call engine as a phone call. A small JSON dialect over a WebSocket, in the image of
//! the carriers' (so the same [`crate::carrier::serve`] runs it):
//!
//! - browser → server: `{"event":"start","call_id":…}` once, then
//!   `{"event":"media","payload":BASE64}` (PCM16 little-endian, mono, 8 kHz, ideally 20 ms),
//!   `{"event":"mark","name":…}` when the agent audio before that mark has played,
//!   `{"event":"dtmf","digit":"5"}` and `{"event":"stop"}`;
//! - server → browser: `{"event":"media","payload":BASE64}` (same format),
//!   `{"event":"mark","name":…}` and `{"event":"clear"}` (stop playing at once; echo the
//!   marks not yet reached).
//!
//! Who the call is for (tenant, agent) comes from the plan the API made when the page asked
//! for the call, never from the stream.

pub mod codec;

pub use codec::WebCodec;
