//! Tenants and phone numbers, written once for both backends: the SQL uses `$N` placeholders,
//! which PostgreSQL and SQLite (through sqlx) both accept.

macro_rules! sql_tenants {
    ($store:ty, $row:ty, $name:literal) => {
        impl $store {
            fn tenant_row(r: &$row) -> $crate::Result<$crate::control::Tenant> {
                use sqlx::Row;
                use $crate::control::validate::u32_of;
                let e = |e| $crate::DataError::backend($name, e);
                let opt = |v: Option<i64>| v.map(|v| u32_of($name, v)).transpose();
                Ok($crate::control::Tenant {
                    id: r.try_get("id").map_err(e)?,
                    name: r.try_get("name").map_err(e)?,
                    plan: $crate::control::Plan {
                        max_concurrent_calls: opt(r.try_get("max_concurrent_calls").map_err(e)?)?,
                        monthly_minutes: opt(r.try_get("monthly_minutes").map_err(e)?)?,
                        retention_days: u32_of($name, r.try_get("retention_days").map_err(e)?)?,
                        allowed_providers: match r.try_get::<Option<String>, _>("allowed_providers").map_err(e)? {
                            Some(json) => Some($crate::control::validate::from_json($name, &json)?),
                            None => None,
                        },
                    },
                    created_at: r.try_get("created_at").map_err(e)?,
                })
            }

            async fn create_tenant(&self, t: $crate::control::NewTenant) -> $crate::Result<$crate::control::Tenant> {
                use $crate::control::validate as v;
                v::id(&t.id)?;
                v::text("tenant name", &t.name)?;
                let providers = v::allowed_providers(&t.plan)?;
                let row = sqlx::query(
                    "INSERT INTO tenants (id, name, max_concurrent_calls, monthly_minutes, retention_days, created_at, allowed_providers) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
                )
                .bind(&t.id)
                .bind(&t.name)
                .bind(t.plan.max_concurrent_calls.map(i64::from))
                .bind(t.plan.monthly_minutes.map(i64::from))
                .bind(i64::from(t.plan.retention_days))
                .bind(v::now_ms())
                .bind(providers)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| v::write_err($name, e, || format!("tenant `{}` already exists", t.id), ("tenant", &t.id)))?;
                Self::tenant_row(&row)
            }

            async fn ensure_tenant(&self, id: &str, name: &str) -> $crate::Result<$crate::control::Tenant> {
                use $crate::control::validate as v;
                v::id(id)?;
                v::text("tenant name", name)?;
                sqlx::query(
                    "INSERT INTO tenants (id, name, max_concurrent_calls, monthly_minutes, retention_days, created_at) \
                     VALUES ($1, $2, NULL, NULL, 30, $3) ON CONFLICT (id) DO NOTHING",
                )
                .bind(id)
                .bind(name)
                .bind(v::now_ms())
                .execute(&self.pool)
                .await
                .map_err(|e| $crate::DataError::backend($name, e))?;
                self.tenant(id).await
            }

            async fn tenant(&self, id: &str) -> $crate::Result<$crate::control::Tenant> {
                $crate::control::validate::id(id)?;
                let row = sqlx::query("SELECT * FROM tenants WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?
                    .ok_or_else(|| $crate::DataError::not_found("tenant", id))?;
                Self::tenant_row(&row)
            }

            async fn tenants(&self) -> $crate::Result<Vec<$crate::control::Tenant>> {
                let rows = sqlx::query("SELECT * FROM tenants ORDER BY id")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::tenant_row).collect()
            }

            async fn set_plan(&self, id: &str, plan: $crate::control::Plan) -> $crate::Result<$crate::control::Tenant> {
                $crate::control::validate::id(id)?;
                let providers = $crate::control::validate::allowed_providers(&plan)?;
                let row = sqlx::query(
                    "UPDATE tenants SET max_concurrent_calls = $2, monthly_minutes = $3, retention_days = $4, allowed_providers = $5 \
                     WHERE id = $1 RETURNING *",
                )
                .bind(id)
                .bind(plan.max_concurrent_calls.map(i64::from))
                .bind(plan.monthly_minutes.map(i64::from))
                .bind(i64::from(plan.retention_days))
                .bind(providers)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| $crate::DataError::backend($name, e))?
                .ok_or_else(|| $crate::DataError::not_found("tenant", id))?;
                Self::tenant_row(&row)
            }

            fn number_row(r: &$row) -> $crate::Result<$crate::control::PhoneNumber> {
                use sqlx::Row;
                let e = |e| $crate::DataError::backend($name, e);
                Ok($crate::control::PhoneNumber {
                    number: r.try_get("number").map_err(e)?,
                    tenant_id: r.try_get("tenant_id").map_err(e)?,
                    agent_id: r.try_get("agent_id").map_err(e)?,
                    created_at: r.try_get("created_at").map_err(e)?,
                })
            }

            async fn assign_number(&self, tenant_id: &str, number: &str, agent_id: &str) -> $crate::Result<$crate::control::PhoneNumber> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::e164(number)?;
                v::id(agent_id)?;
                // Insert, or re-point the agent when the number is already this tenant's; a row
                // owned by another tenant is left alone (no row returned → Conflict).
                let row = sqlx::query(
                    "INSERT INTO phone_numbers (number, tenant_id, agent_id, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (number) DO UPDATE SET agent_id = excluded.agent_id \
                     WHERE phone_numbers.tenant_id = excluded.tenant_id RETURNING *",
                )
                .bind(number)
                .bind(tenant_id)
                .bind(agent_id)
                .bind(v::now_ms())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| v::write_err($name, e, || format!("number {number} is taken"), ("tenant", tenant_id)))?
                .ok_or_else(|| $crate::DataError::Conflict(format!("number {number} belongs to another tenant")))?;
                Self::number_row(&row)
            }

            async fn route_number(&self, number: &str) -> $crate::Result<Option<$crate::control::NumberRoute>> {
                $crate::control::validate::e164(number)?;
                let row = sqlx::query("SELECT * FROM phone_numbers WHERE number = $1")
                    .bind(number)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                Ok(match row {
                    Some(r) => {
                        let n = Self::number_row(&r)?;
                        Some($crate::control::NumberRoute { tenant_id: n.tenant_id, agent_id: n.agent_id })
                    }
                    None => None,
                })
            }

            async fn numbers(&self, tenant_id: &str) -> $crate::Result<Vec<$crate::control::PhoneNumber>> {
                $crate::control::validate::id(tenant_id)?;
                let rows = sqlx::query("SELECT * FROM phone_numbers WHERE tenant_id = $1 ORDER BY number")
                    .bind(tenant_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::number_row).collect()
            }

            async fn release_number(&self, tenant_id: &str, number: &str) -> $crate::Result<()> {
                $crate::control::validate::id(tenant_id)?;
                $crate::control::validate::e164(number)?;
                let done = sqlx::query("DELETE FROM phone_numbers WHERE tenant_id = $1 AND number = $2")
                    .bind(tenant_id)
                    .bind(number)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                if done.rows_affected() == 0 {
                    return Err($crate::DataError::not_found("phone number", number));
                }
                Ok(())
            }
        }
    };
}
pub(crate) use sql_tenants;
