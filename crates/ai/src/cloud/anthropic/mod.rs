//! Anthropic Claude as the call brain: Messages API with `stream: true`, tool calls assembled
//! per content block, prompt caching, retries and a fallback model.

pub mod brain;
pub mod client;
pub mod complete;
pub mod stream;
pub mod tools;
pub mod wire;

pub use brain::{ClaudeBrain, LlmAgent};
pub use client::{AnthropicClient, ClientError};
pub use complete::{CompleteError, Completion};
pub use tools::ToolSpec;
