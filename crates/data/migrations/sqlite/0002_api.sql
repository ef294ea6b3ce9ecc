-- Public API: plan provider lists, webhooks and their deliveries, idempotency keys, dialer
-- state on campaign contacts. Keep in step with ../postgres/0002_api.sql (same tables, same columns).

-- JSON array of provider names; NULL = any provider.
ALTER TABLE tenants ADD COLUMN allowed_providers TEXT;

CREATE TABLE webhooks (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    id TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- No foreign key to webhooks: the log outlives a deleted endpoint.
CREATE TABLE webhook_deliveries (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    response_status INTEGER,
    next_attempt_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (tenant_id, created_at);

-- status/body are NULL while the first request runs.
CREATE TABLE idempotency_keys (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    idem_key TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, idem_key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (tenant_id, created_at);

ALTER TABLE campaign_contacts ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaign_contacts ADD COLUMN last_outcome TEXT;
ALTER TABLE campaign_contacts ADD COLUMN last_call_id TEXT;
CREATE INDEX campaigns_running ON campaigns (status);
