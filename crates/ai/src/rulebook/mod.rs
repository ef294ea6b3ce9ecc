//! The deterministic rule-book brain.
