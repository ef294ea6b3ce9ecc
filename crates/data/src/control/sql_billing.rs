//! Usage, prices and invoices, written once for both backends (`$N` placeholders).
//!
//! Invoices are issued once per tenant and period and never change afterwards: usage recorded
//! later for an already invoiced period is kept (and shows in `usage_summary`) but is not added
//! to that invoice.

macro_rules! sql_billing {
    ($store:ty, $row:ty, $name:literal) => {
        impl $store {
            async fn record_usage(&self, u: $crate::control::UsageRecord) -> $crate::Result<bool> {
                use $crate::control::validate as v;
                v::id(&u.tenant_id)?;
                v::id(&u.call_id)?;
                v::text("idempotency key", &u.idempotency_key)?;
                v::provider(&u.provider, false)?;
                v::non_negative("quantity", u.quantity)?;
                v::non_negative("at_unix_ms", u.at_unix_ms)?;
                let done = sqlx::query(
                    "INSERT INTO usage_records (tenant_id, idempotency_key, call_id, metric, provider, quantity, at_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
                )
                .bind(&u.tenant_id)
                .bind(&u.idempotency_key)
                .bind(&u.call_id)
                .bind(u.metric.as_str())
                .bind(&u.provider)
                .bind(u.quantity)
                .bind(u.at_unix_ms)
                .execute(&self.pool)
                .await
                .map_err(|e| v::write_err($name, e, || "usage record exists".into(), ("tenant", &u.tenant_id)))?;
                Ok(done.rows_affected() == 1)
            }

            async fn usage_summary(&self, tenant_id: &str, from_ms: i64, to_ms: i64) -> $crate::Result<Vec<$crate::control::UsageTotal>> {
                Ok(self.usage_grouped(tenant_id, from_ms, to_ms, false).await?.into_iter().map(|(_, u)| u).collect())
            }

            async fn usage_by_day(&self, tenant_id: &str, from_ms: i64, to_ms: i64) -> $crate::Result<Vec<$crate::control::UsageDay>> {
                let rows = self.usage_grouped(tenant_id, from_ms, to_ms, true).await?;
                Ok(rows.into_iter().map(|(day_start_ms, usage)| $crate::control::UsageDay { day_start_ms, usage }).collect())
            }

            /// Usage totals in `[from, to)` by metric and provider, and by UTC day when `by_day`
            /// (usage times are unix ms, so a day is at_ms / 86 400 000; else the day is 0),
            /// ordered by day, metric and provider.
            async fn usage_grouped(&self, tenant_id: &str, from_ms: i64, to_ms: i64, by_day: bool) -> $crate::Result<Vec<(i64, $crate::control::UsageTotal)>> {
                use sqlx::Row;
                $crate::control::validate::id(tenant_id)?;
                let (day, group) = if by_day { ("CAST(at_ms / 86400000 AS BIGINT)", "CAST(at_ms / 86400000 AS BIGINT), ") } else { ("CAST(0 AS BIGINT)", "") };
                let sql = format!(
                    "SELECT {day} AS day, metric, provider, CAST(SUM(quantity) AS BIGINT) AS quantity FROM usage_records \
                     WHERE tenant_id = $1 AND at_ms >= $2 AND at_ms < $3 GROUP BY {group}metric, provider"
                );
                let rows = sqlx::query(&sql)
                    .bind(tenant_id)
                    .bind(from_ms)
                    .bind(to_ms)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                let e = |e| $crate::DataError::backend($name, e);
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let metric: String = r.try_get("metric").map_err(e)?;
                    let day: i64 = r.try_get("day").map_err(e)?;
                    let total = $crate::control::UsageTotal {
                        metric: $crate::control::Metric::parse(&metric)?,
                        provider: r.try_get("provider").map_err(e)?,
                        quantity: r.try_get("quantity").map_err(e)?,
                    };
                    out.push((day * 86_400_000, total));
                }
                out.sort_by(|(da, a), (db, b)| (*da, a.metric, &a.provider).cmp(&(*db, b.metric, &b.provider)));
                Ok(out)
            }

            async fn set_price(
                &self,
                tenant_id: Option<&str>,
                metric: $crate::control::Metric,
                provider: &str,
                price: $crate::control::Price,
            ) -> $crate::Result<()> {
                use $crate::control::validate as v;
                if let Some(t) = tenant_id {
                    self.tenant(t).await?;
                }
                v::provider(provider, true)?;
                v::non_negative("price", price.micros_per_1000_units)?;
                sqlx::query(
                    "INSERT INTO prices (tenant_id, metric, provider, micros_per_1000_units) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (tenant_id, metric, provider) DO UPDATE SET micros_per_1000_units = excluded.micros_per_1000_units",
                )
                .bind(tenant_id.unwrap_or(""))
                .bind(metric.as_str())
                .bind(provider)
                .bind(price.micros_per_1000_units)
                .execute(&self.pool)
                .await
                .map_err(|e| $crate::DataError::backend($name, e))?;
                Ok(())
            }

            async fn stored_invoice(&self, tenant_id: &str, period: &str) -> $crate::Result<Option<$crate::control::Invoice>> {
                use sqlx::Row;
                let row = sqlx::query("SELECT * FROM invoices WHERE tenant_id = $1 AND period = $2")
                    .bind(tenant_id)
                    .bind(period)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                let Some(r) = row else { return Ok(None) };
                let e = |e| $crate::DataError::backend($name, e);
                let lines: String = r.try_get("lines").map_err(e)?;
                Ok(Some($crate::control::Invoice {
                    id: r.try_get("id").map_err(e)?,
                    tenant_id: r.try_get("tenant_id").map_err(e)?,
                    period: r.try_get("period").map_err(e)?,
                    lines: $crate::control::validate::from_json($name, &lines)?,
                    total_micros: r.try_get("total_micros").map_err(e)?,
                    issued_at: r.try_get("issued_at").map_err(e)?,
                }))
            }

            async fn invoice(&self, tenant_id: &str, period: &str) -> $crate::Result<$crate::control::Invoice> {
                use sqlx::Row;
                use $crate::control::{billing, validate as v};
                let (from, to) = billing::period_bounds(period)?;
                self.tenant(tenant_id).await?;
                if let Some(inv) = self.stored_invoice(tenant_id, period).await? {
                    return Ok(inv);
                }
                let usage = self.usage_summary(tenant_id, from, to).await?;
                let rows = sqlx::query("SELECT * FROM prices WHERE tenant_id = $1 OR tenant_id = ''")
                    .bind(tenant_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                let e = |e| $crate::DataError::backend($name, e);
                let mut prices = billing::PriceTable::new();
                for r in &rows {
                    let metric: String = r.try_get("metric").map_err(e)?;
                    let key = (r.try_get("tenant_id").map_err(e)?, $crate::control::Metric::parse(&metric)?, r.try_get("provider").map_err(e)?);
                    prices.insert(key, r.try_get("micros_per_1000_units").map_err(e)?);
                }
                let (lines, total) = billing::build_lines(tenant_id, &usage, &prices)?;
                // A concurrent call may have issued it first: keep theirs (DO NOTHING), read back.
                sqlx::query(
                    "INSERT INTO invoices (id, tenant_id, period, lines, total_micros, issued_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (tenant_id, period) DO NOTHING",
                )
                .bind(format!("inv_{}", uuid::Uuid::new_v4().simple()))
                .bind(tenant_id)
                .bind(period)
                .bind(v::json_text(&lines)?)
                .bind(total)
                .bind(v::now_ms())
                .execute(&self.pool)
                .await
                .map_err(|e| $crate::DataError::backend($name, e))?;
                self.stored_invoice(tenant_id, period).await?.ok_or_else(|| $crate::DataError::backend($name, "invoice vanished after insert"))
            }
        }
    };
}
pub(crate) use sql_billing;
