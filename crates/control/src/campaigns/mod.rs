//! Outbound campaigns: settings (window, concurrency, retries) and the dialer that runs them.

pub mod dialer;
pub mod settings;

pub use dialer::Dialer;
pub use settings::{CallWindow, CampaignSettings};
