//! Twilio Programmable Voice: request signatures and the Calls API.

pub mod rest;
pub mod signature;
