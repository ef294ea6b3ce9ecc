//! Control store: tenants, users, agents (versioned), numbers, knowledge bases, campaigns, API keys and billing. PostgreSQL in production, SQLite embedded.
