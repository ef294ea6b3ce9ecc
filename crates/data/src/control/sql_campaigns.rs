//! Outbound campaigns and adding their contacts, written once for both backends (`$N`
//! placeholders). The dialer's side of contacts is in `sql_dialer.rs`.

macro_rules! sql_campaigns {
    ($store:ty, $row:ty, $name:literal) => {
        impl $store {
            fn campaign_row(r: &$row) -> $crate::Result<$crate::control::Campaign> {
                use sqlx::Row;
                let e = |e| $crate::DataError::backend($name, e);
                let (window, status): (String, String) = (r.try_get("dial_window").map_err(e)?, r.try_get("status").map_err(e)?);
                Ok($crate::control::Campaign {
                    tenant_id: r.try_get("tenant_id").map_err(e)?,
                    id: r.try_get("id").map_err(e)?,
                    agent_id: r.try_get("agent_id").map_err(e)?,
                    name: r.try_get("name").map_err(e)?,
                    window: $crate::control::validate::from_json($name, &window)?,
                    status: $crate::control::CampaignStatus::parse(&status)?,
                    created_at: r.try_get("created_at").map_err(e)?,
                })
            }

            /// Status `draft`; the agent must be this tenant's.
            async fn create_campaign(
                &self,
                tenant_id: &str,
                id: &str,
                agent_id: &str,
                name: &str,
                window: serde_json::Value,
            ) -> $crate::Result<$crate::control::Campaign> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(id)?;
                v::id(agent_id)?;
                v::text("campaign name", name)?;
                self.exists("SELECT id FROM agents WHERE tenant_id = $1 AND id = $2", tenant_id, agent_id, "agent").await?;
                let row = sqlx::query(
                    "INSERT INTO campaigns (tenant_id, id, agent_id, name, dial_window, status, created_at) \
                     VALUES ($1, $2, $3, $4, $5, 'draft', $6) RETURNING *",
                )
                .bind(tenant_id)
                .bind(id)
                .bind(agent_id)
                .bind(name)
                .bind(v::json_text(&window)?)
                .bind(v::now_ms())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| v::write_err($name, e, || format!("campaign `{id}` already exists"), ("tenant", tenant_id)))?;
                Self::campaign_row(&row)
            }

            /// Adds contacts (status `pending`) in one transaction; all numbers are checked first.
            async fn add_campaign_contacts(
                &self,
                tenant_id: &str,
                campaign_id: &str,
                contacts: Vec<(String, serde_json::Value)>,
            ) -> $crate::Result<usize> {
                use $crate::control::validate as v;
                v::id(tenant_id)?;
                v::id(campaign_id)?;
                let mut rows = Vec::with_capacity(contacts.len());
                for (number, vars) in &contacts {
                    v::e164(number)?;
                    rows.push((number, v::json_text(vars)?));
                }
                self.exists("SELECT id FROM campaigns WHERE tenant_id = $1 AND id = $2", tenant_id, campaign_id, "campaign").await?;
                let be = |e| $crate::DataError::backend($name, e);
                let now = v::now_ms();
                let mut tx = self.pool.begin().await.map_err(be)?;
                for (number, vars) in &rows {
                    sqlx::query(
                        "INSERT INTO campaign_contacts (tenant_id, campaign_id, number, vars, status, attempts, updated_at) \
                         VALUES ($1, $2, $3, $4, 'pending', 0, $5)",
                    )
                    .bind(tenant_id)
                    .bind(campaign_id)
                    .bind(*number)
                    .bind(vars)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| v::write_err($name, e, || "contact exists".into(), ("campaign", campaign_id)))?;
                }
                tx.commit().await.map_err(be)?;
                Ok(rows.len())
            }

            async fn set_campaign_status(&self, tenant_id: &str, campaign_id: &str, status: $crate::control::CampaignStatus) -> $crate::Result<()> {
                $crate::control::validate::id(tenant_id)?;
                let done = sqlx::query("UPDATE campaigns SET status = $3 WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(campaign_id)
                    .bind(status.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                if done.rows_affected() == 0 {
                    return Err($crate::DataError::not_found("campaign", campaign_id));
                }
                Ok(())
            }

            async fn campaign(&self, tenant_id: &str, id: &str) -> $crate::Result<$crate::control::Campaign> {
                $crate::control::validate::id(tenant_id)?;
                $crate::control::validate::id(id)?;
                let row = sqlx::query("SELECT * FROM campaigns WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?
                    .ok_or_else(|| $crate::DataError::not_found("campaign", id))?;
                Self::campaign_row(&row)
            }

            /// Every tenant's running campaigns (the dialer's work list).
            async fn running_campaigns(&self) -> $crate::Result<Vec<$crate::control::Campaign>> {
                let rows = sqlx::query("SELECT * FROM campaigns WHERE status = 'running' ORDER BY tenant_id, id")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::campaign_row).collect()
            }

            async fn campaigns(&self, tenant_id: &str) -> $crate::Result<Vec<$crate::control::Campaign>> {
                $crate::control::validate::id(tenant_id)?;
                let rows = sqlx::query("SELECT * FROM campaigns WHERE tenant_id = $1 ORDER BY id")
                    .bind(tenant_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| $crate::DataError::backend($name, e))?;
                rows.iter().map(Self::campaign_row).collect()
            }
        }
    };
}
pub(crate) use sql_campaigns;
