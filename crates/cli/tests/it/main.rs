//! Integration tests of the `callfunnel` binary and server (one test binary for the crate).

mod analysis;
mod api;
mod auth;
mod campaign_takeover;
mod cli;
mod console;
mod console_api;
mod control_plane;
mod demo;
mod drain;
mod fleet;
mod knowledge;
mod loadtest;
mod metrics;
mod rulebook;
mod stores;
mod telemetry;
mod telephony;
