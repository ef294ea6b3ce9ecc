-- Control store schema. Keep in step with ../sqlite/0001_init.sql (same tables, same columns).
-- Timestamps are unix milliseconds (BIGINT); money is integer micro-units; JSON is stored as TEXT.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    max_concurrent_calls BIGINT,
    monthly_minutes BIGINT,
    retention_days BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A number belongs to one tenant globally (primary key on the number alone).
CREATE TABLE phone_numbers (
    number TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    agent_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX phone_numbers_tenant ON phone_numbers (tenant_id);

CREATE TABLE usage_records (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    idempotency_key TEXT NOT NULL,
    call_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    provider TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, idempotency_key)
);
CREATE INDEX usage_records_time ON usage_records (tenant_id, at_ms);

-- tenant_id '' is the default price list (real tenant ids are never empty).
CREATE TABLE prices (
    tenant_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    provider TEXT NOT NULL,
    micros_per_1000_units BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, metric, provider)
);

-- Issued invoices are immutable: one per tenant and period.
CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    period TEXT NOT NULL,
    lines TEXT NOT NULL,
    total_micros BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    UNIQUE (tenant_id, period)
);

CREATE TABLE agents (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    latest_version INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE agent_versions (
    tenant_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    voice TEXT NOT NULL,
    language TEXT NOT NULL,
    providers TEXT NOT NULL,
    tools TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, agent_id, version),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents(tenant_id, id)
);

-- Only the SHA-256 (hex) of the whole plaintext key is stored; id is the public prefix.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    key_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE users (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    subject TEXT NOT NULL,
    email TEXT NOT NULL,
    roles TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, subject)
);

CREATE TABLE knowledge_bases (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    embed_model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE documents (
    tenant_id TEXT NOT NULL,
    kb_id TEXT NOT NULL,
    id TEXT NOT NULL,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kb_id, id),
    FOREIGN KEY (tenant_id, kb_id) REFERENCES knowledge_bases(tenant_id, id)
);

CREATE TABLE campaigns (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    name TEXT NOT NULL,
    dial_window TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE campaign_contacts (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    number TEXT NOT NULL,
    vars TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaigns(tenant_id, id)
);
CREATE INDEX campaign_contacts_next ON campaign_contacts (tenant_id, campaign_id, status, id);
