//! Webhook endpoints and their delivery log, written once for both backends (`$N`
//! placeholders). Deliveries have no foreign key to their webhook: the log outlives a deleted
//! endpoint (deleting one fails its pending deliveries).

macro_rules! sql_webhooks {
    ($store:ty, $row:ty, $name:literal) => {
        impl $store {
            fn webhook_row(r: &$row) -> $crate::Result<$crate::control::Webhook> {
                use sqlx::Row;
                let e = |e| $crate::DataError::backend($name, e);
                let events: String = r.try_get("events").map_err(e)?;
                Ok($crate::control::Webhook {
                    id: r.try_get("id").map_err(e)?,
                    tenant_id: r.try_get("tenant_id").map_err(e)?,
                    url: r.try_get("url").map_err(e)?,
                    events: $crate::control::validate::from_json($name, &events)?,
                    secret: r.try_get("secret").map_err(e)?,
                    created_at: r.try_get("created_at").map_err(e)?,
                })
            }

            fn delivery_row(r: &$row) -> $crate::Result<$crate::control::WebhookDelivery> {
                use sqlx::Row;
                let e = |e| $crate::DataError::backend($name, e);
                let status: String = r.try_get("status").map_err(e)?;
                Ok($crate::control::WebhookDelivery {
                    id: r.try_get("id").map_err(e)?,
                    tenant_id: r.try_get("tenant_id").map_err(e)?,
                    webhook_id: r.try_get("webhook_id").map_err(e)?,
                    event: r.try_get("event").map_err(e)?,
                    payload: r.try_get("payload").map_err(e)?,
                    status: $crate::control::DeliveryStatus::parse(&status)?,
                    attempts: r.try_get("attempts").map_err(e)?,
                    last_error: r.try_get("last_error").map_err(e)?,
                    response_status: r.try_get("response_status").map_err(e)?,
                    next_attempt_at: r.try_get("next_attempt_at").map_err(e)?,
                    created_at: r.try_get("created_at").map_err(e)?,
                    updated_at: r.try_get("updated_at").map_err(e)?,
                })
            }

            /// Id `wh_` + 20 random letters and digits.
            async fn create_webhook(&self, tenant_id: &str, w: $crate::control::NewWebhook) -> $crate::Result<$crate::control::Webhook> {
                use $crate::control::{keys, validate as v};
                v::id(tenant_id)?;
                v::webhook_url(&w.url)?;
                if w.events.is_empty() || w.events.len() > 64 {
                    return Err($crate::DataError::invalid("webhook events", "1 to 64 events"));
                }
                for ev in &w.events {
                    v::token("webhook event", ev)?;
                }
                if w.secret.len() < 16 || w.secret.len() > 1024 || w.secret.chars().any(char::is_control) {
                    return Err($crate::DataError::invalid("webhook secret", "16 to 1024 bytes without control characters"));
                }
                let events = v::json_text(&w.events)?;
                let mut attempt = 0;
                loop {
                    let id = format!("wh_{}", keys::random_string(keys::ALNUM, 20));
                    let res = sqlx::query(
                        "INSERT INTO webhooks (tenant_id, id, url, events, secret, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
                    )
                    .bind(tenant_id)
                    .bind(&id)
                    .bind(&w.url)
                    .bind(&events)
                    .bind(&w.secret)
                    .bind(v::now_ms())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| v::write_err($name, e, || "webhook id collision".into(), ("tenant", tenant_id)));
                    match res {
                        Ok(row) => return Self::webhook_row(&row),
                        Err($crate::DataError::Conflict(_)) if attempt < 3 => attempt += 1,
                        Err(e) => return Err(e),
                    }
                }
            }

            /// Oldest first.
            async fn webhooks(&self, tenant_id: &str) -> $crate::Result<Vec<$crate::control::Webhook>> {
                $crate::control::validate::id(tenant_id)?;
                let rows = sqlx::query("SELECT * FROM webhooks WHERE tenant_id = $1 ORDER BY created_at, id")
                    .bind(tenant_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::webhook_row).collect()
            }

            /// Deletes the endpoint and fails its pending deliveries; the log stays.
            async fn delete_webhook(&self, tenant_id: &str, id: &str) -> $crate::Result<()> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(id)?;
                let be = |e| $crate::DataError::backend($name, e);
                let mut tx = self.pool.begin().await.map_err(be)?;
                let gone = sqlx::query("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2").bind(tenant_id).bind(id);
                if gone.execute(&mut *tx).await.map_err(be)?.rows_affected() == 0 {
                    tx.rollback().await.map_err(be)?;
                    return Err($crate::DataError::not_found("webhook", id));
                }
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = 'failed', last_error = 'the webhook was deleted', next_attempt_at = NULL, \
                     updated_at = $3 WHERE tenant_id = $1 AND webhook_id = $2 AND status = 'pending'",
                )
                .bind(tenant_id)
                .bind(id)
                .bind(v::now_ms())
                .execute(&mut *tx)
                .await
                .map_err(be)?;
                tx.commit().await.map_err(be)
            }

            /// Inserts a delivery (its webhook must be the tenant's), or updates the stored one
            /// with the same (tenant_id, id): status, attempts, last_error, response_status,
            /// next_attempt_at and updated_at change; webhook, event, payload and created_at are
            /// kept from the insert.
            async fn save_delivery(&self, d: &$crate::control::WebhookDelivery) -> $crate::Result<()> {
                use $crate::control::validate as v;
                v::id(&d.tenant_id)?;
                v::id(&d.id)?;
                v::id(&d.webhook_id)?;
                v::token("webhook event", &d.event)?;
                v::non_negative("delivery attempts", i64::from(d.attempts))?;
                if d.payload.len() > 1 << 20 {
                    return Err($crate::DataError::invalid("webhook payload", "at most 1 MiB"));
                }
                if d.last_error.as_ref().is_some_and(|e| e.len() > 2000) {
                    return Err($crate::DataError::invalid("delivery error", "at most 2000 bytes"));
                }
                let be = |e| $crate::DataError::backend($name, e);
                let updated = sqlx::query(
                    "UPDATE webhook_deliveries SET status = $3, attempts = $4, last_error = $5, response_status = $6, \
                     next_attempt_at = $7, updated_at = $8 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(&d.tenant_id)
                .bind(&d.id)
                .bind(d.status.as_str())
                .bind(d.attempts)
                .bind(&d.last_error)
                .bind(d.response_status)
                .bind(d.next_attempt_at)
                .bind(d.updated_at)
                .execute(&self.pool)
                .await
                .map_err(be)?;
                if updated.rows_affected() > 0 {
                    return Ok(());
                }
                self.exists("SELECT id FROM webhooks WHERE tenant_id = $1 AND id = $2", &d.tenant_id, &d.webhook_id, "webhook").await?;
                sqlx::query(
                    "INSERT INTO webhook_deliveries (tenant_id, id, webhook_id, event, payload, status, attempts, last_error, \
                     response_status, next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, \
                     last_error = excluded.last_error, response_status = excluded.response_status, \
                     next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at",
                )
                .bind(&d.tenant_id)
                .bind(&d.id)
                .bind(&d.webhook_id)
                .bind(&d.event)
                .bind(&d.payload)
                .bind(d.status.as_str())
                .bind(d.attempts)
                .bind(&d.last_error)
                .bind(d.response_status)
                .bind(d.next_attempt_at)
                .bind(d.created_at)
                .bind(d.updated_at)
                .execute(&self.pool)
                .await
                .map_err(|e| v::write_err($name, e, || "delivery exists".into(), ("tenant", &d.tenant_id)))?;
                Ok(())
            }

            /// Newest first; `webhook_id` filters (a deleted webhook's log is still listed).
            async fn deliveries(&self, tenant_id: &str, webhook_id: Option<&str>, limit: u32) -> $crate::Result<Vec<$crate::control::WebhookDelivery>> {
                $crate::control::validate::id(tenant_id)?;
                let limit = i64::from(limit.min(10_000));
                let q = match webhook_id {
                    Some(w) => {
                        $crate::control::validate::id(w)?;
                        sqlx::query("SELECT * FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3")
                            .bind(tenant_id)
                            .bind(w)
                            .bind(limit)
                    }
                    None => sqlx::query("SELECT * FROM webhook_deliveries WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2")
                        .bind(tenant_id)
                        .bind(limit),
                };
                let rows = q.fetch_all(&self.pool).await.map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::delivery_row).collect()
            }

            /// Every tenant's pending deliveries due at `now_ms`, longest overdue first.
            async fn due_deliveries(&self, now_ms: i64, limit: u32) -> $crate::Result<Vec<$crate::control::WebhookDelivery>> {
                let rows = sqlx::query(
                    "SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
                     ORDER BY next_attempt_at, created_at, id LIMIT $2",
                )
                .bind(now_ms)
                .bind(i64::from(limit.min(10_000)))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::delivery_row).collect()
            }
        }
    };
}
pub(crate) use sql_webhooks;
