//! API keys and users/roles, written once for both backends (`$N` placeholders).

macro_rules! sql_access {
    ($store:ty, $row:ty, $name:literal) => {
        impl $store {
            fn key_row(r: &$row) -> $crate::Result<$crate::control::ApiKeyInfo> {
                use sqlx::Row;
                let e = |e| $crate::DataError::backend($name, e);
                let scopes: String = r.try_get("scopes").map_err(e)?;
                Ok($crate::control::ApiKeyInfo {
                    id: r.try_get("id").map_err(e)?,
                    tenant_id: r.try_get("tenant_id").map_err(e)?,
                    name: r.try_get("name").map_err(e)?,
                    scopes: $crate::control::validate::from_json($name, &scopes)?,
                    created_at: r.try_get("created_at").map_err(e)?,
                })
            }

            /// The plaintext is returned once; only its SHA-256 is stored.
            async fn create_api_key(
                &self,
                tenant_id: &str,
                name: &str,
                scopes: Vec<String>,
            ) -> $crate::Result<($crate::control::ApiKeyInfo, $crate::control::PlainKey)> {
                use $crate::control::{keys, validate as v};
                v::id(tenant_id)?;
                v::text("API key name", name)?;
                v::labels("scopes", &scopes)?;
                let scopes_json = v::json_text(&scopes)?;
                let mut attempt = 0;
                loop {
                    let key = keys::generate();
                    let res = sqlx::query(
                        "INSERT INTO api_keys (id, tenant_id, name, scopes, key_sha256, created_at, revoked_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, NULL) RETURNING *",
                    )
                    .bind(key.id())
                    .bind(tenant_id)
                    .bind(name)
                    .bind(&scopes_json)
                    .bind(keys::hash_hex(key.expose()))
                    .bind(v::now_ms())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| v::write_err($name, e, || "API key id collision".into(), ("tenant", tenant_id)));
                    match res {
                        Ok(row) => return Ok((Self::key_row(&row)?, key)),
                        // 36^8 ids: a collision is rare; draw again.
                        Err($crate::DataError::Conflict(_)) if attempt < 3 => attempt += 1,
                        Err(e) => return Err(e),
                    }
                }
            }

            /// The key's tenant and scopes, or `None` for a malformed, unknown, wrong or revoked key.
            async fn verify_api_key(&self, plaintext: &str) -> $crate::Result<Option<$crate::control::ApiKeyInfo>> {
                use sqlx::Row;
                use $crate::control::keys;
                let Some(id) = keys::parse_id(plaintext) else { return Ok(None) };
                let row = sqlx::query("SELECT * FROM api_keys WHERE id = $1 AND revoked_at IS NULL")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                let Some(row) = row else { return Ok(None) };
                let stored: String = row.try_get("key_sha256").map_err(|e| $crate::DataError::backend($name, e))?;
                if !keys::constant_time_eq(stored.as_bytes(), keys::hash_hex(plaintext).as_bytes()) {
                    return Ok(None);
                }
                Ok(Some(Self::key_row(&row)?))
            }

            async fn revoke_api_key(&self, tenant_id: &str, id: &str) -> $crate::Result<()> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(id)?;
                let done = sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL")
                    .bind(tenant_id)
                    .bind(id)
                    .bind(v::now_ms())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                if done.rows_affected() == 0 {
                    return Err($crate::DataError::not_found("API key", id));
                }
                Ok(())
            }

            /// Active (not revoked) keys.
            async fn api_keys(&self, tenant_id: &str) -> $crate::Result<Vec<$crate::control::ApiKeyInfo>> {
                $crate::control::validate::id(tenant_id)?;
                let rows = sqlx::query("SELECT * FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL ORDER BY created_at, id")
                    .bind(tenant_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::key_row).collect()
            }

            fn user_row(r: &$row) -> $crate::Result<$crate::control::User> {
                use sqlx::Row;
                let e = |e| $crate::DataError::backend($name, e);
                let roles: String = r.try_get("roles").map_err(e)?;
                Ok($crate::control::User {
                    tenant_id: r.try_get("tenant_id").map_err(e)?,
                    subject: r.try_get("subject").map_err(e)?,
                    email: r.try_get("email").map_err(e)?,
                    roles: $crate::control::validate::from_json($name, &roles)?,
                    updated_at: r.try_get("updated_at").map_err(e)?,
                })
            }

            /// Creates or replaces the user's email and roles.
            async fn set_user_roles(&self, tenant_id: &str, subject: &str, email: &str, roles: Vec<String>) -> $crate::Result<$crate::control::User> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::text("subject", subject)?;
                v::text("email", email)?;
                if !email.contains('@') {
                    return Err($crate::DataError::invalid("email", "expected name@domain"));
                }
                v::labels("roles", &roles)?;
                let row = sqlx::query(
                    "INSERT INTO users (tenant_id, subject, email, roles, updated_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (tenant_id, subject) DO UPDATE SET email = excluded.email, roles = excluded.roles, \
                     updated_at = excluded.updated_at RETURNING *",
                )
                .bind(tenant_id)
                .bind(subject)
                .bind(email)
                .bind(v::json_text(&roles)?)
                .bind(v::now_ms())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| v::write_err($name, e, || "user exists".into(), ("tenant", tenant_id)))?;
                Self::user_row(&row)
            }

            async fn user_roles(&self, tenant_id: &str, subject: &str) -> $crate::Result<Vec<String>> {
                $crate::control::validate::id(tenant_id)?;
                let row = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 AND subject = $2")
                    .bind(tenant_id)
                    .bind(subject)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?
                    .ok_or_else(|| $crate::DataError::not_found("user", subject))?;
                Ok(Self::user_row(&row)?.roles)
            }

            async fn users(&self, tenant_id: &str) -> $crate::Result<Vec<$crate::control::User>> {
                $crate::control::validate::id(tenant_id)?;
                let rows = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 ORDER BY subject")
                    .bind(tenant_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::user_row).collect()
            }

            async fn remove_user(&self, tenant_id: &str, subject: &str) -> $crate::Result<()> {
                $crate::control::validate::id(tenant_id)?;
                let done = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND subject = $2")
                    .bind(tenant_id)
                    .bind(subject)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                if done.rows_affected() == 0 {
                    return Err($crate::DataError::not_found("user", subject));
                }
                Ok(())
            }
        }
    };
}
pub(crate) use sql_access;
