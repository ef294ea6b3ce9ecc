//! Idempotency keys of API requests, written once for both backends (`$N` placeholders). The
//! first `begin` inserts an in-progress row (status NULL); `finish` stores the response,
//! `abort` deletes the row. Rows older than 24 h count as absent and are deleted.

macro_rules! sql_idempotency {
    ($store:ty, $row:ty, $name:literal) => {
        impl $store {
            /// `New` for the first caller only (the insert is atomic: concurrent callers with
            /// the same key get `InProgress`); `Mismatch` when the request hash differs.
            async fn idempotency_begin(&self, tenant_id: &str, key: &str, request_sha256: &str) -> $crate::Result<$crate::control::IdempotencyState> {
                use sqlx::Row;
                use $crate::control::{IdempotencyState, validate as v};
                const DAY_MS: i64 = 24 * 3600 * 1000;
                v::id(tenant_id)?;
                v::idempotency_key(key)?;
                let sha = v::sha256_hex("request sha256", request_sha256)?;
                let be = |e| $crate::DataError::backend($name, e);
                let now = v::now_ms();
                sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND created_at < $2")
                    .bind(tenant_id)
                    .bind(now - DAY_MS)
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                // A row that disappears between the insert and the read (aborted) is retried.
                for _ in 0..5 {
                    let inserted = sqlx::query(
                        "INSERT INTO idempotency_keys (tenant_id, idem_key, request_sha256, status, body, created_at) \
                         VALUES ($1, $2, $3, NULL, NULL, $4) ON CONFLICT (tenant_id, idem_key) DO NOTHING",
                    )
                    .bind(tenant_id)
                    .bind(key)
                    .bind(&sha)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| v::write_err($name, e, || "idempotency key exists".into(), ("tenant", tenant_id)))?;
                    if inserted.rows_affected() == 1 {
                        return Ok(IdempotencyState::New);
                    }
                    let row = sqlx::query("SELECT request_sha256, status, body FROM idempotency_keys WHERE tenant_id = $1 AND idem_key = $2")
                        .bind(tenant_id)
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(be)?;
                    let Some(row) = row else { continue };
                    let (stored, status, body): (String, Option<i32>, Option<String>) =
                        (row.try_get("request_sha256").map_err(be)?, row.try_get("status").map_err(be)?, row.try_get("body").map_err(be)?);
                    return Ok(if stored != sha {
                        IdempotencyState::Mismatch
                    } else if let Some(status) = status {
                        let status = u16::try_from(status).map_err(|_| $crate::DataError::backend($name, "stored status out of range"))?;
                        IdempotencyState::Done { status, body: body.unwrap_or_default() }
                    } else {
                        IdempotencyState::InProgress
                    });
                }
                Err($crate::DataError::Conflict("idempotency key keeps changing; retry".into()))
            }

            /// Why a change to an in-progress key touched no row: `NotFound` or `Conflict`.
            async fn idempotency_not_in_progress(&self, tenant_id: &str, key: &str) -> $crate::DataError {
                let row = sqlx::query("SELECT status FROM idempotency_keys WHERE tenant_id = $1 AND idem_key = $2")
                    .bind(tenant_id)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await;
                match row {
                    Err(e) => $crate::DataError::backend($name, e),
                    Ok(None) => $crate::DataError::not_found("idempotency key", key.chars().take(64).collect::<String>()),
                    Ok(Some(_)) => $crate::DataError::Conflict("idempotency key already finished".into()),
                }
            }

            /// Stores the response of an in-progress key for replays.
            async fn idempotency_finish(&self, tenant_id: &str, key: &str, status: u16, body: &str) -> $crate::Result<()> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::idempotency_key(key)?;
                if !(100..=599).contains(&status) {
                    return Err($crate::DataError::invalid("HTTP status", "100 to 599"));
                }
                let done = sqlx::query("UPDATE idempotency_keys SET status = $3, body = $4 WHERE tenant_id = $1 AND idem_key = $2 AND status IS NULL")
                    .bind(tenant_id)
                    .bind(key)
                    .bind(i32::from(status))
                    .bind(body)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                if done.rows_affected() == 0 {
                    return Err(self.idempotency_not_in_progress(tenant_id, key).await);
                }
                Ok(())
            }

            /// Deletes an in-progress key so that a retry runs the request.
            async fn idempotency_abort(&self, tenant_id: &str, key: &str) -> $crate::Result<()> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::idempotency_key(key)?;
                let done = sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND idem_key = $2 AND status IS NULL")
                    .bind(tenant_id)
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                if done.rows_affected() == 0 {
                    return Err(self.idempotency_not_in_progress(tenant_id, key).await);
                }
                Ok(())
            }
        }
    };
}
pub(crate) use sql_idempotency;
