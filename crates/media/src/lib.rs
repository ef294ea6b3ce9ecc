//! Media plane: telephony transports, codecs, VAD gating, turn-taking, barge-in and the
//! per-call pipeline.

pub mod caller;
pub mod carrier;
pub mod engine;
pub mod exotel;
pub mod testkit;
pub mod twilio;
pub mod web;

pub use callfunnel_media_dsp as dsp;
