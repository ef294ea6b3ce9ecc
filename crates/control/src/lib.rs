//! Control plane: configuration, provider wiring, the HTTP/WebSocket server and its API.

pub mod admission;
pub mod analysis;
pub mod agents;
pub mod api;
pub mod auth;
pub mod call_data;
pub mod calls;
pub mod campaigns;
pub mod carriers;
pub mod config;
pub mod http;
pub mod knowledge;
pub mod live;
pub mod live_fleet;
pub mod node_bus;
pub mod provider_config;
pub mod providers;
pub mod routing;
pub mod store_secrets;
pub mod stores;
pub mod stores_config;
pub mod telemetry;
pub mod telephony_config;
pub mod tool_net;
pub mod tools_config;
pub mod webhooks;

pub use config::Config;
pub use http::{AppState, Server};
