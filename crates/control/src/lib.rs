//! Control plane: configuration, provider wiring, the HTTP/WebSocket server and its API.

pub mod calls;
pub mod config;
pub mod http;
pub mod providers;

pub use config::Config;
pub use http::{AppState, Server};
