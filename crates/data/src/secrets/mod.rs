//! Secrets: provider keys per tenant. Vault KV v2 in production, an encrypted local file embedded. Never logged.
